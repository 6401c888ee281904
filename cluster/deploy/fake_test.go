package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/transport"
	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/debbuild/inspect"
)

// fakeCluster simulates, for unit tests, the parts of a two-node pacemaker
// cluster a deploy talks to: the app clone and the floating IP placed
// instantly after each change, bans and moves as location constraints, the
// CIB lock, dpkg, the nodes' package cache and the app's health answer. It
// records every command per node.
type fakeCluster struct {
	mu       sync.Mutex
	nodes    []string
	addr     map[string]string // address -> node
	inst     map[string]string // node -> installed version
	files    map[string]map[string][]byte
	history  map[string][]string
	banned   map[string]bool
	prefer   string // node the floating IP is moved to
	holder   string
	lock     string // the lock's XML, "" if free
	failed   map[string]bool
	offline  map[string]bool
	ran      []string       // "node: cmd"
	bad      map[string]int // version -> health status it answers
	noStart  map[string]bool
	ipMoves  int
	aptFails map[string]bool // version whose simulate fails
	release  map[string]int  // node -> VERSION_ID (13 unless set)
	// noHandover: handover.sh cannot add its rule on the IP's new holder
	noHandover bool
	// leftovers: what leftovers.sh reports removing on a node, once.
	leftovers map[string]string
	// migration is the exit status of a version's migration (none: the
	// .deb has no migration); migrations records "node version" per run.
	migration  map[string]int
	migrations []string
	// beforeLock, when set, is called before each CIB command on the
	// deploy lock (outside the fake's mutex, so it may send commands of
	// its own): a second deploy acts between two of the first's.
	beforeLock func(cmd string)
}

func newFakeCluster(version string) *fakeCluster {
	f := &fakeCluster{
		nodes: []string{"node1", "node2"}, addr: map[string]string{"10.0.0.11": "node1", "10.0.0.12": "node2"},
		inst: map[string]string{}, files: map[string]map[string][]byte{}, history: map[string][]string{},
		banned: map[string]bool{}, failed: map[string]bool{}, offline: map[string]bool{},
		bad: map[string]int{}, migration: map[string]int{}, noStart: map[string]bool{}, aptFails: map[string]bool{}, holder: "node1",
		release: map[string]int{},
	}
	for _, n := range f.nodes {
		f.inst[n] = version
		f.files[n] = map[string][]byte{}
	}
	return f
}

func (f *fakeCluster) inventory(t *testing.T) *inventory.Inventory {
	t.Helper()
	inv := &inventory.Inventory{
		Name: "fake", SSH: inventory.SSH{User: "admin", Port: 22},
		Nodes:      []inventory.Node{{Name: "node1", Address: "10.0.0.11"}, {Name: "node2", Address: "10.0.0.12"}},
		FloatingIP: inventory.FloatingIP{Address: "10.0.0.100/24", Provider: inventory.ProviderIPaddr2},
		App:        inventory.App{Package: "hello-web", Port: 8080, HealthPath: "/healthz"},
		Network:    inventory.Network{Type: inventory.NetworkNone},
	}
	if err := inv.Validate(); err != nil {
		t.Fatal(err)
	}
	return inv
}

func (f *fakeCluster) conns() map[string]transport.Transport {
	m := map[string]transport.Transport{}
	for _, n := range f.nodes {
		m[n] = &fakeNode{c: f, name: n}
	}
	return m
}

// running reports whether the app runs on n (called with mu held).
func (f *fakeCluster) running(n string) bool {
	return !f.offline[n] && !f.banned[n] && !f.failed[n] && f.inst[n] != ""
}

// place puts the floating IP where pacemaker would.
func (f *fakeCluster) place() {
	for _, n := range f.nodes {
		if f.inst[n] != "" && f.noStart[f.inst[n]] && !f.banned[n] {
			f.failed[n] = true
		}
	}
	old := f.holder
	switch {
	case f.prefer != "" && f.running(f.prefer):
		f.holder = f.prefer
	case f.holder != "" && f.running(f.holder):
	default:
		f.holder = ""
		for _, n := range f.nodes {
			if f.running(n) {
				f.holder = n
				break
			}
		}
	}
	if old != "" && f.holder != old {
		f.ipMoves++
	}
}

