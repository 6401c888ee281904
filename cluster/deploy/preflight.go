package deploy

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gitlab.com/debship/debship/cluster/host"
	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/status"
	"gitlab.com/debship/debship/cluster/transport"
	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/debbuild/debversion"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/templates"
)

// nodeFacts is what facts.sh reads on a node.
type nodeFacts struct {
	Installed  string
	DpkgStatus string
	Audit      int
	FreeKB     int64
	Unit       string
	Arch       string
	Release    int // VERSION_ID of /etc/os-release; 0 when unknown
	Iptables   bool
	Curl       bool
	Debs       []cachedDeb
}

// cachedDeb is a .deb of the app in a node's cache.
type cachedDeb struct {
	SHA256, Version, Path string
}

func (f *nodeFacts) deb(version string) *cachedDeb {
	for i := range f.Debs {
		if f.Debs[i].Version == version {
			return &f.Debs[i]
		}
	}
	return nil
}

func parseFacts(out string) *nodeFacts {
	f := &nodeFacts{}
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "deb "); ok {
			p := strings.SplitN(rest, " ", 3)
			if len(p) == 3 {
				f.Debs = append(f.Debs, cachedDeb{SHA256: p[0], Version: p[1], Path: p[2]})
			}
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		switch k {
		case "installed":
			f.Installed = v
		case "dpkg_status":
			f.DpkgStatus = v
		case "audit":
			f.Audit, _ = strconv.Atoi(v)
		case "free_kb":
			f.FreeKB, _ = strconv.ParseInt(v, 10, 64)
		case "unit":
			f.Unit = v
		case "arch":
			f.Arch = v
		case "release":
			f.Release, _ = strconv.Atoi(v)
		case "iptables":
			f.Iptables = v == "yes"
		case "curl":
			f.Curl = v == "yes"
		}
	}
	return f
}

func readFacts(ctx context.Context, inv *inventory.Inventory, t transport.Transport) (*nodeFacts, error) {
	script, err := templates.Render("deploy/facts.sh", map[string]any{"Package": inv.App.Package, "Cache": inventory.PackageCache, "Unit": inv.AppUnit()})
	if err != nil {
		return nil, err
	}
	out, err := transport.Output(ctx, t, string(script))
	if err != nil {
		return nil, fmt.Errorf("read the node's facts: %w", err)
	}
	return parseFacts(out), nil
}

// preflight checks everything that can be checked without changing
// anything, and makes the plan. Each problem is one sentence.
func (d *deployment) preflight(ctx context.Context) *PreflightError {
	end := d.step("", "preflight", "cluster, nodes, lock")
	var pr problems
	var lockErr *LockHeldError
	fail := func() *PreflightError {
		end(fmt.Errorf("%d problems", len(pr.list)), "%d problem(s): %s", len(pr.list), strings.Join(pr.list, "; "))
		return &PreflightError{Problems: pr.list, Lock: lockErr}
	}
	p, appExists := d.checkCluster(ctx, &pr)
	if p == nil {
		return fail()
	}
	out := d.outOfService(ctx, p, &pr)
	d.readAllFacts(ctx, &pr)
	members := d.members()
	for _, n := range members {
		if f := d.facts[n]; f != nil {
			d.checkNode(n, f, out[n], appExists, &pr)
		}
	}
	lockErr = d.checkLock(ctx, p, &pr)
	if len(pr.list) > 0 {
		return fail()
	}
	installed := map[string]string{}
	for _, n := range members {
		installed[n] = d.facts[n].Installed
	}
	holder := d.state.ipHolder()
	plan, err := MakePlan(PlanInput{Package: d.deb.pkg, Version: d.deb.version, Members: members, Holder: holder, Installed: installed, OutOfService: out})
	if err != nil {
		pr.add("%v", err)
		return fail()
	}
	d.plan = plan
	d.res.Plan = plan
	end(nil, "healthy; floating IP on %s; %s", holder, versionsSummary(installed))
	return nil
}

// problems collects preflight's sentences, from several goroutines.
type problems struct {
	mu   sync.Mutex
	list []string
}

func (pr *problems) add(format string, a ...any) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.list = append(pr.list, fmt.Sprintf(format, a...))
}

