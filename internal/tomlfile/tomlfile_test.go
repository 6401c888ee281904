package tomlfile

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

func TestLines(t *testing.T) {
	doc := []byte("name = \"x\"\n[ssh]\nport = 22\n[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\n[tool.debship.conffiles]\n\"etc/a.toml\" = \"/etc/a.toml\"\n")
	got := Lines(doc)
	for key, want := range map[string]int{"name": 1, "ssh": 2, "ssh.port": 3, "node.0": 4, "node.0.name": 5, "node.1.name": 7, "tool.debship.conffiles.etc/a.toml": 9} {
		if got[key] != want {
			t.Errorf("line of %q = %d, want %d", key, got[key], want)
		}
	}
}

func TestError(t *testing.T) {
	type doc struct {
		SSH struct {
			Port int `toml:"port"`
		} `toml:"ssh"`
	}
	decode := func(s string) error {
		var d doc
		return toml.NewDecoder(bytes.NewReader([]byte(s))).DisallowUnknownFields().Decode(&d)
	}
	cases := []struct{ doc, want string }{
		{"[ssh]\nprot = 22\n", `f.toml:2: unknown key "prot" in [ssh]; remove it or check the spelling (see docs)`},
		{"[ssh]\nport = \"22\"\n", `f.toml:2: ssh.port must be an integer, not a string; fix the value (see docs)`},
		{"[ssh\n", `f.toml:1:5: TOML syntax error:`},
		{"extra = 1\n", `f.toml:1: unknown key "extra" at the top level`},
	}
	for _, c := range cases {
		err := Error("f.toml", decode(c.doc), Options{SeeAlso: "docs"})
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %s…", c.doc, err, c.want)
		}
	}
	// Keep filters: only our own keys are errors.
	if err := Error("f.toml", decode("extra = 1\n"), Options{Keep: func(k []string) bool { return k[0] == "ssh" }}); err != nil {
		t.Errorf("filtered error = %v, want nil", err)
	}
}