func (f *fakeCluster) crmMon() string {
	var b strings.Builder
	b.WriteString(`<pacemaker-result><summary><current_dc present="true" name="node1" with_quorum="true"/><cluster_options maintenance-mode="false"/></summary><nodes>`)
	for _, n := range f.nodes {
		fmt.Fprintf(&b, `<node name="%s" online="%v" standby="false" maintenance="false" unclean="false"/>`, n, !f.offline[n])
	}
	b.WriteString(`</nodes><resources>`)
	if f.holder != "" {
		fmt.Fprintf(&b, `<resource id="floating-ip" resource_agent="ocf:heartbeat:IPaddr2" role="Started" active="true" managed="true"><node name="%s"/></resource>`, f.holder)
	} else {
		b.WriteString(`<resource id="floating-ip" resource_agent="ocf:heartbeat:IPaddr2" role="Stopped" active="false" managed="true"/>`)
	}
	b.WriteString(`<clone id="app-clone" managed="true">`)
	for _, n := range f.nodes {
		if f.running(n) {
			fmt.Fprintf(&b, `<resource id="app" resource_agent="systemd:hello-web" role="Started" active="true" managed="true"><node name="%s"/></resource>`, n)
		} else {
			b.WriteString(`<resource id="app" resource_agent="systemd:hello-web" role="Stopped" active="false" managed="true"/>`)
		}
	}
	b.WriteString(`</clone></resources><failures>`)
	for _, n := range f.nodes {
		if f.failed[n] {
			fmt.Fprintf(&b, `<failure op_key="app_start_0" node="%s" exitstatus="error"/>`, n)
		}
	}
	b.WriteString(`</failures></pacemaker-result>`)
	return b.String()
}

// commandsOn lists the commands run on node matching re.
func (f *fakeCluster) commands(re string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := regexp.MustCompile(re)
	var out []string
	for _, c := range f.ran {
		if r.MatchString(c) {
			out = append(out, c)
		}
	}
	return out
}

type fakeNode struct {
	c    *fakeCluster
	name string
}

func (n *fakeNode) Node() string { return n.name }
func (n *fakeNode) Close() error { return nil }

func (n *fakeNode) Upload(ctx context.Context, path string, data []byte, mode os.FileMode) error {
	f := n.c
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.offline[n.name] {
		return fmt.Errorf("%s: connection lost", n.name)
	}
	f.ran = append(f.ran, n.name+": upload "+path)
	f.files[n.name][path] = append([]byte(nil), data...)
	return nil
}

var (
	reNode    = regexp.MustCompile(`--node '?([a-z0-9-]+)'?`)
	reURL     = regexp.MustCompile(`http://([0-9.]+):`)
	reRecord  = regexp.MustCompile(`/var/lib/debship/\.record-[A-Za-z0-9-]+`)
	reDebPath = regexp.MustCompile(`(/var/cache/debship/[^' ]+\.deb)`)
	reMoveTo  = regexp.MustCompile(`to='?([a-z0-9-]+)'?\n`)
)

