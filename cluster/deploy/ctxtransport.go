package deploy

import (
	"context"
	"fmt"
	"os"

	"gitlab.com/debship/debship/cluster/transport"
)

// ctxTransport returns from Run and Upload as soon as ctx ends. The SSH
// transport opens a new session per command, and opening one waits for
// the server's answer without looking at ctx: to a node that just crashed
// that wait lasts until the connection's keepalive gives up (up to 40 s).
// The deploy's watchdog knows within seconds (pacemaker reports the node
// offline) and must not wait for that. The abandoned call ends by itself
// when the connection is closed.
type ctxTransport struct{ transport.Transport }

func (c ctxTransport) Run(ctx context.Context, cmd string) ([]byte, []byte, error) {
	type result struct {
		out, errOut []byte
		err         error
	}
	ch := make(chan result, 1)
	go func() {
		o, e, err := c.Transport.Run(ctx, cmd)
		ch <- result{o, e, err}
	}()
	select {
	case r := <-ch:
		return r.out, r.errOut, r.err
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("%s: %w", c.Node(), context.Cause(ctx))
	}
}

func (c ctxTransport) Upload(ctx context.Context, path string, data []byte, mode os.FileMode) error {
	ch := make(chan error, 1)
	go func() { ch <- c.Transport.Upload(ctx, path, data, mode) }()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%s: upload %s: %w", c.Node(), path, context.Cause(ctx))
	}
}

func wrapConns(conns map[string]transport.Transport) map[string]transport.Transport {
	out := make(map[string]transport.Transport, len(conns))
	for n, t := range conns {
		out[n] = ctxTransport{t}
	}
	return out
}
