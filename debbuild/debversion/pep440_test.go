package debversion_test

import (
	"bytes"
	"errors"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gitlab.com/debship/debship/debbuild/debversion"
	"gitlab.com/debship/debship/internal/testenv"
)

func TestDebianVersion(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// The examples the mapping is specified by.
		{"1.0rc1", "1.0~rc1"},
		{"1.0.dev3", "1.0~dev3"},
		{"1.0.post1", "1.0+post1"},
		{"2!1.0", "2:1.0"},
		// Release: one canonical spelling, at least two parts.
		{"1", "1.0"},
		{"1.0", "1.0"},
		{"1.0.0", "1.0"},
		{"1.0.0.0", "1.0"},
		{"1.2.0", "1.2"},
		{"1.0.0.1", "1.0.0.1"},
		{"01.002.0003", "1.2.3"},
		{"2024.10", "2024.10"},
		{"0", "0.0"},
		{"99999999999999999999.1", "99999999999999999999.1"},
		// Epoch 0 is no epoch.
		{"0!1.0", "1.0"},
		{"007!1.0", "7:1.0"},
		{"2147483647!1", "2147483647:1.0"},
		// Spellings.
		{"v1.0", "1.0"},
		{"V1.0", "1.0"},
		{"  1.0\t\n", "1.0"},
		{"1.0a1", "1.0~pre.a1"},
		{"1.0alpha1", "1.0~pre.a1"},
		{"1.0-A.1", "1.0~pre.a1"},
		{"1.0a", "1.0~pre.a0"},
		{"1.0b2", "1.0~pre.b2"},
		{"1.0_beta_2", "1.0~pre.b2"},
		{"1.0c1", "1.0~rc1"},
		{"1.0pre1", "1.0~rc1"},
		{"1.0preview1", "1.0~rc1"},
		{"1.0RC01", "1.0~rc1"},
		{"1.0-1", "1.0+post1"},
		{"1.0post", "1.0+post0"},
		{"1.0-post-2", "1.0+post2"},
		{"1.0.rev3", "1.0+post3"},
		{"1.0r4", "1.0+post4"},
		{"1.0dev", "1.0~dev0"},
		{"1.0-DEV_5", "1.0~dev5"},
		// Combinations.
		{"1.0a1.dev1", "1.0~pre.a1~dev1"},
		{"1.0a1.post1", "1.0~pre.a1+post1"},
		{"1.0.post1.dev1", "1.0+post1~dev1"},
		{"3!1.0rc2.post3.dev4+x.5", "3:1.0~rc2+post3~dev4+local+x0.5"},
		// Local versions.
		{"1.0+abc", "1.0+local+abc"},
		{"1.0+ABC", "1.0+local+abc"},
		{"1.0+abc.5", "1.0+local+abc0.5"},
		{"1.0+abc-5", "1.0+local+abc0.5"},
		{"1.0+5", "1.0+local.5"},
		{"1.0+005", "1.0+local.5"},
		{"1.0+ubuntu1", "1.0+local+ubuntuB"},
		{"1.0.dev3+g1a2b3c4.d20240101", "1.0~dev3+local+gBaCbDcE0+dCACEABAB"},
	} {
		got, err := debversion.DebianVersion(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("DebianVersion(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestDebianVersionErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "version is empty; valid versions look like 1.2"},
		{"   ", "version is empty"},
		{"abc", `"abc" is not a PEP 440 version: it must start with a number`},
		{"v", "must start with a number"},
		{".1", "must start with a number"},
		{"1.0.x", `".x" after "1.0" is not a pre-release (a, b, rc), .postN, .devN or +local part`},
		{"1.0rc1rc2", `"c2" after "1.0rc1r"`}, // "r" alone is a post release
		{"1.0.dev1.post1", `".post1" after "1.0.dev1"`},
		{"1!2!3", `"!3" after "1!2"`},
		{"1.0+", `"+" after "1.0"`},
		{"1.0+a..b", `"..b" after "1.0+a"`},
		{"1.0 1", `" 1" after "1.0"`},
		// Non-ASCII letters that Python's case-insensitive regex lets
		// through cannot be put into a Debian version.
		{"1.0+\u017f", `"+ſ" after "1.0"`},
		{"1.0+\u212a", `after "1.0"`},
		{"2147483648!1.0", "has epoch 2147483648, but a Debian epoch must be at most 2147483647"},
	} {
		got, err := debversion.DebianVersion(tc.in)
		if err == nil {
			t.Errorf("DebianVersion(%q) = %q, want an error containing %q", tc.in, got, tc.want)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
			t.Errorf("DebianVersion(%q) error = %q, want one line containing %q", tc.in, msg, tc.want)
		}
	}
}

func TestFullDebianVersion(t *testing.T) {
	for _, tc := range []struct{ in, rev, want, err string }{
		{"1.0rc1", "1", "1.0~rc1-1", ""},
		{"2!1.0.post1", "2+deb12u1", "2:1.0+post1-2+deb12u1", ""},
		{"1.0", "0~bpo12.1", "1.0-0~bpo12.1", ""},
		{"1.0", "", "", "the Debian revision is empty"},
		{"1.0", "1-2", "", `the Debian revision "1-2" contains '-'`},
		{"1.0", "1:2", "", `the Debian revision "1:2" contains ':'`},
		{"1.0", "1_2", "", `contains '_'`},
		{"1.0", "1 ", "", `contains ' '`},
		{"1.0.x", "1", "", `"1.0.x" is not a PEP 440 version`},
	} {
		got, err := debversion.FullDebianVersion(tc.in, tc.rev)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("FullDebianVersion(%q, %q) = %q, %v; want %q", tc.in, tc.rev, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("FullDebianVersion(%q, %q) = %q, %v; want an error containing %q", tc.in, tc.rev, got, err, tc.err)
		}
	}
}

// TestDebianVersionOrderExamples checks the orderings the mapping is
// specified by against dpkg itself.
func TestDebianVersionOrderExamples(t *testing.T) {
	chains := [][]string{
		{"1.0.dev1", "1.0a1.dev1", "1.0a1", "1.0a1.post1", "1.0b1", "1.0rc1", "1.0", "1.0+loc", "1.0.post1.dev1", "1.0.post1", "1.0.1"},
		{"1.0+abc", "1.0+abc.x", "1.0+abc.1", "1.0+abc1", "1.0+abc10", "1.0+abc2", "1.0+abcd", "1.0+1", "1.0+1.abc", "1.0+1.0", "1.0+2", "1.0+10"},
		{"0.9", "1.0.dev0", "1.0a0", "1.0", "1.0.0.1", "1.0.1", "1.1", "1.10", "2", "1!0.1"},
		{"1.0a1", "1.0a1+x", "1.0a2", "1.0a10"},
	}
	var calls []verDpkgCall
	for _, c := range chains {
		for i := 0; i+1 < len(c); i++ {
			a, b := verMustMap(t, c[i]), verMustMap(t, c[i+1])
			calls = append(calls, verDpkgCall{a, "lt", b})
		}
	}
	for _, eq := range [][2]string{{"1.0", "1.0.0"}, {"1.0", "v1.00"}, {"0!1", "1.0"}, {"1.0-1", "1.0.post1"}, {"1.0+a-1", "1.0+A.01"}} {
		calls = append(calls, verDpkgCall{verMustMap(t, eq[0]), "eq", verMustMap(t, eq[1])})
	}
	for i, r := range verRunDpkg(t, calls) {
		if !r.ok {
			t.Errorf("dpkg --compare-versions %s %s %s: false%s", calls[i].a, calls[i].op, calls[i].b, r.stderr)
		}
	}
}

// verDpkgProblem mirrors dpkg's parseversion (lib/dpkg/parsehelp.c): it
// returns why dpkg would refuse v, with an error or a warning, or "". It is
// stricter than dpkg in two places we never want to produce anyway: dpkg
// trims surrounding blanks and reads the epoch with strtol, which takes a
// sign and leading white space.
func verDpkgProblem(v string) string {
	if v == "" {
		return "version string is empty"
	}
	rest := v
	if i := strings.IndexByte(v, ':'); i >= 0 {
		epoch := v[:i]
		if epoch == "" {
			return "epoch in version is empty"
		}
		if strings.Trim(epoch, "0123456789") != "" {
			return "epoch in version is not number"
		}
		if _, err := strconv.ParseInt(epoch, 10, 32); err != nil {
			return "epoch in version is too big"
		}
		if rest = v[i+1:]; rest == "" {
			return "nothing after colon in version number"
		}
	}
	upstream, revision := rest, ""
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		if upstream, revision = rest[:i], rest[i+1:]; revision == "" {
			return "revision number is empty"
		}
	}
	if upstream == "" {
		return "upstream version is empty"
	}
	if !verIsDigit(upstream[0]) {
		return "version number does not start with digit"
	}
	for i := 0; i < len(upstream); i++ {
		if c := upstream[i]; !verIsAlnum(c) && !strings.ContainsRune(".-+~:", rune(c)) {
			return "invalid character in version number"
		}
	}
	for i := 0; i < len(revision); i++ {
		if c := revision[i]; !verIsAlnum(c) && !strings.ContainsRune(".+~", rune(c)) {
			return "invalid character in revision number"
		}
	}
	return ""
}

