package transport

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"gitlab.com/debship/debship/internal/testnet"
)

// testServer is an SSH server in the test process that runs exec requests
// with sh -c on this machine. "sudo -n -H -- " in front of a command is
// dropped, as passwordless sudo would.
type testServer struct {
	addr     string
	hostKey  ssh.Signer
	userKey  ssh.Signer
	keyFile  string
	mu       sync.Mutex
	logins   int
	commands []string
}

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeKey(t *testing.T, dir string) (ssh.Signer, string) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := ssh.NewSignerFromKey(priv)
	p := filepath.Join(dir, "id_test")
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return s, p
}

func startServer(t *testing.T, hostKey ssh.Signer, userKey ssh.PublicKey) *testServer {
	t.Helper()
	srv := &testServer{hostKey: hostKey}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if string(k.Marshal()) == string(userKey.Marshal()) {
				srv.mu.Lock()
				srv.logins++
				srv.mu.Unlock()
				return nil, nil
			}
			return nil, errors.New("no")
		},
	}
	cfg.AddHostKey(hostKey)
	srv.addr = testnet.Serve(t, func(c net.Conn) { srv.serve(c, cfg) }).String()
	return srv
}

func (srv *testServer) serve(c net.Conn, cfg *ssh.ServerConfig) {
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		c.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "no")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer ch.Close()
			for r := range creqs {
				if r.Type != "exec" {
					r.Reply(false, nil)
					continue
				}
				n := binary.BigEndian.Uint32(r.Payload[:4])
				cmd := string(r.Payload[4 : 4+n])
				srv.mu.Lock()
				srv.commands = append(srv.commands, cmd)
				srv.mu.Unlock()
				r.Reply(true, nil)
				if rest, ok := strings.CutPrefix(cmd, "sudo -n -H -- sh -c "); ok {
					cmd = "sh -c " + rest
				}
				e := exec.Command("sh", "-c", cmd)
				e.Stdin, e.Stdout, e.Stderr = ch, ch, ch.Stderr()
				code := 0
				if err := e.Run(); err != nil {
					var ee *exec.ExitError
					code = 255
					if errors.As(err, &ee) {
						code = ee.ExitCode()
					}
				}
				ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, uint32(code)))
				return
			}
		}()
	}
}
