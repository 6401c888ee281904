// Package host is the one typed layer of operations on a node over a
// transport.Transport: apt and dpkg, systemd units, pacemaker (crm_mon,
// crm_resource, the CIB, pcs) and gluster. Setup, status and deploy all
// run these commands through here, so each command is written once and
// every value in it goes through transport.Quote.
//
// Operations know nothing of debship's cluster model: they take unit,
// resource, package and volume names as arguments. The model (which
// resources exist, what they are called) is cluster/inventory's.
package host

import (
	"strings"

	"gitlab.com/debship/debship/cluster/transport"
)

var q = transport.Quote

func quoteAll(l []string) string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = q(s)
	}
	return strings.Join(out, " ")
}
