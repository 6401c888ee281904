package setup

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"gitlab.com/debship/debship/cluster/host"
	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/debbuild"
)

// The system range of adduser.conf(5) (FIRST_SYSTEM_UID, LAST_SYSTEM_UID):
// a pinned id is picked from its top, away from where adduser allocates.
const (
	firstSystemID = 100
	lastSystemID  = 999
)

// sharedStages give the app its own directory on the shared file system:
// its system user with the same uid and gid on every member (GlusterFS
// stores numeric ids), created before the package's postinst would pick
// whatever id is free; then <mount>/<package> owned by it, made from one
// node (made from every member at once, GlusterFS replica 2 answered one
// of them with an I/O error). dropInSteps let the app's units write there.
// None without [storage].
func sharedStages(inv *inventory.Inventory) []Stage {
	if inv.Storage == nil {
		return nil
	}
	return []Stage{
		{Nodes: inv.Members(), Steps: []Step{appUserStep()}},
		{Nodes: []inventory.Node{inv.Primary()}, Steps: []Step{sharedDirStep()}},
	}
}

func dropInSteps(inv *inventory.Inventory) []Step {
	if inv.Storage == nil {
		return nil
	}
	return []Step{dropInStep(inv.AppUnit()), dropInStep(debbuild.MigrateUnit(inv.App.Package))}
}

// account is what getent says about the app's user and group on a node.
type account struct {
	uid, gid   int // -1: no such user / group
	userGid    int // the user's primary group
	usedUIDs   map[int]string
	usedGIDs   map[int]string
	hasUser    bool
	hasGroup   bool
	node, user string
}

// readAccount reads the node's passwd and group databases.
func readAccount(ctx context.Context, t *Target) (*account, error) {
	out, err := t.Sh(ctx, "getent passwd | cut -d: -f1,3,4; echo --; getent group | cut -d: -f1,3")
	if err != nil {
		return nil, fmt.Errorf("read the users of %s: %w", t.Node.Name, err)
	}
	a := &account{uid: -1, gid: -1, userGid: -1, usedUIDs: map[int]string{}, usedGIDs: map[int]string{}, node: t.Node.Name, user: t.Inv().AppUser()}
	passwd, group, _ := strings.Cut(out, "--")
	for _, l := range strings.Split(passwd, "\n") {
		f := strings.Split(strings.TrimSpace(l), ":")
		if len(f) != 3 {
			continue
		}
		uid, err1 := strconv.Atoi(f[1])
		gid, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			continue
		}
		a.usedUIDs[uid] = f[0]
		if f[0] == a.user {
			a.hasUser, a.uid, a.userGid = true, uid, gid
		}
	}
	for _, l := range strings.Split(group, "\n") {
		f := strings.Split(strings.TrimSpace(l), ":")
		if len(f) != 2 {
			continue
		}
		gid, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		a.usedGIDs[gid] = f[0]
		if f[0] == a.user {
			a.hasGroup, a.gid = true, gid
		}
	}
	return a, nil
}

// pinnedIDs is the uid and gid the app's user has on every member: the
// ones it already has where it exists, else the highest system id free as
// both uid and gid on every member.
func pinnedIDs(accounts []*account) (uid, gid int, err error) {
	uid, gid = -1, -1
	var uidFrom, gidFrom string
	for _, a := range accounts {
		if a.hasUser {
			if uid >= 0 && a.uid != uid {
				return 0, 0, fmt.Errorf("the user %s has uid %d on %s but %d on %s, so files on the shared volume would change owner between nodes; give it one uid on every node (usermod -u, then chown its files) and apply again", a.user, uid, uidFrom, a.uid, a.node)
			}
			uid, uidFrom = a.uid, a.node
		}
		if a.hasGroup {
			if gid >= 0 && a.gid != gid {
				return 0, 0, fmt.Errorf("the group %s has gid %d on %s but %d on %s; give it one gid on every node (groupmod -g, then chgrp its files) and apply again", a.user, gid, gidFrom, a.gid, a.node)
			}
			gid, gidFrom = a.gid, a.node
		}
	}
	free := func(id int, used func(*account) map[int]string) bool {
		for _, a := range accounts {
			if _, ok := used(a)[id]; ok {
				return false
			}
		}
		return true
	}
	uids := func(a *account) map[int]string { return a.usedUIDs }
	gids := func(a *account) map[int]string { return a.usedGIDs }
	for id := lastSystemID; id >= firstSystemID && (uid < 0 || gid < 0); id-- {
		switch {
		case uid < 0 && gid < 0 && free(id, uids) && free(id, gids):
			uid, gid = id, id
		case uid >= 0 && gid < 0 && free(id, gids):
			gid = id
		case gid >= 0 && uid < 0 && free(id, uids):
			uid = id
		}
	}
	if uid < 0 || gid < 0 {
		return 0, 0, fmt.Errorf("no system uid and gid (%d-%d) is free on every node for the user %s; create it by hand with one uid and gid on every node", firstSystemID, lastSystemID, accounts[0].user)
	}
	return uid, gid, nil
}