// checkCluster checks the cluster as a whole and as pacemaker sees it
// (d.state): healthy, managed, the app's resource there (appExists), the
// floating IP running. It returns the node to run cluster commands on, nil
// when there is none or pacemaker cannot be read there.
func (d *deployment) checkCluster(ctx context.Context, pr *problems) (p *pcmk, appExists bool) {
	st := status.Gather(ctx, d.inv, d.conns, nil)
	if ok, why := st.Healthy(); !ok {
		for _, w := range why {
			pr.add("the cluster is not healthy: %s", w)
		}
	}
	if _, p = d.control(""); p == nil {
		pr.add("no node to run cluster commands on")
		return nil, false
	}
	s, err := readCrm(ctx, p.t)
	if err != nil {
		pr.add("cannot read the cluster's state: %v", oneLine(err.Error()))
		return nil, false
	}
	d.state = s
	if s.Summary.Options.Maintenance {
		pr.add("the cluster is in maintenance mode (pacemaker manages nothing); end it with: pcs property set maintenance-mode=false")
	}
	for _, r := range s.unmanaged() {
		pr.add("pacemaker does not manage the resource %s; manage it again with: pcs resource manage %s", r, r)
	}
	for _, c := range s.Clones {
		appExists = appExists || c.ID == inventory.ResourceAppClone
	}
	if !appExists {
		pr.add("the app resource %s does not exist; set the cluster up with: debship cluster apply --package <first .deb>", inventory.ResourceAppClone)
	}
	if s.ipHolder() == "" {
		pr.add("the floating IP runs nowhere")
	}
	return p, appExists
}

// outOfService reads the constraints an interrupted deploy left: the nodes
// it banned are out of service and are updated first; a pin of the
// floating IP is cleared before the deploy.
func (d *deployment) outOfService(ctx context.Context, p *pcmk, pr *problems) map[string]bool {
	left, err := leftovers(ctx, p.t)
	if err != nil {
		pr.add("%v", err)
	}
	out := map[string]bool{}
	for _, l := range left {
		if l.Rsc == inventory.ResourceAppClone && l.ID == banID(l.Node) {
			out[l.Node] = true
		}
	}
	return out
}

// readAllFacts reads every member's facts into d.facts, in parallel; a
// node whose facts cannot be read has none there.
func (d *deployment) readAllFacts(ctx context.Context, pr *problems) {
	d.facts = map[string]*nodeFacts{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range d.members() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := readFacts(ctx, d.inv, d.conns[n])
			if err != nil {
				pr.add("%s: %v", n, oneLine(err.Error()))
				return
			}
			mu.Lock()
			defer mu.Unlock()
			d.facts[n] = f
		}()
	}
	wg.Wait()
}

// checkNode checks one node's facts: the app runs there (unless the node
// is out of service, or there is no app resource at all), dpkg, disk,
// architecture, Debian release, curl, and the .deb a failed install goes
// back to.
func (d *deployment) checkNode(n string, f *nodeFacts, outOfService, appExists bool, pr *problems) {
	if !d.state.appOn(n) && !outOfService && appExists {
		pr.add("the app does not run on %s; see pcs status there (a failed start is cleared with: pcs resource cleanup %s)", n, inventory.ResourceAppClone)
	}
	// A node an interrupted deploy left out of service may have been
	// cut off in the middle of dpkg: the deploy repairs it (it serves
	// nothing). Elsewhere a broken dpkg is the operator's to look at.
	if f.Audit > 0 && !outOfService {
		pr.add("dpkg on %s has %d half-installed or half-configured packages; repair them first (dpkg --audit, dpkg --configure -a)", n, f.Audit)
	}
	if need := int64(len(d.deb.data))*2/1024 + 20*1024; f.FreeKB > 0 && f.FreeKB < need {
		pr.add("%s has %d MiB free for %s, the deploy needs %d MiB", n, f.FreeKB/1024, inventory.PackageCache, need/1024)
	}
	if d.deb.arch != "all" && f.Arch != "" && f.Arch != d.deb.arch {
		pr.add("%s is built for %s, but %s is %s", d.deb.cacheName(), d.deb.arch, n, f.Arch)
	}
	if msg := releaseMismatch(d.deb, n, f.Release); msg != "" {
		pr.add("%s", msg)
	}
	if !f.Curl {
		pr.add("%s has no curl, which the health check runs on the node; install it with: apt-get install curl", n)
	}
	// The previous version's .deb must be on the node: it is what a
	// failed install goes back to.
	if f.Installed != "" && f.Installed != d.deb.version && f.deb(f.Installed) == nil {
		pr.add("%s runs %s %s but has no copy of its .deb in %s, so a failed install could not be rolled back; copy that .deb there first",
			n, d.inv.App.Package, f.Installed, inventory.PackageCache)
	}
}