func verIsDigit(c byte) bool { return c >= '0' && c <= '9' }
func verIsAlnum(c byte) bool {
	return verIsDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// TestDebianVersionValidatorMatchesDpkg proves verDpkgProblem, which the
// fuzz test relies on, against dpkg itself: for every string, the validator
// accepts it exactly when "dpkg --compare-versions X eq X" succeeds without
// a "bad syntax" complaint (dpkg only warns about some bad versions, and
// still exits 0).
func TestDebianVersionValidatorMatchesDpkg(t *testing.T) {
	candidates := []string{
		// Valid, including the corners of the hyphen and colon rules.
		"0", "1a", "1~", "1.0-1", "1-1", "1.0-1-1", "1.0-a", "1.0-~", "0:1", "1:1.0:2",
		"2147483647:1", "1.0+b1-0ubuntu1", "1:1.0-1:", "00:1.0",
		// Invalid, one rule each.
		"a1.0", "~1", "+1", ".1", "1.0_1", "1.0 1", "1.0\n", "1.0é", "1.0@", "1.0/2", "1.0,2",
		":1.0", "a:1.0", "-1:1.0", "2147483648:1.0", "99999999999999999999:1", "1:", "1:a1.0",
		"1.0-", "-1", "1.0-1:2", "1.0-a_b", "1.0-1_2", "1:-1", "1:1.0-",
	}
	seen := map[string]bool{}
	for _, v := range verCorpus() {
		d, err := debversion.DebianVersion(v)
		if err != nil || seen[d] {
			continue
		}
		seen[d] = true
		candidates = append(candidates, d)
		if full, err := debversion.FullDebianVersion(v, "1+deb12u"+strconv.Itoa(len(seen))); err == nil {
			candidates = append(candidates, full)
		}
		if len(seen) == 200 {
			break
		}
	}
	calls := make([]verDpkgCall, len(candidates))
	for i, v := range candidates {
		calls[i] = verDpkgCall{v, "eq", v}
	}
	for i, r := range verRunDpkg(t, calls) {
		v := candidates[i]
		dpkgOK := r.ok && !strings.Contains(r.stderr, "bad syntax")
		if problem := verDpkgProblem(v); dpkgOK != (problem == "") {
			t.Errorf("%q: validator says %q, dpkg accepts=%v%s", v, problem, dpkgOK, r.stderr)
		}
	}
	t.Logf("validator agrees with dpkg on %d strings", len(candidates))
}

func FuzzDebianVersion(f *testing.F) {
	for _, s := range []string{
		"1.0", "1.0rc1", "1.0.dev3", "1.0.post1", "2!1.0", "1.0+abc.5", "v1.0", "1.0-1",
		"1.0a1.post2.dev3+ubuntu1.2", " 01.00.000 ", "1.0.0.0.0", "1!2!3", "1.0+", "",
		"2147483648!1", "1.0+\u212a", "1.0_RC-1", "1.0.POST.DEV",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := debversion.DebianVersion(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("DebianVersion(%q) error spans lines: %q", s, err)
			}
			return
		}
		if p := verDpkgProblem(v); p != "" {
			t.Fatalf("DebianVersion(%q) = %q, which dpkg refuses: %s", s, v, p)
		}
		if full, err := debversion.FullDebianVersion(s, "1"); err != nil || verDpkgProblem(full) != "" {
			t.Fatalf("FullDebianVersion(%q, 1) = %q, %v", s, full, err)
		}
		// PEP 440 is case-insensitive.
		if u, err := debversion.DebianVersion(verASCIIUpper(s)); err != nil || u != v {
			t.Fatalf("DebianVersion(%q) = %q but upper-cased gives %q, %v", s, v, u, err)
		}
	})
}

func verASCIIUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func verMustMap(t *testing.T, pep440 string) string {
	t.Helper()
	d, err := debversion.DebianVersion(pep440)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type verDpkgCall struct{ a, op, b string }

type verDpkgResult struct {
	ok     bool   // exit status 0
	stderr string // "" or "; dpkg said: …"
}

// verRunDpkg runs "dpkg --compare-versions a op b" for every call, on all
// CPUs: a few thousand runs take a few seconds.
func verRunDpkg(t *testing.T, calls []verDpkgCall) []verDpkgResult {
	t.Helper()
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		testenv.Missing(t, "dpkg not found (apt-get install dpkg)")
	}
	results := make([]verDpkgResult, len(calls))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failure error
	for range runtime.NumCPU() * 2 {
		wg.Go(func() {
			for i := range next {
				c := calls[i]
				var stderr bytes.Buffer
				cmd := exec.Command(dpkg, "--compare-versions", c.a, c.op, c.b)
				cmd.Stderr = &stderr
				err := cmd.Run()
				var exit *exec.ExitError
				if err != nil && !errors.As(err, &exit) {
					mu.Lock()
					failure = err
					mu.Unlock()
				}
				results[i] = verDpkgResult{ok: err == nil}
				if s := strings.TrimSpace(stderr.String()); s != "" {
					results[i].stderr = "; dpkg said: " + s
				}
			}
		})
	}
	for i := range calls {
		next <- i
	}
	close(next)
	wg.Wait()
	if failure != nil {
		t.Fatalf("running dpkg: %v", failure)
	}
	return results
}