// membersAccounts reads every member's users, in the inventory's order.
func membersAccounts(ctx context.Context, t *Target) ([]*account, error) {
	var out []*account
	for _, n := range t.Inv().Members() {
		a, err := readAccount(ctx, t.Peer(n.Name))
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// appUserPlan is what the node needs: its account and the pinned ids, or
// the sentence refusing it.
func appUserPlan(ctx context.Context, t *Target) (a *account, uid, gid int, err error) {
	all, err := membersAccounts(ctx, t)
	if err != nil {
		return nil, 0, 0, err
	}
	if uid, gid, err = pinnedIDs(all); err != nil {
		return nil, 0, 0, err
	}
	for _, x := range all {
		if x.node == t.Node.Name {
			a = x
		}
	}
	if a == nil {
		return nil, 0, 0, fmt.Errorf("%s runs no app", t.Node.Name)
	}
	if owner, ok := a.usedUIDs[uid]; ok && owner != a.user {
		return nil, 0, 0, fmt.Errorf("on %s uid %d belongs to %s, but the app's user %s needs it to own the same files on every node; free the uid there (usermod -u) and apply again", a.node, uid, owner, a.user)
	}
	if owner, ok := a.usedGIDs[gid]; ok && owner != a.user {
		return nil, 0, 0, fmt.Errorf("on %s gid %d belongs to the group %s, but the app's group %s needs it on every node; free the gid there (groupmod -g) and apply again", a.node, gid, owner, a.user)
	}
	if a.hasUser && a.userGid != gid {
		return nil, 0, 0, fmt.Errorf("on %s the user %s's primary group has gid %d, not its group %s (%d); fix it with usermod -g %s and apply again", a.node, a.user, a.userGid, a.user, gid, a.user)
	}
	return a, uid, gid, nil
}

// appUserStep creates the app's group and user with the pinned ids, the
// way the package's postinst would (system user, no home directory made,
// home /var/lib/<package>), so that the postinst finds it existing.
func appUserStep() Step {
	return Step{
		Name: "app user (same uid on every node)",
		Hint: "the app's files on the shared volume belong to one numeric uid; it must name the same user on every node",
		Check: func(ctx context.Context, t *Target) (State, error) {
			a, uid, gid, err := appUserPlan(ctx, t)
			if err != nil {
				return State{}, err
			}
			var todo []string
			if !a.hasGroup {
				todo = append(todo, fmt.Sprintf("create group %s (gid %d)", a.user, gid))
			}
			if !a.hasUser {
				todo = append(todo, fmt.Sprintf("create user %s (uid %d)", a.user, uid))
			}
			return doneIf(len(todo) == 0, "%s", strings.Join(todo, ", ")), nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			a, uid, gid, err := appUserPlan(ctx, t)
			if err != nil {
				return err
			}
			if !a.hasGroup {
				if _, err := t.Sh(ctx, fmt.Sprintf("addgroup --system --quiet --gid %d %s", gid, q(a.user))); err != nil {
					return err
				}
			}
			if !a.hasUser {
				home := "/var/lib/" + t.Inv().App.Package
				if _, err := t.Sh(ctx, fmt.Sprintf("adduser --system --quiet --no-create-home --uid %d --ingroup %s --home %s %s", uid, q(a.user), q(home), q(a.user))); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// sharedDirStep keeps <mount>/<package> owned by the app's user, 0750.
func sharedDirStep() Step {
	want := func(t *Target) string { return t.Inv().AppUser() + ":" + t.Inv().AppUser() + " 750" }
	return Step{
		Name: "app's shared directory",
		Hint: "the directory is on the GlusterFS mount: is it mounted (gluster mount step)?",
		Check: func(ctx context.Context, t *Target) (State, error) {
			dir := t.Inv().SharedDir()
			out, err := t.Sh(ctx, fmt.Sprintf("stat -c '%%U:%%G %%a' %s 2>/dev/null || echo missing", q(dir)))
			if err != nil {
				return State{}, err
			}
			if out == "missing" {
				return Todo("create %s (%s)", dir, want(t)), nil
			}
			return doneIf(out == want(t), "%s is %s, want %s", dir, out, want(t)), nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			u := t.Inv().AppUser()
			_, err := t.Sh(ctx, fmt.Sprintf("install -d -m 0750 -o %s -g %s %s && chown %s:%s %s && chmod 0750 %s",
				q(u), q(u), q(t.Inv().SharedDir()), q(u), q(u), q(t.Inv().SharedDir()), q(t.Inv().SharedDir())))
			return err
		},
	}
}

// DropInPath is the drop-in that lets unit write to the app's shared
// directory.
func DropInPath(unit string) string { return "/etc/systemd/system/" + unit + ".d/debship-shared.conf" }

func dropInStep(unit string) Step {
	return fileStep("shared directory for "+unit, DropInPath(unit), 0o644,
		templateFile("debship-shared.conf", func(t *Target) any { return map[string]any{"Dir": t.Inv().SharedDir()} }),
		func(ctx context.Context, t *Target) error { return host.DaemonReload(ctx, t.T) })
}
