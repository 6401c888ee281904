package setup

import (
	"context"
	"encoding/base64"
	"fmt"

	"gitlab.com/debship/debship/cluster/inventory"
)

// The tie-breaker's corosync-qnetd and the members' corosync-qdevice talk
// TLS with certificates from the qnetd's CA, as "pcs qdevice setup" and
// "pcs quorum device add" arrange them (corosync-qdevice-net-certutil(8)):
// the CA certificate goes to every member, the primary's certificate
// request is signed on the tie-breaker, and the signed certificate with its
// key (a PKCS#12 file) goes to the other members.
const (
	qnetdDB      = "/etc/corosync/qnetd/nssdb"
	qnetdCA      = qnetdDB + "/qnetd-cacert.crt"
	qdeviceDir   = "/etc/corosync/qdevice/net"
	qdeviceDB    = qdeviceDir + "/nssdb"
	qdeviceCA    = qdeviceDir + "/qnetd-cacert.crt"
	qdeviceP12   = qdeviceDB + "/qdevice-net-node.p12"
	clusterCertQ = "certutil -L -d " + qdeviceDB + " -n 'Cluster Cert' >/dev/null 2>&1"
)

// copyFile copies a file between two nodes through this process (base64
// over the two SSH connections).
func copyFile(ctx context.Context, from *Target, src string, to *Target, dst string) error {
	b64, err := from.Sh(ctx, "base64 -w0 "+q(src))
	if err != nil {
		return err
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return to.T.Upload(ctx, dst, b, 0o600)
}

func sha(ctx context.Context, t *Target, path string) (string, error) {
	return t.Sh(ctx, "sha256sum "+q(path)+" 2>/dev/null | cut -d' ' -f1")
}

func qdeviceCertSteps(inv *inventory.Inventory) []Stage {
	tb, _ := inv.Tiebreaker()
	tbT := func(t *Target) *Target { return t.Peer(tb.Name) }
	caStep := Step{
		Name: "qdevice CA certificate",
		Hint: "corosync-qdevice-net-certutil -i failed; see its output above",
		Check: func(ctx context.Context, t *Target) (State, error) {
			want, err := sha(ctx, tbT(t), qnetdCA)
			if err != nil {
				return State{}, err
			}
			have, err := sha(ctx, t, qdeviceCA)
			if err != nil {
				return State{}, err
			}
			db, err := t.Sh(ctx, "test -e "+qdeviceDB+"/cert9.db && echo yes || true")
			if err != nil {
				return State{}, err
			}
			return doneIf(want != "" && want == have && db == "yes", "trust the CA of %s's corosync-qnetd", tb.Name), nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			if err := copyFile(ctx, tbT(t), qnetdCA, t, qdeviceCA); err != nil {
				return err
			}
			_, err := t.Sh(ctx, "rm -rf "+qdeviceDB+" && corosync-qdevice-net-certutil -i -c "+qdeviceCA+" >/dev/null")
			return err
		},
	}
	signStep := Step{
		Name: "qdevice cluster certificate",
		Hint: "the certificate request is signed on the tie-breaker with corosync-qnetd-certutil -s",
		Check: func(ctx context.Context, t *Target) (State, error) {
			return shState(ctx, t, clusterCertQ+" && test -s "+qdeviceP12+" && echo ok || echo 'get a certificate signed by the tie-breaker'")
		},
		Apply: func(ctx context.Context, t *Target) error {
			name := t.Inv().Name
			if _, err := t.Sh(ctx, "corosync-qdevice-net-certutil -r -n "+q(name)+" >/dev/null"); err != nil {
				return err
			}
			tbt := tbT(t)
			crq := "/var/lib/debship/qdevice-" + name + ".crq"
			if err := copyFile(ctx, t, qdeviceDB+"/qdevice-net-node.crq", tbt, crq); err != nil {
				return err
			}
			signed := qnetdDB + "/cluster-" + name + ".crt"
			if _, err := tbt.Sh(ctx, "rm -f "+q(signed)+"; corosync-qnetd-certutil -s -c "+q(crq)+" -n "+q(name)+" >/dev/null"); err != nil {
				return err
			}
			crt := qdeviceDir + "/cluster-" + name + ".crt"
			if err := copyFile(ctx, tbt, signed, t, crt); err != nil {
				return err
			}
			_, err := t.Sh(ctx, "corosync-qdevice-net-certutil -M -c "+q(crt)+" >/dev/null")
			return err
		},
	}
	importStep := Step{
		Name: "qdevice node certificate",
		Check: func(ctx context.Context, t *Target) (State, error) {
			return shState(ctx, t, clusterCertQ+" && echo ok || echo 'import the cluster certificate'")
		},
		Apply: func(ctx context.Context, t *Target) error {
			p := t.Peer(t.Inv().Primary().Name)
			dst := qdeviceDir + "/qdevice-net-node.p12"
			if err := copyFile(ctx, p, qdeviceP12, t, dst); err != nil {
				return err
			}
			_, err := t.Sh(ctx, "corosync-qdevice-net-certutil -m -c "+dst+" >/dev/null")
			return err
		},
	}
	return []Stage{
		{Nodes: inv.Members(), Steps: []Step{caStep}},
		{Nodes: []inventory.Node{inv.Primary()}, Steps: []Step{signStep}},
		{Nodes: others(inv.Members(), inv.Primary()), Steps: []Step{importStep}},
	}
}
