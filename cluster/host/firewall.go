package host

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"gitlab.com/debship/debship/cluster/transport"
)

var bannedRE = regexp.MustCompile(`Currently banned:\s*(\d+)`)

// Firewall is ufw's state: "active", "inactive" or "not installed".
func Firewall(ctx context.Context, t transport.Transport) (string, error) {
	out, err := transport.Output(ctx, t, "if command -v ufw >/dev/null; then ufw status | head -1; else echo 'not installed'; fi")
	if err != nil {
		return "", err
	}
	return strings.ToLower(strings.TrimSpace(strings.TrimPrefix(out, "Status:"))), nil
}

// Fail2ban is fail2ban's state ("running", "stopped", "not installed")
// and how many addresses its sshd jail bans now.
func Fail2ban(ctx context.Context, t transport.Transport) (state string, banned int, err error) {
	out, err := transport.Output(ctx, t, "if ! command -v fail2ban-client >/dev/null; then echo 'not installed'; "+
		"elif systemctl -q is-active fail2ban; then echo running; fail2ban-client status sshd 2>/dev/null | grep 'Currently banned' || true; else echo stopped; fi")
	if err != nil {
		return "", 0, err
	}
	state = strings.SplitN(out, "\n", 2)[0]
	if m := bannedRE.FindStringSubmatch(out); m != nil {
		fmt.Sscan(m[1], &banned)
	}
	return state, banned, nil
}
