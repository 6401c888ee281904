package host

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gitlab.com/debship/debship/cluster/transport"
)

// GlusterPeers are the trusted pool as the node sees it: address (or
// "localhost") -> state ("Connected", "Disconnected"). Nil when glusterd
// does not answer (yet).
func GlusterPeers(ctx context.Context, t transport.Transport) map[string]string {
	out, _, err := t.Run(ctx, "gluster pool list 2>/dev/null")
	if err != nil {
		return nil
	}
	m := map[string]string{}
	// UUID, hostname, state under a header line.
	for _, l := range strings.Split(string(out), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) == 3 {
			m[f[1]] = f[2]
		}
	}
	return m
}

// GlusterProbe adds the node at addr to the trusted pool.
func GlusterProbe(ctx context.Context, t transport.Transport, addr string) error {
	_, err := transport.Output(ctx, t, "gluster --mode=script peer probe "+q(addr))
	return err
}

// VolumeInfo is the text of gluster volume info; "" when the volume does
// not exist or glusterd does not answer.
type VolumeInfo string

// Started reports whether the volume is started.
func (v VolumeInfo) Started() bool { return strings.Contains(string(v), "\nStatus: Started") }

// HasBrick reports whether brick (host:path) is one of the volume's, as a
// data brick or the arbiter.
func (v VolumeInfo) HasBrick(brick string) bool {
	return strings.Contains(string(v), ": "+brick+"\n") || strings.Contains(string(v), ": "+brick+" (arbiter)\n")
}

// ReadVolumeInfo reads a volume's info.
func ReadVolumeInfo(ctx context.Context, t transport.Transport, volume string) VolumeInfo {
	out, _, err := t.Run(ctx, "gluster volume info "+q(volume)+" 2>/dev/null")
	if err != nil {
		return ""
	}
	return VolumeInfo(out)
}

// Volume is a replicated volume to create.
type Volume struct {
	Name    string
	Replica int
	Arbiter bool     // the last brick is the arbiter (replica N arbiter 1)
	Bricks  []string // host:path
	// Force lets gluster put bricks on the root file system.
	Force bool
}

// CreateArgs are gluster's arguments that create the volume.
func (v Volume) CreateArgs() string {
	layout := fmt.Sprintf("replica %d", v.Replica)
	if v.Arbiter {
		layout += " arbiter 1"
	}
	s := fmt.Sprintf("volume create %s %s %s", q(v.Name), layout, quoteAll(v.Bricks))
	if v.Force {
		s += " force"
	}
	return s
}

// CreateVolume creates the volume (not started).
func CreateVolume(ctx context.Context, t transport.Transport, v Volume) error {
	_, err := transport.Output(ctx, t, "gluster --mode=script "+v.CreateArgs())
	return err
}

// StartVolume starts a volume.
func StartVolume(ctx context.Context, t transport.Transport, volume string) error {
	_, err := transport.Output(ctx, t, "gluster --mode=script volume start "+q(volume))
	return err
}

// VolumeOption reads an option of a volume; "" when gluster does not
// answer.
func VolumeOption(ctx context.Context, t transport.Transport, volume, option string) string {
	out, _, err := t.Run(ctx, fmt.Sprintf("gluster volume get %s %s 2>/dev/null", q(volume), q(option)))
	have := ""
	if err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == option {
				have = f[1]
			}
		}
	}
	return have
}

// SetVolumeOption sets an option of a volume.
func SetVolumeOption(ctx context.Context, t transport.Transport, volume, option, value string) error {
	_, err := transport.Output(ctx, t, fmt.Sprintf("gluster --mode=script volume set %s %s %s", q(volume), q(option), q(value)))
	return err
}

var healRE = regexp.MustCompile(`(?m)^Number of entries:\s*(\d+)`)

// PendingHeals counts the entries self-heal has still to copy between
// the bricks; 0 when gluster does not answer.
func PendingHeals(ctx context.Context, t transport.Transport, volume string) int {
	out, _, _ := t.Run(ctx, "gluster volume heal "+q(volume)+" info 2>/dev/null")
	n := 0
	for _, m := range healRE.FindAllStringSubmatch(string(out), -1) {
		c, _ := strconv.Atoi(m[1])
		n += c
	}
	return n
}

// GlusterMounted reports whether a gluster volume is mounted (FUSE) at
// mount.
func GlusterMounted(ctx context.Context, t transport.Transport, mount string) (bool, error) {
	_, _, err := t.Run(ctx, "findmnt -n -t fuse.glusterfs "+q(mount)+" >/dev/null")
	if err != nil && transport.ExitCode(err) < 0 {
		return false, err
	}
	return err == nil, nil
}