// checkLock: a lock another deploy holds is a problem, and returned for
// PreflightError.Lock, unless ForceUnlock is to take it over.
func (d *deployment) checkLock(ctx context.Context, p *pcmk, pr *problems) *LockHeldError {
	held, err := ReadLock(ctx, p.t)
	switch {
	case err != nil:
		pr.add("%v", oneLine(err.Error()))
	case held != nil && !d.o.ForceUnlock:
		lockErr := &LockHeldError{Lock: held}
		pr.add("%s", lockErr.Error())
		return lockErr
	case held != nil:
		d.log("", "the deploy lock is held by %s; --force-unlock takes it over", held)
	}
	return nil
}

func versionsSummary(installed map[string]string) string {
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(installed)) {
		parts = append(parts, n+" runs "+orNone(installed[n]))
	}
	return strings.Join(parts, ", ")
}

// stage copies the .deb to every member (in parallel, checksum verified)
// into the cache's incoming directory, and asks apt whether it could be
// installed there. A failure removes what was copied: nothing changed.
func (d *deployment) stage(ctx context.Context) error {
	end := d.step("", "copy", "%s (%d KiB, sha256 %s…) to %d nodes", d.deb.cacheName(), len(d.deb.data)/1024, d.deb.sha256[:12], len(d.members()))
	var mu sync.Mutex
	var problems []string
	var wg sync.WaitGroup
	for _, n := range d.members() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.stageOn(ctx, n); err != nil {
				mu.Lock()
				problems = append(problems, err.Error())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(problems) > 0 {
		sort.Strings(problems)
		d.unstage(context.WithoutCancel(ctx))
		end(fmt.Errorf("copy"), "%s", strings.Join(problems, "; "))
		return &PreflightError{Problems: problems}
	}
	end(nil, "copied and verified; apt can install it on every node")
	return nil
}

func (d *deployment) stageOn(ctx context.Context, n string) error {
	t := d.conns[n]
	path := d.stagingPath()
	if c := d.facts[n].deb(d.deb.version); c != nil && c.SHA256 == d.deb.sha256 {
		path = c.Path // already there, the same bytes
	} else {
		if err := t.Upload(ctx, path, d.deb.data, 0o644); err != nil {
			return fmt.Errorf("copying the .deb to %s failed: %v", n, oneLine(err.Error()))
		}
		sum, err := transport.Output(ctx, t, "sha256sum "+transport.Quote(path)+" | cut -d' ' -f1")
		if err != nil {
			return fmt.Errorf("checking the copy on %s failed: %v", n, oneLine(err.Error()))
		}
		if sum != d.deb.sha256 {
			return fmt.Errorf("the copy on %s has sha256 %s, not %s (the transfer corrupted it)", n, sum, d.deb.sha256)
		}
	}
	// apt resolves the package's Depends against the node's apt lists
	// without installing anything; Debug::NoLocking lets it run while
	// another apt holds the lock.
	out, err := host.SimulateInstall(ctx, t, path)
	if err != nil {
		var ce *transport.CommandError
		msg := err.Error()
		if errors.As(err, &ce) {
			msg = aptProblem(ce.Stdout + ce.Stderr)
		}
		return fmt.Errorf("%s cannot install %s %s: %s", n, d.deb.pkg, d.deb.version, msg)
	}
	var removed []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "Remv" {
			removed = append(removed, f[1])
		}
	}
	if len(removed) > 0 {
		return fmt.Errorf("installing %s %s on %s would remove %s", d.deb.pkg, d.deb.version, n, strings.Join(removed, ", "))
	}
	return nil
}

// aptProblem picks the lines of apt's output that say why it cannot
// install: the unmet dependencies and its errors.
func aptProblem(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		t := strings.TrimSpace(l)
		if strings.Contains(t, "Depends:") || strings.Contains(t, "Conflicts:") || strings.Contains(t, "Breaks:") || strings.HasPrefix(t, "E:") {
			keep = append(keep, t)
		}
	}
	if len(keep) == 0 {
		return oneLine(out)
	}
	return strings.Join(keep, " ")
}

