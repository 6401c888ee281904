package setup

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	toml "github.com/pelletier/go-toml/v2"
	"mvdan.cc/sh/v3/syntax"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/inventory/inventorytest"
	"gitlab.com/debship/debship/cluster/transport"
	"gitlab.com/debship/debship/internal/shtest"
	"gitlab.com/debship/debship/internal/tomlfile"
)

// hostileBase is a valid inventory in which every string field of
// inventory.Inventory is set, so that each can be replaced by a hostile value.
const hostileBase = `name = "web"
[ssh]
user = "admin"
key = "keys/admin"
known-hosts = "known_hosts"
[[node]]
name = "web1"
address = "192.0.2.11"
private-address = "10.114.0.11"
user = "admin"
port = 22
key = "keys/web1"
[[node]]
name = "web2"
address = "192.0.2.12"
private-address = "10.114.0.12"
[[node]]
name = "quorum"
address = "192.0.2.13"
private-address = "10.114.0.13"
role = "tiebreaker"
[floating-ip]
address = "198.51.100.20/32"
interface = "eth0"
provider = "digitalocean"
[floating-ip.digitalocean]
token-file = "do-token"
token-env = "DIGITALOCEAN_TOKEN"
api-url = "https://api.digitalocean.com"
[app]
package = "hello-web"
port = 8080
health-path = "/healthz"
unit = "hello-web.service"
[storage]
volume = "shared"
mount = "/srv/shared"
brick = "/bricks/shared"
[network]
type = "wireguard"
subnet = "10.8.0.0/24"
[ha]
dc-deadtime = "2s"
quorum-algorithm = "ffsplit"
[fencing]
agent = "fence_ipmilan"
options = { ip = "10.0.0.5" }
[hardening]
permit-root-login = "no"
allow-users = ["alice"]
trusted-sources = ["192.0.2.10"]
`

// What happens to a hostile value in a field.
const (
	// rejected: Load fails with "file:line: ..." at the field's key, naming it.
	rejected = "rejected at load"
	// quoted: Load may accept it; then every command setup runs (plan and
	// apply, every step) holds it as one literal word.
	quoted = "quoted"
	// quotedInDeploy: as quoted, for a value that only the deploy's
	// commands use (cluster/deploy tests it).
	quotedInDeploy = "quoted (deploy)"
	// local: a file or variable on the machine that runs debship; it never
	// reaches a node.
	local = "local only"
)

// hostileFields is every string field of the inventory, its outcome and a
// valid prefix the hostile value is appended to (a hostile value alone is
// tried too). A new field fails TestHostileInventoryValues until it is
// listed here.
var hostileFields = []struct {
	field, outcome, prefix string
}{
	{"name", rejected, "web"},
	{"ssh.user", rejected, "admin"},
	{"ssh.key", local, "keys/"},
	{"ssh.known-hosts", local, "known_hosts"},
	{"node[].name", rejected, "web1"},
	{"node[].address", rejected, "fe80::1%"},
	{"node[].private-address", rejected, "fe80::1%"},
	{"node[].role", rejected, "tiebreaker"},
	{"node[].user", rejected, "admin"},
	{"node[].key", local, "keys/"},
	{"floating-ip.address", rejected, "198.51.100.20/"},
	{"floating-ip.interface", rejected, "eth"},
	{"floating-ip.provider", rejected, "digitalocean"},
	{"floating-ip.digitalocean.token-file", local, "do-token"},
	{"floating-ip.digitalocean.token-env", rejected, "DO_"},
	{"floating-ip.digitalocean.api-url", quoted, "https://api.digitalocean.com/"},
	{"app.package", rejected, "hello-web"},
	{"app.health-path", quotedInDeploy, "/"},
	{"app.unit", rejected, "hello-web"},
	{"app.user", rejected, "hello"},
	{"storage.volume", rejected, "shared"},
	{"storage.mount", rejected, "/srv/"},
	{"storage.brick", rejected, "/bricks/"},
	{"network.type", rejected, "wireguard"},
	{"network.subnet", rejected, "10.8.0.0/"},
	{"ha.dc-deadtime", rejected, "2"},
	{"ha.quorum-algorithm", rejected, "lms"},
	{"fencing.agent", rejected, "fence_"},
	{"fencing.options{key}", rejected, "ip"},
	{"fencing.options{value}", quoted, "10.0.0.5"},
	{"fencing.password-file", local, "fence-"},
	{"fencing.password-env", rejected, "FENCE_"},
	// The hostile inventory's agent is fence_ipmilan: [fencing]'s
	// DigitalOcean keys are refused with it (TestDOFencingSpec covers them
	// with agent = "digitalocean").
	{"fencing.token-file", rejected, "do-token"},
	{"fencing.token-env", rejected, "DO_"},
	{"fencing.api-url", rejected, "https://api.digitalocean.com/"},
	{"fencing.droplets{key}", rejected, "web"},
	{"hardening.permit-root-login", rejected, "no"},
	{"hardening.allow-users[]", rejected, "alice"},
	{"hardening.trusted-sources[]", rejected, "fe80::1%"},
}

