// Package testlog sends what a program writes for its user (progress,
// logs) to the test's log, one t.Log per write, so that `go test -v`
// shows it beside the test's own lines and a passing test stays quiet.
package testlog

import (
	"io"
	"strings"
	"testing"
)

// Writer logs each write to t without its trailing newline. testing.T's
// Log may be called from several goroutines; not after the test ended.
func Writer(t testing.TB) io.Writer { return writer{t} }

type writer struct{ t testing.TB }

func (w writer) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