// unstage removes the staged copies (a failed preflight changes nothing).
func (d *deployment) unstage(ctx context.Context) {
	for _, n := range d.members() {
		if t := d.conns[n]; t != nil {
			_, _, _ = t.Run(ctx, "rm -f "+transport.Quote(d.stagingPath())+"; rmdir "+inventory.PackageCache+"/incoming/"+d.id+" "+inventory.PackageCache+"/incoming 2>/dev/null || true")
		}
	}
}

// commitStaged moves the staged copies into the cache, where apt installs
// them from and where the next deploy finds this one for rollback.
func (d *deployment) commitStaged(ctx context.Context) error {
	for _, n := range d.members() {
		cmd := fmt.Sprintf("if [ -f %[1]s ]; then mv -f %[1]s %[2]s; fi; rmdir %[3]s/incoming/%[4]s %[3]s/incoming 2>/dev/null || true; test -f %[2]s",
			transport.Quote(d.stagingPath()), transport.Quote(d.deb.cachePath()), inventory.PackageCache, d.id)
		if c := d.facts[n].deb(d.deb.version); c != nil && c.SHA256 == d.deb.sha256 && c.Path != d.deb.cachePath() {
			cmd = "cp -f " + transport.Quote(c.Path) + " " + transport.Quote(d.deb.cachePath())
		}
		if _, _, err := d.conns[n].Run(ctx, cmd); err != nil {
			return fmt.Errorf("%s: put the .deb into %s: %w", n, inventory.PackageCache, err)
		}
	}
	return nil
}

// lock takes the deploy lock (taking it over with ForceUnlock) and moves
// the staged .deb into place.
func (d *deployment) lock(ctx context.Context) error {
	end := d.step("", "lock", "take the deploy lock")
	_, p := d.control("")
	if d.o.ForceUnlock {
		old, err := Unlock(ctx, p.t)
		if err != nil {
			end(err, "")
			return err
		}
		if old != nil {
			d.res.TakenOver = old
			d.log("", "took the deploy lock over from %s", old)
		}
	}
	l := &Lock{ID: d.id, Holder: d.o.Holder, Host: d.o.Host, PID: os.Getpid(), Kind: d.o.Kind, Version: d.deb.version, Since: time.Now()}
	if err := acquireLock(ctx, p.t, l); err != nil {
		end(err, "%v", err)
		if held, ok := err.(*LockHeldError); ok {
			return &PreflightError{Problems: []string{held.Error()}, Lock: held}
		}
		return err
	}
	if err := d.commitStaged(context.WithoutCancel(ctx)); err != nil {
		_ = releaseLock(context.WithoutCancel(ctx), p.t, d.id)
		end(err, "")
		return err
	}
	end(nil, "held by %s on %s", d.o.Holder, d.o.Host)
	return nil
}

func (d *deployment) unlock(ctx context.Context) {
	_, p := d.control("")
	if p == nil {
		return
	}
	if err := releaseLock(ctx, p.t, d.id); err != nil {
		// The other member may still answer.
		for _, n := range d.members() {
			if t := d.conns[n]; t != nil && t != p.t {
				if err2 := releaseLock(ctx, t, d.id); err2 == nil {
					return
				}
			}
		}
		d.log("", "warning: %v", err)
	}
}

// prune keeps, on each node, the .debs of the version deployed and of the
// versions the nodes ran before (for the next rollback), and removes older
// ones.
func (d *deployment) prune(ctx context.Context) {
	keep := map[string]bool{d.deb.version: true}
	for _, n := range d.members() {
		keep[d.facts[n].Installed] = true
	}
	for _, n := range d.members() {
		var rm []string
		for _, c := range d.facts[n].Debs {
			if !keep[c.Version] && c.Path != d.deb.cachePath() {
				rm = append(rm, transport.Quote(c.Path))
			}
		}
		if len(rm) > 0 {
			if _, _, err := d.conns[n].Run(ctx, "rm -f "+strings.Join(rm, " ")); err != nil {
				d.log(n, "warning: could not remove old .debs: %v", oneLine(err.Error()))
			}
		}
	}
}

