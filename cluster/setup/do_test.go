package setup

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/templates"
)

// TestDOTokenNeverInTheCIB: the reserved-IP resource names the token file;
// the token itself only goes into that file (mode 0600) on the nodes.
func TestDOTokenNeverInTheCIB(t *testing.T) {
	inv := exampleInventory(t, "dop_v1_verysecret")
	spec := floatingIPSpec(inv)
	if spec.Agent != "ocf:debship:do-reserved-ip" || spec.Params["ip"] != "198.51.100.20" || spec.Params["token_file"] != doTokenPath {
		t.Fatalf("spec: %+v", spec)
	}
	if strings.Contains(spec.ParamArgs()+spec.Create, "verysecret") {
		t.Fatal("the token is in the resource's parameters")
	}
	conns := fakeConns(inv, [2]string{"sha256sum <", "missing"})
	r, _ := NewRun(inv, conns, Options{})
	var token Step
	for _, s := range doAgentSteps(inv) {
		if s.Name == "DigitalOcean API token" {
			token = s
		}
	}
	tg := r.target(inv.Nodes[0])
	st, err := token.Check(context.Background(), tg)
	if err != nil || st.Done || strings.Contains(st.Reason, "verysecret") {
		t.Fatalf("check: %+v %v", st, err)
	}
	if err := token.Apply(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	if got := conns["web1"].(*fakeT).uploads[doTokenPath]; got != "dop_v1_verysecret\n" {
		t.Fatalf("uploaded %q", got)
	}
}

// TestDOFencingSpec: agent = "digitalocean" installs fence_digitalocean
// where pacemaker's fencer looks for agents and creates the stonith device
// with the shared token's file, the API and the droplet of each node; the
// token is in no parameter.
func TestDOFencingSpec(t *testing.T) {
	inv := exampleInventory(t, "dop_v1_verysecret")
	inv.Fencing = &inventory.Fencing{Agent: "digitalocean", Droplets: map[string]int{"web1": 11, "web2": 12}}
	conns := fakeConns(inv, [2]string{"sha256sum <", "missing"})
	r, err := NewRun(inv, conns, Options{})
	if err != nil {
		t.Fatal(err)
	}
	spec, ok := fenceSpec(r.target(inv.Nodes[0]))
	want := map[string]string{"pcmk_host_list": "web1 web2", "token_file": doTokenPath, "api_url": inventory.DefaultDOAPI,
		"pcmk_host_map": "web1:11;web2:12", "pcmk_reboot_timeout": doFenceTimeout, "pcmk_off_timeout": doFenceTimeout}
	if !ok || spec.Agent != "fence_digitalocean" || !spec.Stonith || !reflect.DeepEqual(spec.Params, want) {
		t.Fatalf("spec %+v, want params %v", spec, want)
	}
	if strings.Contains(spec.ParamArgs()+spec.Create, "verysecret") {
		t.Fatal("the token is in the stonith device's parameters")
	}
	var names []string
	for _, s := range doAgentSteps(inv) {
		names = append(names, s.Name)
	}
	if strings.Join(names, ", ") != "DigitalOcean reserved-IP agent, DigitalOcean fence agent, DigitalOcean API token" {
		t.Errorf("steps: %v", names)
	}
	tg := r.target(inv.Nodes[0])
	for _, s := range doAgentSteps(inv) {
		if err := s.Apply(context.Background(), tg); err != nil {
			t.Fatal(err)
		}
	}
	want2, _ := templates.Render("cluster/fence_digitalocean", nil)
	if got := conns["web1"].(*fakeT).uploads[doFenceAgent]; doFenceAgent != "/usr/sbin/fence_digitalocean" || got != string(want2) {
		t.Errorf("fence agent at %s: %d bytes", doFenceAgent, len(got))
	}
}