// leaf is one string in an inventory: its field ("node[].name"), the key
// whose line an error names, and how to set it.
type leaf struct {
	field string
	key   func(v string) string
	set   func(v string)
}

// leaves lists every string of the struct v points into, filling in nil
// pointers, empty slices and maps on the way, so a field is found whether
// or not the base inventory sets it.
func leaves(t *testing.T, v reflect.Value, field, key string) []leaf {
	t.Helper()
	var out []leaf
	join := func(a, b string) string {
		if a == "" {
			return b
		}
		return a + "." + b
	}
	for i := 0; i < v.NumField(); i++ {
		sf := v.Type().Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if !sf.IsExported() || name == "-" {
			continue
		}
		f, fname, fkey := v.Field(i), join(field, name), join(key, name)
		if f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == reflect.Struct {
			if f.IsNil() {
				f.Set(reflect.New(f.Type().Elem()))
			}
			f = f.Elem()
		}
		switch {
		case f.Kind() == reflect.String:
			out = append(out, leaf{fname, func(string) string { return fkey }, f.SetString})
		case f.Kind() == reflect.Struct:
			out = append(out, leaves(t, f, fname, fkey)...)
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
			if f.Len() == 0 {
				f.Set(reflect.Append(f, reflect.ValueOf("")))
			}
			out = append(out, leaf{fname + "[]", func(string) string { return fkey }, f.Index(0).SetString})
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct:
			if f.Len() == 0 {
				f.Set(reflect.Append(f, reflect.New(f.Type().Elem()).Elem()))
			}
			out = append(out, leaves(t, f.Index(0), fname+"[]", fkey+".0")...)
		case f.Kind() == reflect.Map && f.Type().Key().Kind() == reflect.String && f.Type().Elem().Kind() == reflect.String:
			if f.Len() == 0 {
				f.Set(reflect.ValueOf(map[string]string{"k": "v"}).Convert(f.Type()))
			}
			m := f
			first := func() (string, string) {
				keys := m.MapKeys()
				sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
				return keys[0].String(), m.MapIndex(keys[0]).String()
			}
			out = append(out,
				leaf{fname + "{key}", func(v string) string { return fkey + "." + v }, func(v string) {
					_, val := first()
					m.Set(reflect.ValueOf(map[string]string{v: val}).Convert(m.Type()))
				}},
				leaf{fname + "{value}", func(string) string { k, _ := first(); return fkey + "." + k }, func(v string) {
					k, _ := first()
					m.SetMapIndex(reflect.ValueOf(k), reflect.ValueOf(v))
				}})
		case f.Kind() == reflect.Map && f.Type().Key().Kind() == reflect.String && f.Type().Elem().Kind() == reflect.Int:
			// only the key (a node name) is text
			m := f
			out = append(out, leaf{fname + "{key}", func(v string) string { return fkey + "." + v }, func(v string) {
				m.Set(reflect.ValueOf(map[string]int{v: 1}).Convert(m.Type()))
			}})
		case f.Kind() == reflect.Bool, f.Kind() == reflect.Int,
			f.Kind() == reflect.Pointer && (f.Type().Elem().Kind() == reflect.Int || f.Type().Elem().Kind() == reflect.Bool),
			f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Int:
			// numbers and switches carry no text
		default:
			t.Fatalf("%s: a %s field; teach leaves() (hostile_test.go) to set it", fname, f.Type())
		}
	}
	return out
}

// hostileInventory writes the base inventory with field set to value and
// loads it; it returns the file, its text and Load's result.
func hostileInventory(t *testing.T, field, value string) (string, []byte, *inventory.Inventory, error) {
	t.Helper()
	var inv inventory.Inventory
	if err := toml.Unmarshal([]byte(hostileBase), &inv); err != nil {
		t.Fatal(err)
	}
	var key string
	for _, l := range leaves(t, reflect.ValueOf(&inv).Elem(), "", "") {
		if l.field == field {
			l.set(value)
			key = l.key(value)
		}
	}
	if key == "" {
		t.Fatalf("no field %s in the inventory", field)
	}
	doc, err := toml.Marshal(&inv)
	if err != nil {
		t.Fatal(err)
	}
	p := inventorytest.Write(t, t.TempDir(), string(doc))
	loaded, err := inventory.Load(p)
	return p + "\x00" + key, doc, loaded, err
}

