package host

import (
	"context"
	"fmt"
	"strings"

	"gitlab.com/debship/debship/cluster/transport"
	"gitlab.com/debship/debship/internal/debian"
)

// Release is the Debian release a node runs, from its /etc/os-release,
// as a row of debship's releases table. A node on a release debship does
// not build for is an error naming the releases it does.
func Release(ctx context.Context, t transport.Transport) (debian.Release, error) {
	out, _, err := t.Run(ctx, "cat /etc/os-release")
	if err != nil {
		return debian.Release{}, fmt.Errorf("read /etc/os-release: %w", err)
	}
	r, ok := debian.ParseOSRelease(out)
	if !ok {
		return debian.Release{}, fmt.Errorf("runs no Debian release debship builds for (%s)", strings.Join(debian.Targets(), ", "))
	}
	return r, nil
}