func (n *fakeNode) Run(ctx context.Context, cmd string) ([]byte, []byte, error) {
	f := n.c
	if f.beforeLock != nil && strings.HasPrefix(cmd, "cibadmin ") && strings.Contains(cmd, lockID) {
		f.beforeLock(cmd)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	f.ran = append(f.ran, n.name+": "+cmd)
	if f.offline[n.name] {
		return nil, nil, &transport.CommandError{Node: n.name, Cmd: cmd, ExitCode: -1, Stderr: "connection lost"}
	}
	ok := func(s string) ([]byte, []byte, error) { return []byte(s), nil, nil }
	fail := func(code int, s string) ([]byte, []byte, error) {
		return nil, []byte(s), &transport.CommandError{Node: n.name, Cmd: cmd, ExitCode: code, Stderr: s}
	}
	files := f.files[n.name]
	switch {
	case strings.HasPrefix(cmd, "# facts.sh"):
		var b strings.Builder
		rel := f.release[n.name]
		if rel == 0 {
			rel = 13
		}
		fmt.Fprintf(&b, "installed=%s\ndpkg_status=ii\naudit=0\nfree_kb=10000000\nunit=%s\narch=amd64\nrelease=%d\niptables=yes\ncurl=yes\n", f.inst[n.name], map[bool]string{true: "active", false: "inactive"}[f.running(n.name)], rel)
		var paths []string
		for p := range files {
			if strings.HasPrefix(p, inventory.PackageCache+"/") && !strings.Contains(p, "/incoming/") {
				paths = append(paths, p)
			}
		}
		sort.Strings(paths)
		for _, p := range paths {
			sum := sha256.Sum256(files[p])
			fmt.Fprintf(&b, "deb %s %s %s\n", hex.EncodeToString(sum[:]), debVersionOf(files[p]), p)
		}
		return ok(b.String())
	case strings.Contains(cmd, "ufw status"): // status' node facts
		return ok("Status: active")
	case strings.Contains(cmd, "fail2ban-client"):
		return ok("running")
	case strings.HasPrefix(cmd, "# migrate.sh"):
		v := f.inst[n.name]
		rc, ok2 := f.migration[v]
		if !ok2 {
			return ok("migration=none")
		}
		f.migrations = append(f.migrations, n.name+" "+v)
		if rc != 0 {
			return ok(fmt.Sprintf("migration=ran\nrc=1\nstatus=%d\n-- output\nApplying 0002_add_column...\nTraceback (most recent call last):\nsqlite3.OperationalError: no such table: shop_item", rc))
		}
		return ok("migration=ran\nrc=0\nstatus=0\n-- output\nApplying 0002_add_column... OK")
	case strings.HasPrefix(cmd, "crm_mon"):
		return ok(f.crmMon())
	case strings.HasPrefix(cmd, "cibadmin --query --scope constraints"):
		var b strings.Builder
		b.WriteString("<constraints>")
		for _, m := range f.nodes {
			if f.banned[m] {
				fmt.Fprintf(&b, `<rsc_location id="%s" rsc="app-clone" node="%s" score="-INFINITY"/>`, banID(m), m)
			}
		}
		if f.prefer != "" {
			fmt.Fprintf(&b, `<rsc_location id="%s" rsc="floating-ip" node="%s" score="INFINITY"/>`, preferIPID, f.prefer)
		}
		b.WriteString("</constraints>")
		return ok(b.String())
	case strings.HasPrefix(cmd, "cibadmin --query --xpath"):
		if f.lock == "" {
			return fail(105, "no such object")
		}
		return ok(f.lock)
	case strings.HasPrefix(cmd, "cibadmin --create"):
		if f.lock != "" {
			return fail(76, "Name not unique on network")
		}
		x := cmd[strings.Index(cmd, "<") : strings.LastIndex(cmd, ">")+1]
		f.lock = strings.ReplaceAll(x, `'"'"'`, "'")
		return ok("")
	case strings.HasPrefix(cmd, "cibadmin --delete "):
		if err := f.deleteLock(strings.TrimPrefix(cmd, "cibadmin --delete ")); err != nil {
			return fail(127, "fake: "+err.Error())
		}
		return ok("")
	case strings.HasPrefix(cmd, "sha256sum "):
		p := reDebPath.FindString(cmd)
		sum := sha256.Sum256(files[p])
		return ok(hex.EncodeToString(sum[:]))
	case strings.Contains(cmd, "apt-get install -s"):
		p := reDebPath.FindString(cmd)
		if f.aptFails[debVersionOf(files[p])] {
			return fail(100, "The following packages have unmet dependencies:\n hello-web : Depends: libfoo but it is not installable\nE: Unable to correct problems, you have held broken packages.")
		}
		return ok("Inst hello-web")
	case strings.HasPrefix(cmd, "rm -f "+inventory.PackageCache+"/incoming"), strings.HasPrefix(cmd, "rm -f '"+inventory.PackageCache+"/incoming"):
		for p := range files {
			if strings.Contains(p, "/incoming/") {
				delete(files, p)
			}
		}
		return ok("")
	case strings.HasPrefix(cmd, "if [ -f "):
		ps := reDebPath.FindAllString(cmd, -1)
		if b, ok := files[ps[0]]; ok {
			delete(files, ps[0])
			files[ps[len(ps)-1]] = b
		}
		return ok("")
	case strings.HasPrefix(cmd, "umask 077; cat ") && strings.Contains(cmd, " >> "+HistoryFile+" "):
		rec := reRecord.FindString(cmd)
		b, ok2 := files[rec]
		if !ok2 {
			return fail(1, "cat: "+rec+": No such file or directory")
		}
		delete(files, rec)
		f.history[n.name] = append(f.history[n.name], strings.TrimSpace(string(b)))
		return ok("")
	case strings.HasPrefix(cmd, "cat "+HistoryFile):
		if len(f.history[n.name]) == 0 {
			return ok("")
		}
		return ok(strings.Join(f.history[n.name], "\n") + "\n")
	case strings.HasPrefix(cmd, "curl "):
		target := f.addr[reURL.FindStringSubmatch(cmd)[1]]
		if !f.running(target) {
			return fail(7, "curl: (7) Failed to connect")
		}
		v := f.inst[target]
		code := 200
		if c, ok := f.bad[v]; ok {
			code = c
		}
		up := upstreamOf(v) + ".0"
		return ok(fmt.Sprintf("ok %s\n\n%d", up, code))
	case strings.HasPrefix(cmd, "crm_resource --ban"):
		f.banned[reNode.FindStringSubmatch(cmd)[1]] = true
		f.place()
		return ok("")
	case strings.HasPrefix(cmd, "crm_resource --cleanup"):
		f.failed[reNode.FindStringSubmatch(cmd)[1]] = false
		f.place()
		return ok("")
	case strings.HasPrefix(cmd, "crm_resource --clear --resource app-clone"):
		f.banned[reNode.FindStringSubmatch(cmd)[1]] = false
		f.place()
		return ok("")
	case strings.HasPrefix(cmd, "crm_resource --clear --resource floating-ip"):
		f.prefer = ""
		f.place()
		return ok("")
	case strings.HasPrefix(cmd, "crm_resource --wait"):
		return ok("")
	case strings.HasPrefix(cmd, "# handover.sh"):
		if strings.Contains(cmd, "iptables -w 5 -t nat -I") {
			if f.noHandover {
				return ok("handover=none (iptables refused the rule on " + n.name + ")\n")
			}
			return ok("handover=ready\n")
		}
		return ok("")
	case strings.HasPrefix(cmd, "# leftovers.sh"):
		out := f.leftovers[n.name]
		delete(f.leftovers, n.name)
		return ok(out)
	case strings.HasPrefix(cmd, "# move-ip.sh"):
		f.prefer = reMoveTo.FindStringSubmatch(cmd)[1]
		f.place()
		return ok("drained_ms=3\nreset_idle=2\nreleased_ms=400\n")
	case strings.HasPrefix(cmd, "systemctl is-active"):
		return ok(map[bool]string{true: "active", false: "inactive"}[f.running(n.name)])
	case strings.Contains(cmd, "apt-get install -y"):
		p := reDebPath.FindString(cmd)
		b, ok2 := files[p]
		if !ok2 {
			return fail(100, "E: Unsupported file "+p)
		}
		f.inst[n.name] = debVersionOf(b)
		f.failed[n.name] = false
		return ok("Setting up hello-web")
	case strings.HasPrefix(cmd, "dpkg-query -W"):
		return ok(f.inst[n.name])
	case strings.HasPrefix(cmd, "rm -f "):
		for _, p := range reDebPath.FindAllString(cmd, -1) {
			delete(files, p)
		}
		return ok("")
	case strings.HasPrefix(cmd, "base64 -w0 "):
		return ok(base64.StdEncoding.EncodeToString(files[reDebPath.FindString(cmd)]))
	}
	return fail(127, "fake: unknown command: "+cmd)
}

var (
	reLockXPathID   = regexp.MustCompile(`^//cluster_property_set\[@id='` + lockID + `'\]\[nvpair\[@name='` + lockID + `-id'\]\[@value='([^']*)'\]\]$`)
	reLockXPathNoID = regexp.MustCompile(`^//cluster_property_set\[@id='` + lockID + `'\]\[not\(nvpair\[@name='` + lockID + `-id'\]\)\]$`)
)

// deleteLock is `cibadmin --delete ARGS` on the lock, as pacemaker does it
// (lib/cib/cib_ops.c, lib/common/xml_element.c; checked with 2.1.5's
// cibadmin on a CIB_file): --xml-text deletes an element of the same name
// whose attributes include the given element's own, whatever children
// were given; --xpath deletes what the XPath selects (here: the lock when
// its id nvpair has the value, or when it has none). Either succeeds when
// nothing matches. Called with mu held.
func (f *fakeCluster) deleteLock(args string) error {
	word, ok := strings.CutPrefix(args, "--xpath ")
	if ok {
		xpath := unquote(word)
		id := ""
		if m := reLockXPathID.FindStringSubmatch(xpath); m != nil {
			id = m[1]
		} else if !reLockXPathNoID.MatchString(xpath) {
			return fmt.Errorf("an XPath the fake does not know: %s", xpath)
		}
		if f.lock != "" {
			if held, err := parseLock([]byte(f.lock)); err == nil && held.ID == id {
				f.lock = ""
			}
		}
		return nil
	}
	word, ok = strings.CutPrefix(args, "--xml-text ")
	if !ok {
		return fmt.Errorf("a delete the fake does not know: %s", args)
	}
	search, err := topElement(unquote(word))
	if err != nil {
		return err
	}
	held, err := topElement(f.lock)
	if err != nil || held.Name != search.Name {
		return nil
	}
	for _, a := range search.Attr {
		if !slices.Contains(held.Attr, a) {
			return nil
		}
	}
	f.lock = ""
	return nil
}

// unquote undoes transport.Quote on one word.
func unquote(w string) string {
	if len(w) < 2 || w[0] != '\'' || w[len(w)-1] != '\'' {
		return w
	}
	return strings.ReplaceAll(w[1:len(w)-1], `'"'"'`, "'")
}

// topElement is the first element of an XML text, its children left out.
func topElement(s string) (xml.StartElement, error) {
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.StartElement{}, err
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se, nil
		}
	}
}