// namesKey reports whether one line of err is "<file>:<line of key>: ..."
// and names the key.
func namesKey(err error, file, key string, doc []byte) bool {
	lines := tomlfile.Lines(doc)
	want := 0
	for k := key; k != "" && want == 0; {
		want = lines[k]
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	name := key
	if i := strings.IndexByte(key, '.'); i >= 0 {
		parts := strings.Split(key, ".")
		name = parts[len(parts)-1]
		if strings.HasPrefix(key, "fencing.options.") {
			name = "options"
		}
		if strings.HasPrefix(key, "fencing.droplets.") {
			name = "droplets"
		}
	}
	prefix := fmt.Sprintf("%s:%d: ", file, want)
	for _, l := range strings.Split(err.Error(), "\n") {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, name) {
			return true
		}
	}
	return false
}

// hostileForms are the values tried in a field: the hostile value alone,
// and appended to a valid prefix (except a leading '-', which is only
// hostile at the start).
func hostileForms(prefix string) []string {
	var out []string
	for _, h := range shtest.Hostile {
		out = append(out, h)
		if !strings.HasPrefix(h, "-") {
			out = append(out, prefix+h)
		}
	}
	return out
}

// fakeAnswers are three states of a node, so that apply takes each of its
// branches: nothing there yet; everything there but different; and a
// cluster that is up with resources of the right agents.
func fakeAnswers() [][][2]string {
	crm := `<pacemaker-result><summary><current_dc present="true" name="web1" with_quorum="true"/></summary><nodes>` +
		`<node name="web1" online="true"/><node name="web2" online="true"/></nodes></pacemaker-result>`
	data := base64.StdEncoding.EncodeToString([]byte("data"))
	common := [][2]string{{"wg pubkey", "cHVia2V5cHVia2V5cHVia2V5cHVia2V5cHVia2V5cHU="}, {"base64 -w0", data}, {"dpkg-deb -f", "hello-web"}}
	return [][][2]string{
		common,
		append([][2]string{
			{"crm_mon --output-as=xml", crm},
			{"cibadmin --query --xpath", `<primitive id="x" class="ocf" provider="heartbeat" type="Dummy"/>`},
			{"grep -c '^# Generated by debship'", "0"},
			{"gluster volume info", "Volume Name: shared\nStatus: Created\nBrick1: 10.8.0.1:/elsewhere\n"},
			{"cat /etc/fstab", "localhost:/shared /srv/shared glusterfs defaults 0 0\n"},
			{"sha256sum", "0000 600 0:0"},
		}, common...),
		append([][2]string{
			{"crm_mon", crm},
			{"cibadmin --query --xpath", `<primitive id="debship-fence" class="stonith" type="fence_ipmilan"><instance_attributes><nvpair name="ip" value="old"/></instance_attributes></primitive>`},
			{"gluster pool list", "UUID Hostname State\n1 10.8.0.2 Connected\n2 10.8.0.3 Connected\n"},
		}, common...),
	}
}

// runEverything runs plan, then the check and the apply of every step of
// every phase on every node, whatever the checks say: the fake cannot
// play a whole cluster, and each step's commands must be seen. It returns
// every command and every uploaded shell script.
func runEverything(t *testing.T, inv *inventory.Inventory, answers [][2]string) []string {
	t.Helper()
	conns := fakeConns(inv, answers...)
	deb := filepath.Join(t.TempDir(), "hello-web_1.0-1_all.deb")
	if err := os.WriteFile(deb, []byte("!<arch>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := NewRun(inv, conns, Options{
		Package: deb,
		Relogin: func(_ context.Context, n inventory.Node) (transport.Transport, error) { return conns[n.Name], nil },
		DOToken: func() (string, error) { return "token", nil },
	})
	if err != nil {
		// A local secret file that cannot be read stops the run before
		// any node is touched: nothing ran, so nothing can be unquoted.
		t.Logf("setup refused before connecting: %v", err)
		return nil
	}
	ctx := context.Background()
	_, _ = r.Plan(ctx)
	for _, ph := range r.Phases() {
		for _, st := range ph.Stages {
			for _, n := range st.Nodes {
				tg := r.target(n)
				for _, s := range st.Steps {
					// Steps that wait for the cluster give up at once.
					sctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
					_, _ = s.Check(sctx, tg)
					_ = s.Apply(sctx, tg)
					cancel()
				}
			}
		}
	}
	var out []string
	for _, c := range conns {
		f := c.(*fakeT)
		out = append(out, f.ran...)
		for _, b := range f.uploads {
			if strings.HasPrefix(b, "#!/bin/sh") {
				out = append(out, b)
			}
		}
	}
	return out
}

