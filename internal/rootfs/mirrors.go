package rootfs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// aptSource is one "deb" entry of the host's apt configuration.
type aptSource struct {
	URI    string
	Suites []string
}

// Mirrors are the Debian archive URIs a root is built from: the host's own,
// so that a machine behind a mirror or proxy keeps working.
type Mirrors struct {
	Main     string // e.g. http://deb.debian.org/debian
	Security string // e.g. http://deb.debian.org/debian-security; may be empty
}

// HostMirrors reads the apt sources below root ("/" on the host) at run time:
// etc/apt/sources.list, etc/apt/sources.list.d/*.list (one-line format) and
// *.sources (deb822). Nothing is hard-coded. Entries for suite win.
func HostMirrors(root, suite string) (Mirrors, error) {
	var srcs []aptSource
	dir := filepath.Join(root, "etc/apt")
	if b, err := os.ReadFile(filepath.Join(dir, "sources.list")); err == nil {
		srcs = append(srcs, parseOneLine(b)...)
	}
	for _, pat := range []string{"*.list", "*.sources"} {
		names, _ := filepath.Glob(filepath.Join(dir, "sources.list.d", pat))
		sort.Strings(names)
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				return Mirrors{}, fmt.Errorf("read apt sources: %w", err)
			}
			if strings.HasSuffix(n, ".sources") {
				srcs = append(srcs, parseDeb822(b)...)
			} else {
				srcs = append(srcs, parseOneLine(b)...)
			}
		}
	}
	return pickMirrors(srcs, suite)
}

// pickMirrors prefers entries that carry the suite; a host on another Debian
// release still names a Debian archive, which serves every release.
func pickMirrors(srcs []aptSource, suite string) (Mirrors, error) {
	var m Mirrors
	for _, s := range srcs {
		for _, su := range s.Suites {
			switch {
			case su == suite && m.Main == "":
				m.Main = s.URI
			case su == suite+"-security" && m.Security == "":
				m.Security = s.URI
			}
		}
	}
	if m.Main == "" {
		for _, s := range srcs {
			if isDebianArchive(s) && !strings.Contains(s.URI, "security") {
				m.Main = s.URI
				break
			}
		}
	}
	if m.Security == "" {
		for _, s := range srcs {
			for _, su := range s.Suites {
				if strings.HasSuffix(su, "-security") && isDebianArchive(s) {
					m.Security = s.URI
				}
			}
			if m.Security != "" {
				break
			}
		}
	}
	if m.Main == "" {
		return m, fmt.Errorf("no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d/ (need a \"deb\" entry for %s or another Debian release)", suite)
	}
	return m, nil
}

// isDebianArchive recognises the Debian archive by the last path element of
// its URI ("debian", "debian-security"), the layout every Debian mirror uses.
func isDebianArchive(s aptSource) bool {
	base := filepath.Base(strings.TrimRight(s.URI, "/"))
	return base == "debian" || base == "debian-security"
}

// parseOneLine reads "deb [opts] URI suite comp..." lines.
func parseOneLine(b []byte) []aptSource {
	var out []aptSource
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") { // options, possibly several words
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) < 2 {
			continue
		}
		out = append(out, aptSource{URI: strings.TrimRight(f[0], "/"), Suites: []string{f[1]}})
	}
	return out
}

// parseDeb822 reads stanzas of Types/URIs/Suites (Enabled: no is skipped).
func parseDeb822(b []byte) []aptSource {
	var out []aptSource
	for _, stanza := range splitStanzas(b) {
		if !containsWord(stanza["types"], "deb") || strings.EqualFold(strings.TrimSpace(stanza["enabled"]), "no") {
			continue
		}
		suites := strings.Fields(stanza["suites"])
		for _, uri := range strings.Fields(stanza["uris"]) {
			out = append(out, aptSource{URI: strings.TrimRight(uri, "/"), Suites: suites})
		}
	}
	return out
}

func splitStanzas(b []byte) []map[string]string {
	var out []map[string]string
	cur := map[string]string{}
	last := ""
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
		}
		cur, last = map[string]string{}, ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case strings.HasPrefix(line, "#"):
		case line[0] == ' ' || line[0] == '\t': // continuation
			if last != "" {
				cur[last] += " " + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			cur[last] = strings.TrimSpace(v)
		}
	}
	flush()
	return out
}

func containsWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}
