package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"gitlab.com/debship/debship/debbuild/debversion"
)

// debName matches a .deb file name as examples write it: package_version_arch.deb.
var debName = regexp.MustCompile(`([a-z0-9][a-z0-9.+-]*)_([0-9][A-Za-z0-9.+~:-]*)_([a-z0-9]+)\.deb\b`)

// Help texts and the README name .deb files exactly as debship build writes
// them: a user copies those lines, so `hello-web_1.4.0-1_amd64.deb` for a
// build that writes `hello-web_1.4-1_all.deb` is a file that does not exist.
func TestExampleDebNamesAreOnesDebshipWrites(t *testing.T) {
	var texts []string
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			name := strings.TrimSpace(prefix + " " + c.Name)
			texts = append(texts, name+" --help: "+c.Usage+"\n"+c.UsageText+"\n"+c.Description)
			for _, f := range c.Flags {
				if u, ok := f.(cli.DocGenerationFlag); ok {
					texts = append(texts, name+" --"+f.Names()[0]+": "+u.GetUsage())
				}
			}
			walk(name, c.Subcommands)
		}
	}
	walk("debship", newApp().Commands)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	texts = append(texts, "README.md: "+string(readme))

	seen := 0
	for _, text := range texts {
		where, _, _ := strings.Cut(text, ":")
		for _, m := range debName.FindAllStringSubmatch(text, -1) {
			seen++
			version := m[2]
			upstream, revision, ok := strings.Cut(version, "-")
			if i := strings.LastIndex(version, "-"); i > 0 {
				upstream, revision, ok = version[:i], version[i+1:], true
			}
			if !ok || revision == "" {
				t.Errorf("%s: %s has no Debian revision (debship writes <version>-<revision>)", where, m[0])
				continue
			}
			canonical, err := debversion.DebianVersion(upstream)
			if err != nil {
				t.Errorf("%s: %s: %v", where, m[0], err)
				continue
			}
			if canonical != upstream {
				t.Errorf("%s: %s names version %s, but debship writes %s for it", where, m[0], upstream, canonical)
			}
			if _, ok := debversion.VersionTarget(version); !ok {
				t.Errorf("%s: %s has no target suffix (debship writes e.g. %s_%s-1+deb13u1_%s.deb)", where, m[0], m[1], upstream, m[3])
			}
			if m[3] != "all" && m[3] != "amd64" && m[3] != "arm64" {
				t.Errorf("%s: %s: architecture %q is not one debship builds", where, m[0], m[3])
			}
		}
	}
	if seen < 5 {
		t.Fatalf("found only %d .deb names in the help texts and README; the pattern no longer matches them", seen)
	}
}
