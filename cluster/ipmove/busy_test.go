package ipmove

import (
	"bufio"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/templates"
)

// TestBusyAwk runs the drain's classification (templates/files/deploy/
// busy.awk) on real loopback sockets, read by the same ss command as
// move-ip.sh: the drain must wait for a request being answered and must
// not wait for a connection whose client is idle, or new connections are
// held back past their SYN's retransmission.
func TestBusyAwk(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		t.Fatalf("ss (iproute2) is needed: %v", err)
	}
	prog, err := templates.Raw("deploy/busy.awk")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// server handles the accepted connection; client drives the other end.
		server, client func(t *testing.T, c net.Conn)
		wait           time.Duration // before looking
		busy, long     int           // counted with min=0 and min=100
	}{
		{"idle keep-alive connection after an answer", answer, request, 80 * time.Millisecond, 0, 0},
		{"idle keep-alive connection for 300 ms", answer, request, 300 * time.Millisecond, 0, 0},
		{"request being answered", readRequest, request, 5 * time.Millisecond, 1, 0},
		{"request being answered for 150 ms", readRequest, request, 150 * time.Millisecond, 1, 1},
		{"request not read yet", nothing, request, 150 * time.Millisecond, 1, 1},
		{"connection just opened, request on its way", nothing, nothing, 5 * time.Millisecond, 1, 0},
		{"connection opened ahead of need, never used", nothing, nothing, 300 * time.Millisecond, 0, 0},
		{"second request on a kept-alive connection", answerThenRead, twoRequests, 5 * time.Millisecond, 1, 0},
		{"answer not read by a slow client", bigAnswer, request, 150 * time.Millisecond, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			served := make(chan struct{})
			go func() {
				defer close(served)
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				tt.server(t, c)
				<-time.After(2 * time.Second)
			}()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tt.client(t, c)
			time.Sleep(tt.wait)
			addr := l.Addr().String()
			for min, want := range map[int]int{0: tt.busy, 100: tt.long} {
				if got := countBusy(t, addr, min, string(prog)); got != want {
					out, _ := exec.Command("ss", "-Htni", "state", "established", "src", addr).CombinedOutput()
					t.Errorf("busy with min=%d: %d connections, want %d; ss says:\n%s", min, got, want, out)
				}
			}
		})
	}
}

func countBusy(t *testing.T, addr string, min int, prog string) int {
	t.Helper()
	out, err := exec.Command("sh", "-c", `ss -Htni state established src "$1" | awk -v min="$2" "$3"`,
		"sh", addr, strconv.Itoa(min), prog).Output()
	if err != nil {
		t.Fatalf("ss | awk: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("busy.awk printed %q", out)
	}
	return n
}

func nothing(*testing.T, net.Conn) {}

func request(t *testing.T, c net.Conn) {
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Error(err)
	}
}

// twoRequests sends a request, reads its answer, and sends the next one.
func twoRequests(t *testing.T, c net.Conn) {
	request(t, c)
	if _, err := bufio.NewReader(c).Peek(len(okAnswer)); err != nil {
		t.Error(err)
	}
	time.Sleep(5 * time.Millisecond)
	request(t, c)
}

const okAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

func readRequest(t *testing.T, c net.Conn) {
	buf := make([]byte, 4096)
	if _, err := c.Read(buf); err != nil {
		t.Error(err)
	}
}

func answer(t *testing.T, c net.Conn) {
	readRequest(t, c)
	if _, err := c.Write([]byte(okAnswer)); err != nil {
		t.Error(err)
	}
}

func answerThenRead(t *testing.T, c net.Conn) {
	answer(t, c)
	readRequest(t, c)
}

// bigAnswer writes more than the client's socket buffers take: the client
// never reads, so the answer stays queued.
func bigAnswer(t *testing.T, c net.Conn) {
	readRequest(t, c)
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = c.Write(make([]byte, 16<<20))
}
