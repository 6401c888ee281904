package webhook

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/ci/gitlab/gitlabtest"
)

// selfSigned writes a certificate for 127.0.0.1 and its key (mode 0600).
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "webhook test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

// TestTLS: with [tls] the receiver may listen on every interface, and
// serves HTTPS only.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key, pool := selfSigned(t, dir)
	e := newEnv(t, func(s string) string {
		s = strings.Replace(s, `listen = "127.0.0.1:0"`, `listen = "0.0.0.0:0"`, 1)
		return s + "\n[tls]\ncert = \"" + cert + "\"\n[tls.key]\nfile = \"" + key + "\"\n"
	})
	e.release("1.4.0")
	rec, err := New(e.cfg, Options{Deployer: e.dep, Log: slog.New(slog.NewTextHandler(e.logs, nil)),
		Fetcher: &GitLabFetcher{Config: e.cfg, RetryWaitMin: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	h := &gitlabtest.Hook{URL: "https://" + ln.Addr().String() + "/hooks/gitlab", Token: testToken, Client: client}
	code, _, err := h.Send(context.Background(), gitlabtest.Delivery{Event: EventPipeline, Body: pipeline(t, "v1.4.0")})
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("over TLS: %d %v", code, err)
	}
	// Plain HTTP to the TLS port is refused.
	plain := &gitlabtest.Hook{URL: "http://" + ln.Addr().String() + "/hooks/gitlab", Token: testToken}
	if code, _, _ := plain.Send(context.Background(), gitlabtest.Delivery{Event: EventPipeline, Body: pipeline(t, "v1.4.0")}); code == http.StatusAccepted {
		t.Error("plain HTTP accepted on the TLS listener")
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if _, err := rec.Wait(wctx, func(s Status) bool { return s.Deployed == "1.4" }); err != nil {
		t.Fatal(err)
	}
}

func TestSelectDeployer(t *testing.T) {
	e := newEnv(t, nil)
	rolling := DeployerFunc(func(context.Context, Job, string) error { return nil })
	called := 0
	engine := func(*Config) (Deployer, error) { called++; return rolling, nil }
	d, err := SelectDeployer(e.cfg, engine, nil)
	if cd, ok := d.(*CommandDeployer); err != nil || !ok || cd.Argv[0] != "/bin/true" || len(cd.DropEnv) != 1 || called != 0 {
		t.Errorf("with a command: %#v %v (rolling deploy made %d times)", d, err, called)
	}
	e.cfg.Command = nil
	d, err = SelectDeployer(e.cfg, engine, nil)
	if err != nil || d == nil || called != 1 {
		t.Errorf("without a command: %v %v", d, err)
	}
	_, err = SelectDeployer(e.cfg, func(*Config) (Deployer, error) { return nil, errors.New("no inventory") }, nil)
	if err == nil || !strings.Contains(err.Error(), "the rolling deploy to") {
		t.Errorf("rolling deploy refused: %v", err)
	}
}
