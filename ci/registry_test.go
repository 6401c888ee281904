package ci_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/debship/debship/internal/testcert"
)

// dockerHubHost is where buildah (containers/image) sends what is pushed
// to docker.io/...: the job's script names docker.io, and the test keeps it.
const dockerHubHost = "registry-1.docker.io"

// registry is Debian's docker-registry on loopback, with htpasswd auth and
// TLS, standing in for Docker Hub: an HTTPS proxy that the job's tools are
// pointed at (HTTPS_PROXY) tunnels registry-1.docker.io:443 to it and
// refuses every other destination, and a certificate for
// registry-1.docker.io that only the job trusts (SSL_CERT_FILE). So the
// script pushes to docker.io exactly as written, and nothing leaves the
// machine.
type registry struct {
	addr     string // 127.0.0.1:port of docker-registry
	user     string
	password string
	client   *http.Client // speaks TLS to docker-registry as registry-1.docker.io
	env      []string     // HTTPS_PROXY and SSL_CERT_FILE for the job

	mu      sync.Mutex
	refused []string // destinations the proxy refused
}

// startRegistry starts docker-registry and its proxy for this test; the
// account user/password is the only one it knows.
func startRegistry(t *testing.T, user, password string) *registry {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile, pool := testcert.SelfSigned(t, dir, dockerHubHost)
	htpasswd := filepath.Join(dir, "htpasswd")
	// -i: the password on stdin, not on the command line.
	cmd := exec.Command("htpasswd", "-iBc", htpasswd, user)
	cmd.Stdin = strings.NewReader(password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("htpasswd: %v\n%s", err, out)
	}
	r := &registry{addr: freeLoopbackAddr(t), user: user, password: password}
	cfg := filepath.Join(dir, "config.yml")
	writeFile(t, cfg, fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
  secret: %s
  tls:
    certificate: %s
    key: %s
auth:
  htpasswd:
    realm: debship-test
    path: %s
`, strconv.Quote(filepath.Join(dir, "data")), r.addr, strconv.Quote(randomToken(t)),
		strconv.Quote(certFile), strconv.Quote(keyFile), strconv.Quote(htpasswd)))
	logFile := filepath.Join(dir, "registry.log")
	log, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	srv := exec.Command("docker-registry", "serve", cfg)
	srv.Stdout, srv.Stderr = log, log
	if err := srv.Start(); err != nil {
		t.Fatalf("docker-registry: %v", err)
	}
	r.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", r.addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: dockerHubHost},
	}}
	proxy := httptest.NewServer(http.HandlerFunc(r.tunnel))
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
		proxy.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("the end of docker-registry's log:\n%s", strings.Join(lines[max(0, len(lines)-20):], "\n"))
		}
	})
	r.env = []string{"HTTPS_PROXY=" + proxy.URL, "SSL_CERT_FILE=" + certFile}
	r.waitReady(t)
	return r
}

// waitReady waits for docker-registry to answer, and checks that it asks
// for credentials: the push cannot succeed without the job's.
func (r *registry) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := r.client.Get("https://" + dockerHubHost + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("docker-registry answers %s to an anonymous client, want 401", resp.Status)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry does not answer on %s: %v", r.addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tunnel is the job's HTTPS proxy: CONNECT to Docker Hub's registry reaches
// docker-registry; anything else is refused and remembered.
func (r *registry) tunnel(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodConnect || req.Host != dockerHubHost+":443" {
		r.mu.Lock()
		r.refused = append(r.refused, req.Method+" "+req.Host)
		r.mu.Unlock()
		http.Error(w, "this test reaches only "+dockerHubHost+":443", http.StatusForbidden)
		return
	}
	up, err := net.Dial("tcp", r.addr)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer up.Close()
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	go func() {
		io.Copy(up, buf)
		up.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(conn, up)
}

// refusedDestinations are the hosts the job tried to reach besides the registry.
func (r *registry) refusedDestinations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.refused...)
}

// getJSON reads a registry API path as the account's owner, as Docker
// Hub's web page would show it.
func (r *registry) getJSON(t *testing.T, path, accept string, v any) http.Header {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "https://"+dockerHubHost+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(r.user, r.password)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatalf("registry GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("registry GET %s: %s %v\n%s", path, resp.Status, err, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("registry GET %s: %v\n%s", path, err, b)
	}
	return resp.Header
}

// freeLoopbackAddr is a loopback address with a port nothing listens on
// now, for a server that cannot be handed a listener.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func randomToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
