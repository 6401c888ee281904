package setup

import (
	"context"
	"strings"
	"testing"
)

// TestDOTokenNeverInTheCIB: the reserved-IP resource names the token file;
// the token itself only goes into that file (mode 0600) on the nodes.
func TestDOTokenNeverInTheCIB(t *testing.T) {
	inv := exampleInventory(t, "fence-pw", "dop_v1_verysecret")
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
	for _, s := range doAgentSteps() {
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
