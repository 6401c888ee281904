// Package testnet runs a test's stand-in servers (an HTTP app that
// misbehaves on purpose, an SSH server) on a loopback port.
package testnet

import (
	"net"
	"sync"
	"testing"
)

// Serve listens on a loopback port of the current network namespace and
// hands each connection to serve, in a goroutine of its own, until the
// test ends; then it closes the listener and the connections serve left
// open, so that a server that never answers ends with its test.
func Serve(t testing.TB, serve func(net.Conn)) *net.TCPAddr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed { // accepted as the test ended
				c.Close()
			}
			conns = append(conns, c)
			mu.Unlock()
			go serve(c)
		}
	}()
	return ln.Addr().(*net.TCPAddr)
}
