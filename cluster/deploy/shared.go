package deploy

import (
	"fmt"
	"path/filepath"
	"strings"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/debbuild/inspect"
)

// appUserProblem is the sentence refusing a .deb whose app unit runs as
// another user than the one cluster apply gave the shared directory to
// ([app] user): that user would get whatever uid is free on each node and
// could not write there. "" when they agree or there is no [storage].
func appUserProblem(inv *inventory.Inventory, path string) string {
	if inv.Storage == nil {
		return ""
	}
	p, err := inspect.ReadPackage(path)
	if err != nil {
		return ""
	}
	for _, dir := range []string{"lib/systemd/system/", "usr/lib/systemd/system/"} {
		unit, ok := p.FileContent(dir + inv.AppUnit())
		if !ok {
			continue
		}
		for _, l := range strings.Split(string(unit), "\n") {
			if u, ok := strings.CutPrefix(strings.TrimSpace(l), "User="); ok && u != inv.AppUser() {
				return fmt.Sprintf("%s runs %s as the user %s, but the cluster gave %s to the user %s; set [app] user = %q in %s and run cluster apply",
					filepath.Base(path), inv.AppUnit(), u, inv.SharedDir(), inv.AppUser(), u, inv.Path)
			}
		}
	}
	return ""
}