// TestHostileInventoryValues feeds hostile values (quotes, ';', $(…),
// backticks, white space, newlines, a leading '-', non-ASCII, "..") into
// every string field of the inventory: each is refused by Load with
// "file:line:" at that key, or every command setup would run, and every
// shell script it would upload, holds it as one literal word (parsed by a
// real shell parser). A new field of inventory.Inventory without an entry
// in hostileFields fails the test.
func TestHostileInventoryValues(t *testing.T) {
	var inv inventory.Inventory
	have := map[string]bool{}
	for _, l := range leaves(t, reflect.ValueOf(&inv).Elem(), "", "") {
		have[l.field] = true
	}
	listed := map[string]bool{}
	for _, f := range hostileFields {
		listed[f.field] = true
		if !have[f.field] {
			t.Errorf("hostileFields lists %s, which inventory.Inventory does not have; remove it", f.field)
		}
	}
	for f := range have {
		if !listed[f] {
			t.Errorf("inventory field %s has no case in hostileFields (hostile_test.go): add it with its outcome", f)
		}
	}
	if _, _, _, err := hostileInventory(t, "name", "web"); err != nil {
		t.Fatalf("the base inventory does not load: %v", err)
	}

	for _, f := range hostileFields {
		t.Run(f.field, func(t *testing.T) {
			t.Parallel()
			accepted, reached := 0, 0
			for _, v := range hostileForms(f.prefix) {
				where, doc, inv, err := hostileInventory(t, f.field, v)
				file, key, _ := strings.Cut(where, "\x00")
				if err != nil {
					if !namesKey(err, file, key, doc) {
						t.Errorf("%s = %q: the error does not name %s at its line:\n%v", f.field, v, key, err)
					}
					continue
				}
				if f.outcome == rejected {
					t.Errorf("%s = %q loads; want an error at its line", f.field, v)
					continue
				}
				accepted++
				h := hostilePart(v)
				modes := fakeAnswers()
				if f.outcome == local {
					modes = modes[1:2] // no state of a node makes it use a local file
				}
				for _, answers := range modes {
					for _, cmd := range runEverything(t, inv, answers) {
						if f.outcome == local {
							if strings.Contains(cmd, h) {
								t.Errorf("%s = %q (a local path or variable) reaches a node:\n%s", f.field, v, cmd)
							}
							continue
						}
						found, err := shtest.Literal(cmd, h)
						if err != nil {
							t.Errorf("%s = %q: %v", f.field, v, err)
						}
						if found {
							reached++
						}
					}
				}
			}
			if f.outcome != rejected && accepted == 0 {
				t.Errorf("%s: every hostile value is rejected; list it as %q", f.field, rejected)
			}
			if f.outcome == quoted && accepted > 0 && reached == 0 {
				t.Errorf("%s: no command of setup holds the value; is the outcome %q or %q?", f.field, quotedInDeploy, local)
			}
		})
	}
}

// hostilePart is the hostile value inside a form (the prefix stripped).
func hostilePart(v string) string {
	for _, h := range shtest.Hostile {
		if strings.HasSuffix(v, h) {
			return h
		}
	}
	return v
}

