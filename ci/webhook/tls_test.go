package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"strings"
	"testing"

	"gitlab.com/debship/debship/ci/gitlab/gitlabtest"
	"gitlab.com/debship/debship/internal/testcert"
)

// TestTLS: with [tls] the receiver may listen on every interface, and
// serves HTTPS only.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key, pool := testcert.SelfSigned(t, dir, "127.0.0.1")
	e := newEnv(t, func(s string) string {
		s = strings.Replace(s, `listen = "127.0.0.1:0"`, `listen = "0.0.0.0:0"`, 1)
		return s + "\n[tls]\ncert = \"" + cert + "\"\n[tls.key]\nfile = \"" + key + "\"\n"
	})
	e.release("1.4.0")
	e.start()
	addr := strings.TrimPrefix(e.url, "http://")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	h := &gitlabtest.Hook{URL: "https://" + addr + "/hooks/gitlab", Token: testToken, Client: client}
	code, _, err := h.Send(context.Background(), gitlabtest.Delivery{Event: EventPipeline, Body: pipeline(t, "v1.4.0")})
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("over TLS: %d %v", code, err)
	}
	// Plain HTTP to the TLS port is refused.
	plain := &gitlabtest.Hook{URL: "http://" + addr + "/hooks/gitlab", Token: testToken}
	if code, _, _ := plain.Send(context.Background(), gitlabtest.Delivery{Event: EventPipeline, Body: pipeline(t, "v1.4.0")}); code == http.StatusAccepted {
		t.Error("plain HTTP accepted on the TLS listener")
	}
	e.waitFor("the deploy", func(s Status) bool { return s.Deployed == "1.4" })
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
