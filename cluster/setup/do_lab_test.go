package setup_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/inventory/inventorytest"
	"gitlab.com/debship/debship/cluster/lab"
	"gitlab.com/debship/debship/cluster/lab/labtest"
	"gitlab.com/debship/debship/cluster/setup"
	"gitlab.com/debship/debship/internal/fakedigitalocean"
)

// doLab is the lab as DigitalOcean: the fake API on the host's lab address
// is the only "DigitalOcean"; its assign moves the host's route to the
// reserved IP (as DigitalOcean routes it to the holder's anchor IP), its
// power_off crashes a lab node and its power_on boots it.
type doLab struct {
	t       *testing.T
	l       *lab.Lab
	inv     *inventory.Inventory
	api     *fakedigitalocean.Server
	ip      string
	droplet map[string]int // node → droplet id
	node    map[int]string
	boots   sync.WaitGroup
}

const doLabToken = "dop_v1_lab-token-5e1f"

func newDOLab(t *testing.T, l *lab.Lab) *doLab {
	inv, _ := labtest.Inventory(t, l)
	ln, err := net.Listen("tcp", net.JoinHostPort(l.HostAddress().String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	d := &doLab{t: t, l: l, ip: l.FloatingIP().Addr().String(), droplet: map[string]int{}, node: map[int]string{}}
	d.api = fakedigitalocean.NewServerOn(ln, doLabToken, d.ip)
	t.Cleanup(d.api.Close)
	for i, n := range inv.Members() {
		id := 3001 + i
		d.droplet[n.Name], d.node[id] = id, n.Name
		d.api.AddDroplet(id, n.Name, "debship")
		d.api.SetDropletAddress(id, n.Address)
	}
	var hooks fakedigitalocean.Hooks
	hooks.Assign = func(ip string, id int) error {
		n, _ := inv.Node(d.node[id])
		out, err := osexec.Command("ip", "route", "replace", ip+"/32", "via", n.Address).CombinedOutput()
		if err != nil {
			return fmt.Errorf("route %s via %s: %v: %s", ip, n.Address, err, out)
		}
		t.Logf("fake API: %s assigned to droplet %d (%s)", ip, id, n.Name)
		return nil
	}
	t.Cleanup(func() { osexec.Command("ip", "route", "del", d.ip+"/32").Run() })
	hooks.PowerOff = func(id int) error {
		t.Logf("fake API: power_off droplet %d (%s)", id, d.node[id])
		if err := l.Crash(context.Background(), d.node[id]); err != nil {
			// already down (crashed by the test): off is off
			t.Logf("crash %s: %v", d.node[id], err)
		}
		return nil
	}
	// DigitalOcean's power_on completes when the droplet is powered, not
	// when its OS has booted: the boot goes on in the background.
	hooks.PowerOn = func(id int) error {
		t.Logf("fake API: power_on droplet %d (%s)", id, d.node[id])
		d.boots.Add(1)
		go func() {
			defer d.boots.Done()
			// A droplet's OS boots for tens of seconds after power_on
			// completed; a lab node boots in one. Booted at once, pacemaker
			// would start before the reboot's result reached it and stop
			// for good ("We were allegedly just fenced").
			time.Sleep(10 * time.Second)
			if err := l.Start(context.Background(), d.node[id]); err != nil {
				t.Errorf("power_on %s: %v", d.node[id], err)
				return
			}
			d.anchor(d.node[id])
		}()
		return nil
	}
	d.api.SetHooks(hooks)
	t.Cleanup(d.boots.Wait)

	tok := filepath.Join(t.TempDir(), "do-token")
	if err := os.WriteFile(tok, []byte(doLabToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inv.FloatingIP = inventory.FloatingIP{Address: d.ip + "/32", Provider: inventory.ProviderDigitalOcean,
		DigitalOcean: &inventory.DigitalOcean{TokenFile: tok, APIURL: d.api.URL}}
	inv.Fencing = &inventory.Fencing{Agent: "digitalocean", Droplets: d.droplet}
	d.inv = inventorytest.Reload(t, inv)
	for _, n := range inv.Members() {
		d.anchor(n.Name)
	}
	return d
}

// anchor gives a node the reserved IP on lo, as DigitalOcean's anchor IP
// delivers the reserved IP's traffic to whichever droplet holds it.
func (d *doLab) anchor(node string) {
	if out, err := d.l.Exec(context.Background(), node, "ip", "addr", "replace", d.ip+"/32", "dev", "lo"); err != nil {
		d.t.Errorf("%s: %v: %s", node, err, out)
	}
}

// powerActions are the droplet power actions since the first n actions.
func (d *doLab) powerActions(n int) []string {
	var out []string
	for _, a := range d.api.Actions()[n:] {
		if a.ResourceType == "droplet" {
			out = append(out, a.Type+" "+d.node[a.ResourceID])
		}
	}
	return out
}

func (d *doLab) holderNode() string { return d.node[d.api.Holder(d.ip)] }

// TestDigitalOceanLab: the DigitalOcean reserved IP and fencing, run by
// pacemaker, against the fake API on the lab host's address.
func TestDigitalOceanLab(t *testing.T) {
	deb := buildClusterDeb(t)
	l := labtest.Fresh(t, 2)
	d := newDOLab(t, l)
	inv := d.inv
	ctx := context.Background()

	apply(t, inv, setup.Options{Package: deb})
	labtest.WaitHealthy(t, inv, 2*time.Minute)
	h, _ := waitHolder(t, inv, "", time.Minute)
	if d.holderNode() != h {
		t.Fatalf("the app answers from %s, the fake API says %s holds the IP", h, d.holderNode())
	}
	for _, n := range inv.Members() {
		if got := labtest.Sh(t, inv, n.Name, "stat -c '%a %U' /usr/sbin/fence_digitalocean /etc/debship/digitalocean-token"); got != "755 root\n600 root" {
			t.Errorf("%s: agent and token: %q", n.Name, got)
		}
		if out := labtest.Sh(t, inv, n.Name, "stonith_admin --list-installed"); !strings.Contains(out, "fence_digitalocean") {
			t.Errorf("%s: pacemaker's fencer does not list fence_digitalocean:\n%s", n.Name, out)
		}
	}
	if out := labtest.Sh(t, inv, h, "stonith_admin --metadata --agent fence_digitalocean"); !strings.Contains(out, `<resource-agent name="fence_digitalocean"`) {
		t.Errorf("stonith_admin --metadata:\n%s", out)
	}
	if out := labtest.Sh(t, inv, h, "cibadmin --query"); strings.Contains(out, doLabToken) {
		t.Error("the token is in the CIB")
	}

	t.Run("crash of the holder", func(t *testing.T) {
		mark := len(d.api.Actions())
		if err := l.Crash(ctx, h); err != nil {
			t.Fatal(err)
		}
		got, took := waitHolder(t, inv, h, 2*time.Minute)
		t.Logf("FAILOVER (DigitalOcean, fake API): %s crashed, the reserved IP answers from %s after %s",
			h, got, took.Round(10*time.Millisecond))
		crashed := h
		h = got
		// The route moves in the assign's hook, the fake's holder with the
		// agent's next poll.
		for end := time.Now().Add(5 * time.Second); d.holderNode() != got && time.Now().Before(end); {
			time.Sleep(100 * time.Millisecond)
		}
		if d.holderNode() != got {
			t.Errorf("the fake API says %s holds the IP, %s answers", d.holderNode(), got)
		}
		// The survivor fenced the lost node before taking the IP over:
		// pacemaker's default stonith-action is reboot (power_off, power_on).
		if a := d.powerActions(mark); strings.Join(a, ",") != "power_off "+crashed+",power_on "+crashed {
			t.Errorf("power actions: %q", a)
		}
		if took > 30*time.Second {
			t.Errorf("failover took %s; want at most 30 s", took)
		}
		d.boots.Wait()
		labtest.WaitHealthy(t, inv, 3*time.Minute)
	})

	t.Run("stonith_admin --fence", func(t *testing.T) {
		target := other(inv, h)
		mark := len(d.api.Actions())
		if out, err := labtest.ShErr(inv, h, "stonith_admin --fence "+target+" --timeout 120"); err != nil {
			t.Fatalf("stonith_admin --fence %s: %v\n%s", target, err, out)
		}
		if a := d.powerActions(mark); strings.Join(a, ",") != "power_off "+target {
			t.Errorf("power actions: %q, want exactly one power_off of %s", a, target)
		}
		if st := d.api.DropletStatus(d.droplet[target]); st != "off" {
			t.Errorf("droplet of %s is %s", target, st)
		}
		if got, _ := waitHolder(t, inv, "", 10*time.Second); got != h {
			t.Errorf("after fencing %s the IP answers from %s", target, got)
		}
		// The operator powers it on with the same agent.
		on := fmt.Sprintf("fence_digitalocean --action on --plug %d --api-url %s", d.droplet[target], d.api.URL)
		if out, err := labtest.ShErr(inv, h, on); err != nil {
			t.Fatalf("%s: %v\n%s", on, err, out)
		}
		d.boots.Wait()
		labtest.WaitHealthy(t, inv, 3*time.Minute)
	})

	t.Run("partition", func(t *testing.T) {
		// The partitioned node cannot reach the API either: only the
		// holder's fencing can succeed, and it powers off exactly that
		// droplet (reboot: off, then on).
		target := other(inv, h)
		mark := len(d.api.Actions())
		if err := l.Partition(ctx, target); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(90 * time.Second); time.Now().Before(end) && len(d.powerActions(mark)) < 2; {
			time.Sleep(time.Second)
		}
		if a := d.powerActions(mark); strings.Join(a, ",") != "power_off "+target+",power_on "+target {
			t.Errorf("power actions after the partition of %s: %q", target, a)
		}
		if got, _ := waitHolder(t, inv, "", 10*time.Second); got != h {
			t.Errorf("after the partition of %s the IP answers from %s", target, got)
		}
		d.boots.Wait()
		labtest.WaitHealthy(t, inv, 3*time.Minute)
	})

	t.Run("API outage of a minute", func(t *testing.T) {
		// earlier subtests' failures go: the crashed node's operations, and
		// the partitioned node's fencing that could not reach the API
		labtest.Sh(t, inv, h, "crm_resource --cleanup >/dev/null; stonith_admin --cleanup --history '*' >/dev/null 2>&1 || true")
		labtest.WaitHealthy(t, inv, time.Minute)
		mark := len(d.api.Actions())
		for _, f := range []struct {
			status int
			what   string
		}{{http.StatusTooManyRequests, "429"}, {http.StatusServiceUnavailable, "503"}, {0, "no answer"}} {
			t.Logf("fake API: %s for 20s", f.what)
			d.api.Fail(f.status, 20*time.Second)
			time.Sleep(20 * time.Second)
		}
		time.Sleep(15 * time.Second) // a monitor after the outage
		if a := d.api.Actions()[mark:]; len(a) != 0 {
			t.Errorf("actions during or after the outage: %+v", a)
		}
		if got, _ := waitHolder(t, inv, "", 5*time.Second); got != h || d.holderNode() != h {
			t.Errorf("the IP moved: answers from %s, held by %s, was %s", got, d.holderNode(), h)
		}
		if out := labtest.Sh(t, inv, h, "crm_mon -1 --show-detail"); strings.Contains(out, "Failed") {
			t.Errorf("failed actions after the outage:\n%s", out)
		}
		if out := labtest.Sh(t, inv, h, "journalctl -q --no-pager -o cat | grep -c 'the API is unavailable' || true"); out == "0" {
			t.Error("the monitors did not log the outage")
		}
	})

	t.Run("revoked token", func(t *testing.T) {
		mark := len(d.api.Actions())
		d.api.SetToken("dop_v1_the-new-one")
		defer d.api.SetToken(doLabToken)
		var out string
		for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(2 * time.Second) {
			out = labtest.Sh(t, inv, h, "crm_mon -1 --show-detail")
			if strings.Contains(out, "was refused") {
				break
			}
		}
		if !strings.Contains(out, "/etc/debship/digitalocean-token was refused") {
			t.Errorf("crm_mon does not name the refused token:\n%s", out)
		}
		if a := d.powerActions(mark); len(a) != 0 {
			t.Errorf("a revoked token fenced: %q", a)
		}
		d.api.SetToken(doLabToken)
		labtest.Sh(t, inv, h, "crm_resource --cleanup >/dev/null")
		labtest.WaitHealthy(t, inv, 2*time.Minute)
		waitHolder(t, inv, "", 30*time.Second)
	})
}