// readOnlyCommands are the commands a Check may run, each with a test of
// its arguments that keeps it to reading.
var readOnlyCommands = map[string]func(args []string) bool{
	"test": anyArgs, "[": anyArgs, "echo": anyArgs, "getent": anyArgs, "printf": anyArgs, "true": anyArgs,
	"cat": anyArgs, "sha256sum": anyArgs, "cut": anyArgs, "stat": anyArgs, "head": anyArgs,
	"awk": anyArgs, "grep": anyArgs, "tr": anyArgs, "findmnt": anyArgs, "dpkg-query": anyArgs, "crm_mon": anyArgs,
	"command":         func(a []string) bool { return len(a) > 0 && a[0] == "-v" },
	"systemctl":       func(a []string) bool { return hasAny(a, "is-enabled", "is-active", "show") },
	"cibadmin":        func(a []string) bool { return hasAny(a, "--query") },
	"crm_attribute":   func(a []string) bool { return hasAny(a, "--query") },
	"wg":              func(a []string) bool { return len(a) == 1 && a[0] == "pubkey" },
	"modprobe":        func(a []string) bool { return hasAny(a, "--dry-run") },
	"ping":            func(a []string) bool { return hasAny(a, "-c") },
	"certutil":        func(a []string) bool { return hasAny(a, "-L") },
	"fail2ban-client": func(a []string) bool { return len(a) > 0 && a[0] == "status" },
	"ufw":             func(a []string) bool { return len(a) > 0 && a[0] == "status" },
	"gluster": func(a []string) bool {
		s := strings.Join(a, " ")
		return strings.HasPrefix(s, "pool list") || strings.HasPrefix(s, "volume info ") || strings.HasPrefix(s, "volume get ") ||
			(strings.HasPrefix(s, "volume heal ") && strings.HasSuffix(s, " info"))
	},
}

func anyArgs([]string) bool { return true }

func hasAny(args []string, want ...string) bool {
	for _, a := range args {
		for _, w := range want {
			if a == w {
				return true
			}
		}
	}
	return false
}

// writes lists what a command changes: a command that is not known to be
// read-only, or output redirected to a file other than /dev/null.
func writes(t *testing.T, cmd string) []string {
	t.Helper()
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX)).Parse(strings.NewReader(cmd), "")
	if err != nil {
		return []string{fmt.Sprintf("does not parse: %v", err)}
	}
	lit := func(w *syntax.Word) string {
		if s := w.Lit(); s != "" {
			return s
		}
		var b strings.Builder
		for _, p := range w.Parts {
			switch p := p.(type) {
			case *syntax.SglQuoted:
				b.WriteString(p.Value)
			case *syntax.DblQuoted:
				for _, q := range p.Parts {
					if l, ok := q.(*syntax.Lit); ok {
						b.WriteString(l.Value)
					}
				}
			case *syntax.Lit:
				b.WriteString(p.Value)
			default:
				b.WriteString("?")
			}
		}
		return b.String()
	}
	var out []string
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.Redirect:
			switch n.Op {
			case syntax.RdrOut, syntax.AppOut, syntax.RdrAll, syntax.AppAll, syntax.RdrInOut, syntax.ClbOut:
				if w := lit(n.Word); w != "/dev/null" {
					out = append(out, "writes to "+w)
				}
			}
		case *syntax.CallExpr:
			if len(n.Args) == 0 {
				return true
			}
			name := lit(n.Args[0])
			var args []string
			for _, a := range n.Args[1:] {
				args = append(args, lit(a))
			}
			if ok := readOnlyCommands[name]; ok == nil || !ok(args) {
				out = append(out, "runs "+strings.Join(append([]string{name}, args...), " "))
			}
		}
		return true
	})
	return out
}

// TestPlanRunsOnlyReadOnlyCommands: cluster plan runs the checks only, and
// a check only reads. Every command plan sends to a node, in each state
// of the fake nodes, is parsed; each command it runs must be a known
// reader, and output may go to /dev/null only. Nothing is uploaded.
func TestPlanRunsOnlyReadOnlyCommands(t *testing.T) {
	_, _, inv, err := hostileInventory(t, "name", "web")
	if err != nil {
		t.Fatal(err)
	}
	tinc := *inv
	tinc.Network.Type = inventory.NetworkTinc
	for _, inv := range []*inventory.Inventory{inv, &tinc} {
		for _, answers := range fakeAnswers() {
			conns := fakeConns(inv, answers...)
			r, err := NewRun(inv, conns, Options{Package: "/nonexistent/hello-web_1.0-1_all.deb", DOToken: func() (string, error) { return "token", nil }})
			if err != nil {
				t.Fatal(err)
			}
			_, _ = r.Plan(context.Background())
			for name, c := range conns {
				f := c.(*fakeT)
				if len(f.uploads) > 0 {
					t.Errorf("plan uploaded to %s: %v", name, slices.Sorted(maps.Keys(f.uploads)))
				}
				for _, cmd := range f.ran {
					if w := writes(t, cmd); len(w) > 0 {
						t.Errorf("plan on %s (%s network): `%s` %s", name, inv.Network.Type, cmd, strings.Join(w, "; "))
					}
				}
			}
		}
	}
}
