package ipmove

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/internal/testenv"
)

// TestMoveScriptsParse runs sh -n and shellcheck on move-ip.sh and
// handover.sh as rendered for each case.
func TestMoveScriptsParse(t *testing.T) {
	var scripts []string
	for _, drain := range []bool{false, true} {
		for _, handover := range []bool{false, true} {
			b, err := testMove(drain, handover).Script()
			if err != nil {
				t.Fatal(err)
			}
			scripts = append(scripts, string(b))
		}
	}
	for _, remove := range []bool{false, true} {
		b, err := testMove(true, true).handoverScript(remove)
		if err != nil {
			t.Fatal(err)
		}
		scripts = append(scripts, string(b))
	}
	testenv.NeedCommand(t, "shellcheck")
	for _, s := range scripts {
		if out, err := exec.Command("sh", "-n", "-c", s).CombinedOutput(); err != nil {
			t.Errorf("sh -n: %v\n%s\n%s", err, out, s)
		}
		cmd := exec.Command("shellcheck", "-s", "sh", "-e", "SC2086", "-")
		cmd.Stdin = strings.NewReader(s)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("shellcheck:\n%s", out)
		}
	}
}

func testMove(drain, handover bool) Move {
	return Move{
		From: "node1", To: "node2", ToAddr: "10.0.0.12", VIP: "10.0.0.100", Port: 8000, Resource: "floating-ip",
		Drain: drain, Handover: handover, DrainFor: 10 * time.Second, Settle: time.Minute,
	}
}
