package layers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "gitlab.com/debship/debship"

// layer of every debship package, lowest first. A package may import from
// lower layers only, and from its own layer only what sameLayer allows.
var layer = map[string]int{
	// (a) leaves: stdlib-ish, no debship imports but each other's.
	"cluster":                1, // only the doc of the cluster/* packages
	"templates":              1,
	"venv":                   1,
	"internal/testenv":       1,
	"internal/tomlfile":      1,
	"internal/grammar":       1,
	"internal/shtest":        1,
	"internal/debroot":       1,
	"internal/rootfs":        1,
	"internal/debian":        1,
	"internal/layers":        1,
	"internal/secretfile":    1,
	"internal/atomicfile":    1,
	"internal/syncbuf":       1,
	"internal/testcert":      1,
	"internal/testlog":       1,
	"internal/testnet":       1,
	"cluster/transport":      1,
	"cluster/progress":       1,
	"ci/webhook/webhooktest": 1,
	// test tools (leaves too).
	"internal/fakedigitalocean": 1, // a stand-in for the DigitalOcean API
	"internal/loadgen":          1, // the deploy lab tests' and bench/loadgen's load
	// (b) Debian versions; the clean root of another release a build runs in.
	"debbuild/debversion": 2,
	"debbuild/buildroot":  2,
	// (c) the .deb as a file: writing one, its identity.
	"debbuild/debfile": 3,
	// (d) building the .deb; reading one back in full and checking it.
	"debbuild":         4,
	"debbuild/inspect": 4,
	// (e) CI and the cluster's description.
	"ci":                   5,
	"ci/gitlab":            5,
	"ci/gitlab/gitlabtest": 5,
	"cluster/inventory":    5,
	// what a setup plan or apply reports (changes, summary, the plan's text).
	"cluster/setup/report": 5,
	// a cluster.toml written and loaded for a test, above what it loads.
	"cluster/inventory/inventorytest": 6,
	// (f) commands on a node.
	"cluster/host":   6,
	"cluster/ipmove": 6,
	// (g) what is done to a cluster.
	"cluster/setup":  7,
	"cluster/status": 7,
	"cluster/deploy": 7,
	"cluster/lab":    7,
	// (h) shipping: a built .deb onto a cluster.
	"cluster/ship": 8,
	// the tests' shared lab: it applies clusters (setup) to snapshot them.
	"cluster/lab/labtest": 8,
	"ci/webhook":          8,
	// (i) programs.
	"cmd/debship":           9,
	"bench/loadgen":         9,
	"bench/webhookload":     9,
	"packaging/debship-deb": 9,
}

// sameLayer are the imports allowed within a layer, with the reason.
var sameLayer = map[[2]string]string{
	{"cluster/deploy", "cluster/status"}:      "preflight: a deploy starts only on a healthy cluster (status.Healthy)",
	{"cluster/ship", "ci/webhook"}:            "ship.RollingDeployer is the receiver's rolling deploy: ci/webhook cannot import cluster/deploy, whose lab test drives the receiver (an import cycle in the test)",
	{"internal/debroot", "internal/testenv"}:  "the clean root is built for tests",
	{"internal/debroot", "internal/rootfs"}:   "the clean root is a cached debootstrap base with an overlay",
	{"internal/loadgen", "templates"}:         "the urllib3 client is a Python script, reviewed as one in templates/files/loadgen",
	{"cluster/transport", "internal/syncbuf"}: "a session's output is copied in by the session's goroutines while a cancelled run reads it",
}

// pending are imports against the layers that another change removes;
// each names it. Delete the entry when it lands.
var pending = map[[2]string]string{}

type pkg struct {
	ImportPath string
	Imports    []string
	Module     *struct{ Path string }
}

// TestLayers checks the non-test imports of every debship package. Tests
// are not checked: a lab test may drive everything above its package (the
// deploy's lab tests set the cluster up and run the webhook).
func TestLayers(t *testing.T) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	cmd := exec.Command("go", "list", "-deps", "-json", "./...")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var problems []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		name, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok {
			continue
		}
		from, ok := layer[name]
		if !ok {
			problems = append(problems, name+": not in the layer table; place it in internal/layers/layers_test.go")
			continue
		}
		for _, imp := range p.Imports {
			dep, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			to, ok := layer[dep]
			edge := [2]string{name, dep}
			switch {
			case !ok:
				// Reported as the package itself.
			case pending[edge] != "":
			case to > from:
				problems = append(problems, name+" (layer "+letter(from)+") imports "+dep+" (layer "+letter(to)+"), a higher layer")
			case to == from && sameLayer[edge] == "":
				problems = append(problems, name+" imports "+dep+", a package of its own layer ("+letter(from)+"); allow it in sameLayer with a reason, or move one of them")
			}
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
}

func letter(l int) string { return string(rune('a' + l - 1)) }