// The fake's .debs are tiny real packages: debVersionOf reads the version.
func debVersionOf(b []byte) string {
	dir, err := os.MkdirTemp("", "fakedeb")
	if err != nil {
		return ""
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "x.deb")
	os.WriteFile(p, b, 0o644)
	pkg, err := inspect.ReadPackage(p)
	if err != nil {
		return ""
	}
	return pkg.Field("Version")
}

// makeDeb writes a small valid .deb of the given package and version.
func makeDeb(t *testing.T, pkg, version string) string {
	t.Helper()
	return makeDebWith(t, pkg, version, debfile.TreePackage{})
}

// makeDebWith is makeDeb with the control fields and maintainer scripts of
// extra.
func makeDebWith(t *testing.T, pkg, version string, extra debfile.TreePackage) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr/share/doc", pkg), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/share/doc", pkg, "VERSION"), []byte(version+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), fmt.Sprintf("%s_%s_all.deb", pkg, version))
	err := debfile.WriteTree(root, out, debfile.TreePackage{Name: pkg, Version: version, Arch: "all", Maintainer: "t <t@example.org>",
		Description: "test package\n test", Compression: "gzip", MTime: time.Unix(1767225600, 0),
		Fields: extra.Fields, Scripts: extra.Scripts})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fakeUpgrade is where most fake deploys start: the fake cluster runs
// hello-web 1.0-1, whose .deb is in the nodes' cache, and v2 is the .deb of
// 2.0-1 to deploy.
func fakeUpgrade(t *testing.T) (f *fakeCluster, v2 string) {
	t.Helper()
	f = newFakeCluster("1.0-1")
	f.seed(t, makeDeb(t, "hello-web", "1.0-1"))
	return f, makeDeb(t, "hello-web", "2.0-1")
}

// seed puts the .deb of the installed version into every node's cache, as
// cluster apply --package does.
func (f *fakeCluster) seed(t *testing.T, deb string) {
	b, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range f.nodes {
		f.files[n][inventory.PackageCache+"/"+filepath.Base(deb)] = b
	}
}
