package debversion_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os/exec"
	"slices"
	"testing"

	"gitlab.com/debship/debship/debbuild/debversion"
	"gitlab.com/debship/debship/internal/testenv"
)

// The oracle test checks DebianVersion against the two programs whose
// opinions matter: Python's packaging (what pip believes, from Debian's
// python3-packaging) orders a generated corpus, and dpkg must agree on
// every pair we draw from it.

// Spellings of each part of a version; "" repeats make a part often absent.
var (
	verEpochs   = []string{"", "", "", "", "0!", "1!", "2!", "01!", "10!"}
	verReleases = []string{"0", "0.0", "0.1", "1", "1.0", "1.0.0", "1.00", "01.0", "1.0.1", "1.0.0.1",
		"1.1", "1.2", "1.10", "1.9.9", "2", "2.0.0.0", "2024.10.3", "1.0.10", "10", "99999999999999999999"}
	verPres = []string{"", "", "", "", "a1", "a", "alpha1", "A1", "-a1", ".a.1", "_alpha_1", "a2", "a10",
		"b1", "beta1", "b", ".b2", "c1", "rc1", "RC1", "pre1", "preview1", "-rc.1", "rc", "rc2", "rc10", "rc01"}
	verPosts = []string{"", "", "", "", ".post1", "post1", "-1", "-post1", "_post_1", ".post", "post0",
		".post2", ".rev1", "r1", "-r2", ".post10", "-10", ".POST1"}
	verDevs   = []string{"", "", "", "", ".dev1", "dev1", ".dev", ".dev0", "-dev2", "_dev_10", ".DEV3", "dev01"}
	verLocals = []string{"", "", "", "", "", "+abc", "+ABC", "+abc.1", "+abc-1", "+abc_1", "+1", "+01",
		"+2", "+10", "+0", "+abc1", "+abc10", "+abc2", "+abcd", "+ab", "+abc.x", "+abc.1.2", "+1.abc",
		"+1.2", "+a1b2", "+ubuntu1", "+g1234abc.d20240101", "+z", "+0a", "+9", "+a.b.c", "+a.0", "+a.00"}
	verPrefixes = []string{"", "", "", "", "", "", "v", "V", " ", "\t", "\n"}
	// Near misses: Python decides which are versions, and Go must agree.
	verOddities = []string{"", "1.0.x", "1..0", "a1", "1.0+", "1.0+a..b", "1!2!3", "1.0rc1rc2", "1.0-",
		"1.0.post1.post2", "1.0.dev1.post1", "1.0a1a2", "v", "1.0 1", "1.0+a b", "1_0", "-1.0", "1.0.",
		".1.0", "1.0+-a", "1.0++a", "1.0-a1", "1.0-dev", "1.0-post", "1.0--1", "1.0-1-1", "1!", "1.0a-1",
		"1.0a.post", "1.0-1.dev", "1.0.r", "1.0rev", "1.0-r", "1.0.-1", "1.0_1", "1.0a_", "vv1", "1.0v",
		"1.0+a_", "1.0+_a", "1.0pre", "1.0c", "1.0alpha-beta", "1.0.a1", "1.0-a.1-1.dev-2+x"}
)

// verCorpus is a deterministic list of version strings: every release with
// each spelling of each other part on its own, random combinations of all
// parts, random one-character mutations of those, and the near misses.
func verCorpus() []string {
	r := rand.New(rand.NewPCG(440, 1))
	pick := func(l []string) string { return l[r.IntN(len(l))] }
	var out []string
	for _, rel := range verReleases {
		for _, parts := range [][]string{verEpochs, verPres, verPosts, verDevs, verLocals} {
			for _, p := range parts {
				if p == "" {
					continue
				}
				if p[len(p)-1] == '!' {
					out = append(out, p+rel)
				} else {
					out = append(out, rel+p)
				}
			}
		}
	}
	for range 1500 {
		// A "v" goes before the epoch: "v1!2.0".
		v := pick(verPrefixes) + pick(verEpochs) + pick(verReleases) + pick(verPres) + pick(verPosts) + pick(verDevs) + pick(verLocals)
		out = append(out, v)
	}
	const alphabet = "0123456789.-_+!abcdeprvlostxz"
	for i := range 400 {
		v := []byte(out[len(out)-1-i])
		at := r.IntN(len(v) + 1)
		c := alphabet[r.IntN(len(alphabet))]
		switch r.IntN(3) {
		case 0: // insert
			v = slices.Insert(v, at, c)
		case 1: // replace
			if at < len(v) {
				v[at] = c
			}
		case 2: // delete
			if at < len(v) {
				v = slices.Delete(v, at, at+1)
			}
		}
		out = append(out, string(v))
	}
	return append(out, verOddities...)
}

