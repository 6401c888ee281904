package host

import (
	"context"
	"testing"

	"gitlab.com/debship/debship/cluster/transport"
	"gitlab.com/debship/debship/internal/debian"
)

// A node's release is read the way the host's own is: the deploy picks the
// .deb of that release, so the two readers must agree.
func TestReleaseOfThisMachine(t *testing.T) {
	want, ok := debian.Host()
	if !ok {
		t.Fatal("this machine runs no release of debship's table; the tests run on Debian 12 or 13")
	}
	got, err := Release(context.Background(), &transport.Local{Name: "self"})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Release = %+v, want %+v", got, want)
	}
}
