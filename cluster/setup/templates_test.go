package setup

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/internal/testenv"
	"gitlab.com/debship/debship/templates"
)

// TestGeneratedFiles renders every generated file of every node for the
// example inventory (WireGuard, DigitalOcean, tie-breaker) and a 3-node lab
// inventory, and compares them with testdata/golden.
func TestGeneratedFiles(t *testing.T) {
	example := exampleInventory(t, "not-a-real-token")
	for name, inv := range map[string]*inventory.Inventory{"example": example, "lab3": labInventory(t, 3), "lab2": labInventory(t, 2)} {
		t.Run(name, func(t *testing.T) {
			conns := fakeConns(inv, [2]string{"wg pubkey", "PUBKEY-OF-THE-PEER="})
			r, err := NewRun(inv, conns, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			for _, ph := range r.Phases() {
				for _, st := range ph.Stages {
					for _, n := range st.Nodes {
						for _, s := range st.Steps {
							if s.File == nil {
								continue
							}
							b, err := s.File.Content(context.Background(), r.target(n))
							if err != nil {
								t.Fatalf("%s %s: %v", n.Name, s.Name, err)
							}
							fmt.Fprintf(&out, "==== %s %s %s\n%s", ph.Name, n.Name, s.File.Path, b)
						}
					}
				}
			}
			golden(t, "files-"+name+".txt", out.Bytes())
		})
	}
}

// TestGeneratedScriptsParse runs sh -n on the generated shell scripts and
// python3 on the DigitalOcean agent.
func TestGeneratedScriptsParse(t *testing.T) {
	inv := labInventory(t, 3)
	b, err := render("ufw-rules.sh", ufwData(inv, inv.Nodes[0]))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-n", "-c", string(b)).CombinedOutput(); err != nil {
		t.Fatalf("ufw-rules.sh: %v\n%s", err, out)
	}
	testenv.NeedCommand(t, "python3")
	agent, err := templates.Raw("cluster/do-reserved-ip")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", "-c", "import sys; compile(sys.stdin.read(), 'do-reserved-ip', 'exec')")
	cmd.Stdin = bytes.NewReader(agent)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("do-reserved-ip: %v\n%s", err, out)
	}
}

// TestCorosyncConf checks the quorum choice: two_node without a
// tie-breaker, a qdevice on the tie-breaker's address with one.
func TestCorosyncConf(t *testing.T) {
	for nodes, want := range map[int]string{2: "two_node: 1", 3: "host: 10.231.0.13"} {
		inv := labInventory(t, nodes)
		r, _ := NewRun(inv, fakeConns(inv), Options{})
		b, err := corosyncContent(r.target(inv.Nodes[0]))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want) || !strings.Contains(string(b), "token: 1000") || strings.Contains(string(b), "node3") {
			t.Errorf("%d nodes:\n%s", nodes, b)
		}
	}
}
