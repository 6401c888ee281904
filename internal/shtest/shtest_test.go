package shtest

import (
	"strings"
	"testing"
)

// quote is transport.Quote's rule, repeated here: shtest sits below
// cluster/transport and must judge it from the outside.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

func TestLiteral(t *testing.T) {
	brick := `/bricks/x'; touch /tmp/PWNED; echo '`
	cases := []struct {
		name, script, value string
		ok, found           bool
	}{
		{"quoted", "test -d " + quote(brick) + " && echo ok", brick, true, true},
		// The hole of issue 11: a value inside a single-quoted message.
		{"inside single quotes", "test -d /x && echo ok || echo 'create " + brick + "'", brick, false, true},
		{"unquoted space", "mount /srv/hx space", "hx space", false, true},
		{"double quotes with substitution", `echo "hx$(touch /tmp/x)"`, "hx$(touch /tmp/x)", false, true},
		{"double quotes, escaped", `echo "hx\$(touch /tmp/x)"`, "hx$(touch /tmp/x)", true, true},
		{"backslash escapes", `echo hx\;touch`, "hx;touch", true, true},
		{"comment", "# node hx\ntouch /tmp/x\necho", "hx\ntouch /tmp/x", false, true},
		{"glob", "ls /srv/hx*", "hx*", false, true},
		{"quoted glob", "ls '/srv/hx*'", "hx*", true, true},
		{"tilde", "ls ~hx", "~hx", false, true},
		{"leading dash", "systemctl start -hxdash", "-hxdash", false, true},
		{"dash inside", "ls /srv/-hxdash", "-hxdash", true, true},
		{"absent", "echo ok", "hx'q", true, false},
		{"does not parse", "echo 'hx", "hx", false, true},
		{"split over quotes and expansion", `x="$HOME"'hx'"'"'q'`, "hx'q", false, true},
	}
	for _, c := range cases {
		found, err := Literal(c.script, c.value)
		if (err == nil) != c.ok || found != c.found {
			t.Errorf("%s: Literal(%q, %q) = %v, %v; want found %v, ok %v", c.name, c.script, c.value, found, err, c.found, c.ok)
		}
	}
	for _, h := range Hostile {
		if found, err := Literal("echo "+quote(h)+" >/dev/null", h); (err == nil) == strings.HasPrefix(h, "-") || !found {
			t.Errorf("quoted %q: %v, %v", h, found, err)
		}
		// Only these mean nothing to the shell in the middle of a word.
		if h != "hxé" && h != `hx/../..` && h != "hx#c" {
			if _, err := Literal("echo "+h, h); err == nil {
				t.Errorf("unquoted %q passes", h)
			}
		}
	}
}
