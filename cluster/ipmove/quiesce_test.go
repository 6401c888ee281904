package ipmove

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.com/debship/debship/internal/testenv"
	"gitlab.com/debship/debship/internal/testnet"
	"gitlab.com/debship/debship/templates"
)

// TestQuiesce runs quiesce.sh, as move-ip.sh does before the floating IP
// leaves a node, against an app that pauses between the head and the body
// of each answer and clients that keep their connections busy: every
// kept-alive connection must end without an answer cut short. Go's
// net/http client sends a GET again on a new connection when a reused one
// is reset before any of its answer came, never once part of it came; a
// client that opens a connection per request never sends again. So
// neither may see a single error. It runs in a network namespace of its
// own (its iptables rules touch nothing else), as root.
func TestQuiesce(t *testing.T) { inNetns(t, quiesceInNetns) }

// inNetns runs f in a network namespace of its own: the test binary again,
// under unshare, for this test alone.
func inNetns(t *testing.T, f func(t *testing.T)) {
	if os.Getenv("DEBSHIP_TEST_NETNS") == t.Name() {
		f(t)
		return
	}
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "unshare", "iptables", "ss", "ip")
	cmd := exec.Command("unshare", "--net", "--", os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "DEBSHIP_TEST_NETNS="+t.Name())
	out, err := cmd.CombinedOutput()
	t.Logf("in a network namespace of its own:\n%s", out)
	if err != nil {
		t.Fatalf("%v", err)
	}
}

// TestLeftovers puts the rules of a move killed midway (move-ip.sh's and
// handover.sh's, as they render) and another firewall's rules into
// iptables, runs leftovers.sh, and wants exactly debship's gone.
func TestLeftovers(t *testing.T) {
	inNetns(t, func(t *testing.T) {
		ipt := func(args ...string) {
			t.Helper()
			if out, err := exec.Command("iptables", append([]string{"-w", "5"}, args...)...).CombinedOutput(); err != nil {
				t.Fatalf("iptables %s: %v: %s", strings.Join(args, " "), err, out)
			}
		}
		// Another firewall's rules and chains stay.
		ipt("-N", "ufw-user-input")
		ipt("-A", "INPUT", "-j", "ufw-user-input")
		ipt("-A", "ufw-user-input", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
		ipt("-t", "mangle", "-A", "PREROUTING", "-p", "tcp", "--dport", "8000", "-m", "comment", "--comment", "debship-handover-not", "-j", "ACCEPT")
		before := iptablesAll(t)
		// What the scripts leave when killed midway: quiesce.sh's own
		// freeze_on, move-ip.sh's and handover.sh's rules as they write them.
		script := `set -u; vip=10.0.0.100 port=8000 to_addr=10.0.0.12 busy_awk=; . "$1"; ` +
			`freeze_on && hold_back 10.0.0.2:40001 && ` +
			`iptables -w 5 -I INPUT -d $vip/32 -p tcp --dport $port --syn -m comment --comment debship-drain -j DROP && ` +
			`iptables -w 5 -t mangle -N debship-handover && iptables -w 5 -t mangle -A debship-handover -m socket -j RETURN && ` +
			`iptables -w 5 -t mangle -I PREROUTING -d $vip/32 -p tcp --dport $port -j debship-handover && ` +
			`iptables -w 5 -t nat -I PREROUTING -d $vip/32 -p tcp --dport $port -m comment --comment debship-handover -j DNAT --to-destination $to_addr:$port`
		libPath := writeTemplate(t, "deploy/quiesce.sh")
		if out, err := exec.Command("sh", "-c", script, "sh", libPath).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		leftovers, err := templates.Raw("deploy/leftovers.sh")
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("sh", "-c", string(leftovers)).CombinedOutput()
		if err != nil {
			t.Fatalf("leftovers.sh: %v: %s", err, out)
		}
		t.Logf("leftovers.sh:\n%s", out)
		if got := strings.Count(string(out), "\n"); got != 6 {
			t.Errorf("leftovers.sh reported %d removals, want 6 (the drain rule, two jumps, two chains, the DNAT rule)", got)
		}
		if after := iptablesAll(t); after != before {
			t.Errorf("after leftovers.sh:\n%s\nwant:\n%s", after, before)
		}
		if out, err := exec.Command("sh", "-c", string(leftovers)).CombinedOutput(); err != nil || len(out) != 0 {
			t.Errorf("a second run: %v: %q, want nothing removed", err, out)
		}
	})
}

// writeTemplate writes an embedded file as it is into a temporary
// directory, for sh to source.
func writeTemplate(t *testing.T, name string) string {
	t.Helper()
	b, err := templates.Raw(name)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), filepath.Base(name))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func iptablesAll(t *testing.T) string {
	t.Helper()
	var all strings.Builder
	for _, table := range []string{"filter", "mangle", "nat"} {
		out, err := exec.Command("iptables", "-w", "5", "-t", table, "-S").CombinedOutput()
		if err != nil {
			t.Fatalf("iptables -S: %v: %s", err, out)
		}
		all.WriteString(table + ":\n" + string(out))
	}
	return all.String()
}