// verPythonRanks asks Python's packaging, in one process, for the PEP 440
// rank of every version: equal versions share a rank, invalid ones get -1.
func verPythonRanks(t *testing.T, versions []string) []int {
	t.Helper()
	const python = "/usr/bin/python3" // Debian's, never a pyenv or $PATH one
	const script = `
import json, sys
from packaging.version import Version, InvalidVersion
def parse(s):
    try:
        return Version(s)
    except InvalidVersion:
        return None
parsed = [parse(s) for s in json.load(sys.stdin)]
rank = {v: i for i, v in enumerate(sorted({p for p in parsed if p is not None}))}
json.dump([-1 if p is None else rank[p] for p in parsed], sys.stdout)
`
	if err := exec.Command(python, "-c", "import packaging.version").Run(); err != nil {
		testenv.Missing(t, "%s with packaging (apt-get install python3-packaging): %v", python, err)
	}
	in, err := json.Marshal(versions)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python oracle: %v: %s", err, stderr.Bytes())
	}
	var ranks []int
	if err := json.Unmarshal(out, &ranks); err != nil || len(ranks) != len(versions) {
		t.Fatalf("python oracle: bad answer (%v): %.200s", err, out)
	}
	return ranks
}

func TestDebianVersionOracle(t *testing.T) {
	corpus := verCorpus()
	ranks := verPythonRanks(t, corpus)

	// Go and Python must agree on what is a version at all.
	type mapped struct {
		pep, deb string
		rank     int
	}
	var valid []mapped
	for i, s := range corpus {
		deb, err := debversion.DebianVersion(s)
		switch {
		case ranks[i] < 0 && err == nil:
			t.Errorf("DebianVersion(%q) = %q, but Python's packaging calls it invalid", s, deb)
		case ranks[i] >= 0 && err != nil:
			t.Errorf("DebianVersion(%q) fails, but Python's packaging accepts it: %v", s, err)
		case err == nil:
			valid = append(valid, mapped{s, deb, ranks[i]})
		}
	}

	// Pairs to check: neighbours in PEP 440 order (as dpkg's order is
	// transitive, these alone prove that dpkg sorts the whole corpus the
	// same way), each spelling of a version against its first spelling,
	// and random pairs as a second look.
	slices.SortStableFunc(valid, func(a, b mapped) int { return a.rank - b.rank })
	type pair struct{ a, b mapped }
	var pairs []pair
	first := 0
	for i := 1; i < len(valid); i++ {
		pairs = append(pairs, pair{valid[i-1], valid[i]})
		if valid[i].rank != valid[first].rank {
			first = i
		} else if first < i-1 {
			pairs = append(pairs, pair{valid[first], valid[i]})
		}
	}
	r := rand.New(rand.NewPCG(440, 2))
	for range 1000 {
		pairs = append(pairs, pair{valid[r.IntN(len(valid))], valid[r.IntN(len(valid))]})
	}
	if len(pairs) < 2000 {
		t.Fatalf("only %d pairs; the corpus generator shrank", len(pairs))
	}

	calls := make([]verDpkgCall, len(pairs))
	equalPEP := 0
	for i, p := range pairs {
		op := "lt"
		switch {
		case p.a.rank == p.b.rank:
			op = "eq"
			equalPEP++
		case p.a.rank > p.b.rank:
			op = "gt"
		}
		calls[i] = verDpkgCall{p.a.deb, op, p.b.deb}
	}
	failed := 0
	for i, res := range verRunDpkg(t, calls) {
		if !res.ok || res.stderr != "" {
			failed++
			p := pairs[i]
			t.Errorf("PEP 440 says %q %s %q, but dpkg --compare-versions %q %s %q is false%s",
				p.a.pep, calls[i].op, p.b.pep, p.a.deb, calls[i].op, p.b.deb, res.stderr)
		}
	}
	t.Logf("corpus: %d strings, %d valid, %d distinct PEP 440 versions; %d pairs checked with dpkg (%d equal under PEP 440), %d disagreements",
		len(corpus), len(valid), valid[len(valid)-1].rank+1, len(pairs), equalPEP, failed)
}
