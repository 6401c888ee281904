package rootfs

import (
	"reflect"
	"strings"
	"testing"
)

func TestUnescapeMount(t *testing.T) {
	tests := []struct{ in, want string }{
		{`/var/lib/debship/lab`, "/var/lib/debship/lab"},
		{`/var/lib/my\040lab`, "/var/lib/my lab"},
		{`/tmp/a\011b\134c`, "/tmp/a\tb\\c"},
		{`/tmp/trailing\04`, `/tmp/trailing\04`}, // too short to be an escape
	}
	for _, tt := range tests {
		if got := unescapeMount(tt.in); got != tt.want {
			t.Errorf("unescapeMount(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseMountInfo(t *testing.T) {
	info := `22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
812 29 0:77 / /var/lib/debship/lab/nodes/node1/root rw,relatime shared:400 - overlay debship-lab rw,lowerdir=/var/cache/debship/lab/base-x,upperdir=/u,workdir=/w
30 25 0:26 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
31 25 0:27 / /mnt/with\040space rw - tmpfs debship-testroot rw
garbage without separator
`
	got, err := parseMountInfo(strings.NewReader(info))
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{Target: "/proc", FSType: "proc", Source: "proc", SuperOpts: "rw"},
		{Target: "/var/lib/debship/lab/nodes/node1/root", FSType: "overlay", Source: "debship-lab",
			SuperOpts: "rw,lowerdir=/var/cache/debship/lab/base-x,upperdir=/u,workdir=/w"},
		{Target: "/sys/fs/cgroup/systemd", FSType: "cgroup", Source: "cgroup", SuperOpts: "rw,xattr,name=systemd"},
		{Target: "/mnt/with space", FSType: "tmpfs", Source: "debship-testroot", SuperOpts: "rw"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestLayerPaths(t *testing.T) {
	l := Layer{Dir: "/var/lib/debship/lab/nodes/node1"}
	if l.Upper() != l.Dir+"/upper" || l.Work() != l.Dir+"/work" || l.Root() != l.Dir+"/root" {
		t.Errorf("layer paths %s %s %s", l.Upper(), l.Work(), l.Root())
	}
}