// appInNetns brings the namespace's loopback up and serves pausingApp on
// it until the test ends; it returns the app's port.
func appInNetns(t *testing.T) int {
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	return testnet.Serve(t, pausingApp).Port
}

func quiesceInNetns(t *testing.T) {
	port := appInNetns(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	var stop atomic.Bool
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	var requests atomic.Int64
	client := func(kind string, c *http.Client, pause time.Duration) {
		defer wg.Done()
		for !stop.Load() {
			resp, err := c.Get(url)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("HTTP %d", resp.StatusCode)
				}
			}
			requests.Add(1)
			if err != nil {
				mu.Lock()
				errs = append(errs, kind+": "+err.Error())
				mu.Unlock()
			}
			time.Sleep(time.Duration(rand.Int64N(int64(pause) + 1)))
		}
	}
	// Go's defaults (keep-alive; a GET is sent again on a fresh connection
	// when a reused one breaks before any answer came), four at once: the
	// four connections are never idle for long.
	keep := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 5 * time.Second}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	for range 4 {
		wg.Add(1)
		go client("kept-alive", keep, 5*time.Millisecond)
	}
	wg.Add(1)
	go client("connection per request", fresh, 20*time.Millisecond)
	defer func() { stop.Store(true); wg.Wait() }()

	busyAwk, err := templates.Raw("deploy/busy.awk")
	if err != nil {
		t.Fatal(err)
	}
	libPath := writeTemplate(t, "deploy/quiesce.sh")
	// As move-ip.sh without the handover: new connections are held back
	// (their SYN dropped) while the old ones end.
	syn := []string{"INPUT", "-d", "127.0.0.1/32", "-p", "tcp", "--dport", fmt.Sprint(port), "--syn", "-j", "DROP"}
	resetRE := regexp.MustCompile(`reset_idle=(\d+)`)
	const rounds = 4
	for i := range rounds {
		// Until the clients are back on kept-alive connections (after a
		// round, their SYNs were held back: 1 s), then some traffic.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			est, _ := exec.Command("ss", "-Htn", "state", "established", "src", fmt.Sprintf("127.0.0.1:%d", port)).Output()
			if strings.Count(string(est), "\n") >= 4 {
				break
			}
		}
		time.Sleep(300 * time.Millisecond)
		if out, err := exec.Command("iptables", append([]string{"-w", "5", "-I"}, syn...)...).CombinedOutput(); err != nil {
			t.Fatalf("iptables: %v: %s", err, out)
		}
		start := time.Now()
		out, err := exec.Command("sh", "-c", `set -u; vip=127.0.0.1 port=$1 busy_awk=$2; . "$3"; `+quiesceCall,
			"sh", fmt.Sprint(port), string(busyAwk), libPath).CombinedOutput()
		took := time.Since(start)
		left, _ := exec.Command("ss", "-Htn", "state", "established", "src", fmt.Sprintf("127.0.0.1:%d", port)).Output()
		if out2, err := exec.Command("iptables", append([]string{"-w", "5", "-D"}, syn...)...).CombinedOutput(); err != nil {
			t.Fatalf("iptables: %v: %s", err, out2)
		}
		t.Logf("round %d: quiesce took %s: %s", i+1, took.Round(time.Millisecond), strings.Join(strings.Fields(string(out)), " "))
		if err != nil {
			t.Fatalf("quiesce: %v: %s", err, out)
		}
		if strings.Contains(string(out), "warning") {
			t.Errorf("round %d: quiesce warned: %s", i+1, out)
		}
		if m := resetRE.FindSubmatch(out); m == nil || string(m[1]) == "0" {
			t.Errorf("round %d: no kept-alive connection was reset: %s", i+1, out)
		}
		if len(left) > 0 {
			t.Errorf("round %d: connections left after quiesce:\n%s", i+1, left)
		}
	}
	time.Sleep(1500 * time.Millisecond) // the held-back SYNs are sent again
	stop.Store(true)
	wg.Wait()
	t.Logf("%d requests, %d failed", requests.Load(), len(errs))
	for _, e := range errs {
		t.Errorf("request failed: %s", e)
	}
	if requests.Load() < 300 {
		t.Errorf("only %d requests", requests.Load())
	}
	if out, _ := exec.Command("iptables", "-t", "mangle", "-S").CombinedOutput(); strings.Contains(string(out), "debship-freeze") {
		t.Errorf("freeze_off left rules:\n%s", out)
	}
}