// previousVersion is the version a rollback goes back to: the one given,
// else the version the nodes ran before the last successful deploy, else
// the newest cached version older than what runs now.
func (d *deployment) previousVersion(ctx context.Context) (string, error) {
	if d.o.RollbackTo != "" {
		return d.o.RollbackTo, nil
	}
	entries, _ := History(ctx, d.inv, d.conns)
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.Outcome != OutcomeSuccess {
			continue
		}
		vals := map[string]bool{}
		for _, v := range e.From {
			if v != "" && v != e.Version {
				vals[v] = true
			}
		}
		if len(vals) == 1 {
			for v := range vals {
				return v, nil
			}
		}
		break
	}
	// No usable history: the newest cached version older than the oldest
	// one installed.
	var current string
	var cached []string
	for _, n := range d.members() {
		f, err := readFacts(ctx, d.inv, d.conns[n])
		if err != nil {
			return "", err
		}
		if current == "" || (f.Installed != "" && debversion.CompareDebianVersions(f.Installed, current) < 0) {
			current = f.Installed
		}
		for _, c := range f.Debs {
			cached = append(cached, c.Version)
		}
	}
	best := ""
	for _, v := range cached {
		if current != "" && debversion.CompareDebianVersions(v, current) < 0 && (best == "" || debversion.CompareDebianVersions(v, best) > 0) {
			best = v
		}
	}
	if best == "" {
		return "", fmt.Errorf("no previous version to roll back to: the history has no successful deploy and the nodes' %s has no older .deb; name one with --to VERSION", inventory.PackageCache)
	}
	return best, nil
}

// fetchPrevious copies the previous version's .deb from a node's cache to
// a local temporary file, so that a rollback is checked and copied like any
// deploy.
func (d *deployment) fetchPrevious(ctx context.Context) (string, func(), error) {
	end := d.step("", "find previous", "")
	v, err := d.previousVersion(ctx)
	if err != nil {
		end(err, "")
		return "", nil, err
	}
	for _, n := range d.members() {
		f, err := readFacts(ctx, d.inv, d.conns[n])
		if err != nil {
			continue
		}
		c := f.deb(v)
		if c == nil {
			continue
		}
		b64, err := transport.Output(ctx, d.conns[n], "base64 -w0 "+transport.Quote(c.Path))
		if err != nil {
			continue
		}
		data, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		dir, err := os.MkdirTemp("", "debship-rollback-")
		if err != nil {
			return "", nil, err
		}
		path := filepath.Join(dir, filepath.Base(c.Path))
		if err := os.WriteFile(path, data, 0o644); err != nil {
			os.RemoveAll(dir)
			return "", nil, err
		}
		end(nil, "%s %s from %s:%s", d.inv.App.Package, v, n, c.Path)
		return path, func() { os.RemoveAll(dir) }, nil
	}
	err = fmt.Errorf("no node has the .deb of %s %s in %s to roll back to", d.inv.App.Package, v, inventory.PackageCache)
	end(err, "")
	return "", nil, err
}

// releaseMismatch is the sentence refusing a .deb built for another Debian
// release than the node runs: its venv holds that release's python3, which
// the node does not have (the .deb's Depends would stop dpkg only after it
// unpacked). "" when they match or either is unknown.
func releaseMismatch(deb *debFile, node string, nodeVersion int) string {
	if deb.target == "" || nodeVersion == 0 {
		return ""
	}
	want, ok := debian.ByVersion(nodeVersion)
	if ok && want.Target == deb.target {
		return ""
	}
	if !ok {
		return fmt.Sprintf("%s is built for %s, but %s runs Debian %d, which debship does not build for (%s)",
			deb.cacheName(), deb.target, node, nodeVersion, strings.Join(debian.Targets(), ", "))
	}
	return fmt.Sprintf("%s is built for %s, but %s runs Debian %d; deploy its build for %s (debship build --target %s)",
		deb.cacheName(), deb.target, node, nodeVersion, want.Target, want.Target)
}

// modeProblem is the sentence refusing a .deb built in mode "systemd": its
// postinst enables and starts the app's unit, so dpkg would start the app
// outside pacemaker on the node the deploy has just taken out of service,
// and systemd at every boot. A rollback goes back to a version that ran
// before and gets the same check (its .deb is read like any other): that
// version's postinst would start the app just the same. "" for a package
// in mode "cluster" or one whose postinst starts nothing.
func modeProblem(deb *debFile, inv *inventory.Inventory, kind string) string {
	if deb.mode != debfile.ModeSystemd {
		return ""
	}
	fix := "set mode = \"cluster\" under [tool.debship] in pyproject.toml, build it again and deploy that"
	if kind == KindRollback {
		fix = "roll back to a version built in mode \"cluster\" (--to VERSION), or " + fix
	}
	return fmt.Sprintf("%s was built in mode \"systemd\": its postinst enables and starts %s, which would run outside pacemaker; %s",
		deb.cacheName(), inv.AppUnit(), fix)
}
