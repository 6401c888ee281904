package ship

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"gitlab.com/debship/debship/cluster/host"
	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/debbuild/debfile"
)

// PickDeb chooses, of the .debs of one release built for several Debian
// releases (the pipeline's build job per target), the one built for the
// release the cluster's app nodes run, read from their /etc/os-release. One
// .deb is returned as it is: the deploy's own checks judge it.
func PickDeb(ctx context.Context, inv *inventory.Inventory, co inventory.ConnectOptions, debs []string) (string, error) {
	if len(debs) == 1 {
		return debs[0], nil
	}
	ids := make([]debfile.Identity, len(debs))
	for i, d := range debs {
		id, err := debfile.OpenDeb(d)
		if err != nil {
			return "", err
		}
		ids[i] = id
	}
	nodes, err := nodeReleases(ctx, inv, co)
	if err != nil {
		return "", fmt.Errorf("%w; the .debs are for %s", err, targetsOf(ids))
	}
	i, err := pickFor(ids, nodes)
	if err != nil {
		return "", err
	}
	return debs[i], nil
}

// NodesTarget is the Debian release ("debian-13") every member node of
// the cluster runs, read from their /etc/os-release: the target whose .deb
// suits the cluster.
func NodesTarget(ctx context.Context, inv *inventory.Inventory, co inventory.ConnectOptions) (string, error) {
	nodes, err := nodeReleases(ctx, inv, co)
	if err != nil {
		return "", err
	}
	return oneRelease(nodes)
}

// nodeReleases is the target of each member node's Debian release.
func nodeReleases(ctx context.Context, inv *inventory.Inventory, co inventory.ConnectOptions) (map[string]string, error) {
	conns, err := inventory.ConnectAll(ctx, inv, co)
	if err != nil {
		return nil, fmt.Errorf("read the nodes' Debian release: %w", err)
	}
	defer inventory.CloseAll(conns)
	nodes := map[string]string{}
	for _, n := range inv.Members() {
		r, err := host.Release(ctx, conns[n.Name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.Name, err)
		}
		nodes[n.Name] = r.Target
	}
	return nodes, nil
}

// oneRelease is the release all nodes run; nodes on different releases
// (an upgrade half done) have no one .deb that suits them all.
func oneRelease(nodes map[string]string) (string, error) {
	var names []string
	for n := range nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	release := ""
	for _, n := range names {
		if release != "" && nodes[n] != release {
			var l []string
			for _, m := range names {
				l = append(l, m+" "+nodes[m])
			}
			return "", fmt.Errorf("the nodes run different Debian releases (%s)", strings.Join(l, ", "))
		}
		release = nodes[n]
	}
	return release, nil
}

// pickFor is the index of the .deb built for the release every node runs.
func pickFor(ids []debfile.Identity, nodes map[string]string) (int, error) {
	release, err := oneRelease(nodes)
	if err != nil {
		return 0, fmt.Errorf("%w: pass the one .deb to deploy", err)
	}
	found := -1
	for i, id := range ids {
		if id.Target != release {
			continue
		}
		if found >= 0 {
			return 0, fmt.Errorf("%s and %s are both built for %s: pass one", ids[found].FileName(), id.FileName(), release)
		}
		found = i
	}
	if found < 0 {
		return 0, fmt.Errorf("the nodes run %s, but none of the .debs is built for it (they are for %s); build with --target %s", release, targetsOf(ids), release)
	}
	return found, nil
}

func targetsOf(ids []debfile.Identity) string {
	var l []string
	for _, id := range ids {
		t := id.Target
		if t == "" {
			t = "no target"
		}
		l = append(l, id.FileName()+": "+t)
	}
	return strings.Join(l, ", ")
}
