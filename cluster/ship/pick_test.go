package ship

import (
	"strings"
	"testing"

	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/debbuild/debversion"
)

func TestPickFor(t *testing.T) {
	id := func(version string) debfile.Identity {
		i := debfile.Identity{Package: "app", Version: version, Arch: "all"}
		if r, ok := debversion.VersionTarget(version); ok {
			i.Target = r.Target
		}
		return i
	}
	both := []debfile.Identity{id("1.4-1+deb13u1"), id("1.4-1+deb12u1")}
	tests := []struct {
		name  string
		ids   []debfile.Identity
		nodes map[string]string
		want  int
		err   string
	}{
		{"trixie nodes", both, map[string]string{"node1": "debian-13", "node2": "debian-13"}, 0, ""},
		{"bookworm nodes", both, map[string]string{"node1": "debian-12", "node2": "debian-12"}, 1, ""},
		{"mixed nodes", both, map[string]string{"node1": "debian-12", "node2": "debian-13"}, 0,
			"the nodes run different Debian releases (node1 debian-12, node2 debian-13): pass the one .deb to deploy"},
		{"no .deb for the nodes", both[:1], map[string]string{"node1": "debian-12"}, 0,
			"the nodes run debian-12, but none of the .debs is built for it (they are for app_1.4-1+deb13u1_all.deb: debian-13); build with --target debian-12"},
		{"two for one release", []debfile.Identity{id("1.4-1+deb13u1"), id("1.5-1+deb13u1")}, map[string]string{"node1": "debian-13"}, 0,
			"app_1.4-1+deb13u1_all.deb and app_1.5-1+deb13u1_all.deb are both built for debian-13"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pickFor(tt.ids, tt.nodes)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %d %v, want %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %d %v, want %d", got, err, tt.want)
			}
		})
	}
}