// TestQuiesceHoldBackFails: when iptables refuses to hold a connection
// back (hold_back fails: no socket match, a full table), quiesce looks
// again until its bound, and must pause between two looks: it runs on the
// node that serves the app while the app still answers there, and a loop
// without a pause takes a CPU for the whole bound. Each look costs some
// 15 ms of commands here, so the number of looks alone would not tell a
// spinning loop; the pauses are counted instead, by a sleep that counts.
func TestQuiesceHoldBackFails(t *testing.T) {
	inNetns(t, func(t *testing.T) {
		port := appInNetns(t)
		// A kept-alive connection that has answered once, idle since.
		c := &http.Client{Transport: &http.Transport{}}
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		busyAwk, err := templates.Raw("deploy/busy.awk")
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-c", `set -u; vip=127.0.0.1 port=$1 busy_awk=$2; . "$3"; looks=0; paused=0; `+
			`hold_back() { looks=$((looks + 1)); return 1; }; sleep() { paused=$((paused + 1)); command sleep "$@"; }; `+
			`quiesce 1000; freeze_off; echo "looks=$looks paused=$paused"`,
			"sh", fmt.Sprint(port), string(busyAwk), writeTemplate(t, "deploy/quiesce.sh"))
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start)
		if err != nil {
			t.Fatalf("quiesce: %v: %s", err, out)
		}
		cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		t.Logf("quiesce took %s, %s of CPU (its commands included): %s", took.Round(time.Millisecond), cpu.Round(time.Millisecond), strings.Join(strings.Fields(string(out)), " "))
		var looks, paused int
		if _, err := fmt.Sscanf(string(out[strings.LastIndex(string(out), "looks="):]), "looks=%d paused=%d", &looks, &paused); err != nil || looks < 2 {
			t.Fatalf("quiesce did not look again after hold_back failed (%v): %s", err, out)
		}
		// The last look ends at the bound, without a pause.
		if paused < looks-1 {
			t.Errorf("quiesce looked %d times and paused %d times (%s of CPU in %s): it spins between looks", looks, paused, cpu.Round(time.Millisecond), took.Round(time.Millisecond))
		}
		if !strings.Contains(string(out), "reset_idle=1") {
			t.Errorf("the connection was not reset at the bound: %s", out)
		}
	})
}

// TestHeldPeers: quiesce learns from iptables' counters which held-back
// clients have sent their next request (their answer is complete, so they
// are reset at once) and how many segments it held back (held_segments=
// in the deploy's log). Two connections are held back; the client of one
// sends a request.
func TestHeldPeers(t *testing.T) {
	inNetns(t, func(t *testing.T) {
		port := appInNetns(t)
		var conns []net.Conn
		var peers []string
		for range 2 {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns = append(conns, c)
			peers = append(peers, c.LocalAddr().String())
		}
		lib := writeTemplate(t, "deploy/quiesce.sh")
		sh := func(script string) string {
			out, err := exec.Command("sh", "-c", `set -u; vip=127.0.0.1 port=$1 busy_awk=; . "$2"; `+script, "sh", fmt.Sprint(port), lib).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v: %s", script, err, out)
			}
			return string(out)
		}
		sh("freeze_on && hold_back " + strings.Join(peers, " "))
		defer sh("freeze_off")
		if _, err := io.WriteString(conns[1], "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		out := sh(`echo "next_sent=$(held_peers)"; echo "held_segments=$(held_segments)"`)
		t.Logf("%s", out)
		if want := "next_sent=" + peers[1] + "\n"; !strings.Contains(out, want) {
			t.Errorf("held_peers: %q, want %q", out, want)
		}
		var segs int
		if _, err := fmt.Sscanf(out[strings.Index(out, "held_segments="):], "held_segments=%d", &segs); err != nil || segs < 1 {
			t.Errorf("held_segments: %q, want at least 1", out)
		}
	})
}

// quiesceCall is replaced by the check that this test can fail.
var quiesceCall = "quiesce 1000; freeze_off"

// pausingApp answers every request in two writes, up to 40 ms apart (a
// Python app under load does that: wsgiref writes the head and the body
// apart), on kept-alive connections.
func pausingApp(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		body := strings.Repeat("x", 100) + "\n"
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", len(body)); err != nil {
			return
		}
		time.Sleep(time.Duration(rand.Int64N(int64(40 * time.Millisecond))))
		if _, err := io.WriteString(c, body); err != nil {
			return
		}
		if req.Close {
			return
		}
	}
}
