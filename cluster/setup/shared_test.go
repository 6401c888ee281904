package setup

import (
	"strings"
	"testing"
)

func acct(node string, user, group int, used ...string) *account {
	a := &account{uid: -1, gid: -1, userGid: -1, usedUIDs: map[int]string{0: "root"}, usedGIDs: map[int]string{0: "root"}, node: node, user: "hello-web"}
	if user >= 0 {
		a.hasUser, a.uid, a.userGid, a.usedUIDs[user] = true, user, group, "hello-web"
	}
	if group >= 0 {
		a.hasGroup, a.gid, a.usedGIDs[group] = true, group, "hello-web"
	}
	for _, u := range used {
		kind, rest, _ := strings.Cut(u, ":")
		var id int
		for _, c := range rest {
			id = id*10 + int(c-'0')
		}
		if kind == "u" {
			a.usedUIDs[id] = "other"
		} else {
			a.usedGIDs[id] = "other"
		}
	}
	return a
}

// TestPinnedIDs: the app's user gets one uid and gid on every node, even
// when the nodes' free ids differ; an existing consistent user keeps its
// ids; inconsistent ones are refused with a sentence saying how to fix.
func TestPinnedIDs(t *testing.T) {
	cases := []struct {
		name     string
		accounts []*account
		uid, gid int
		err      string
	}{
		{"fresh nodes: the top of the system range", []*account{acct("node1", -1, -1), acct("node2", -1, -1)}, 999, 999, ""},
		{"one node has 999 and 998 taken", []*account{acct("node1", -1, -1), acct("node2", -1, -1, "u:999", "g:998")}, 997, 997, ""},
		{"the user exists on one node", []*account{acct("node1", 120, 130), acct("node2", -1, -1)}, 120, 130, ""},
		{"the user exists alike everywhere", []*account{acct("node1", 120, 130), acct("node2", 120, 130)}, 120, 130, ""},
		{"only the group exists", []*account{acct("node1", -1, 150), acct("node2", -1, -1, "u:999")}, 998, 150, ""},
		{"different uids", []*account{acct("node1", 120, 130), acct("node2", 121, 130)}, 0, 0, "the user hello-web has uid 120 on node1 but 121 on node2"},
		{"different gids", []*account{acct("node1", 120, 130), acct("node2", 120, 131)}, 0, 0, "the group hello-web has gid 130 on node1 but 131 on node2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			uid, gid, err := pinnedIDs(c.accounts)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err = %v, want one sentence with %q", err, c.err)
				}
				return
			}
			if err != nil || uid != c.uid || gid != c.gid {
				t.Errorf("pinnedIDs = %d, %d, %v; want %d, %d", uid, gid, err, c.uid, c.gid)
			}
		})
	}
}
