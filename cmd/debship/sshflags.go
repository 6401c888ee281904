package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"gitlab.com/debship/debship/ci"
	"gitlab.com/debship/debship/cluster/inventory"
)

// sshFileFlags are --ssh-key and --known-hosts: how a CI job, which has the
// key and known_hosts as files of its own (GitLab File variables), logs in
// with a committed inventory that names the operator's files.
func sshFileFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "ssh-key", Usage: "private key `FILE` for every node instead of the inventory's [ssh] key " +
			"(the generated deploy job passes its File variable $" + ci.SSHKeyVariable + ")"},
		&cli.StringFlag{Name: "known-hosts", Usage: "known_hosts `FILE` the nodes' host keys must be in instead of the inventory's " +
			"[ssh] known-hosts (the deploy job passes $" + ci.KnownHostsVariable + ")"},
	}
}

// connectOptions are the SSH settings of the command line. A --ssh-key or
// --known-hosts that was given but is empty, names no file, names an empty
// file or holds the key itself is refused before any node is contacted,
// naming the CI/CD variable to fix: in the deploy job the flags are the
// File variables, and a missing variable expands to "".
func connectOptions(c *cli.Context, inv *inventory.Inventory) (inventory.ConnectOptions, error) {
	o := inventory.ConnectOptions{AcceptNewHostKeys: c.Bool("accept-new-host-keys"), Timeout: c.Duration("connect-timeout")}
	for _, f := range []struct {
		file sshFile
		dst  *string
	}{{sshKeyFile, &o.Key}, {knownHostsFile, &o.KnownHosts}} {
		if !c.IsSet(f.file.flag) {
			continue
		}
		p := c.String(f.file.flag)
		if err := f.file.check(p, inv); err != nil {
			return o, err
		}
		*f.dst = p
	}
	return o, nil
}

// sshFile is one of the flags, its CI/CD variable and what it must hold.
type sshFile struct {
	flag, what, variable string
	content              func(inv *inventory.Inventory) string
	// inValue spots the file's content where its path belongs: a CI/CD
	// variable of type Variable instead of File. The value is never
	// printed (for the key, it is the secret).
	inValue *regexp.Regexp
}

var (
	sshKeyFile = sshFile{
		flag: "ssh-key", what: "SSH key", variable: ci.SSHKeyVariable,
		content: func(inv *inventory.Inventory) string {
			return fmt.Sprintf("a deploy key of the cluster's admin user %q (ssh-keygen -t ed25519, its .pub in that user's authorized_keys)", inv.SSH.User)
		},
		inValue: regexp.MustCompile(`\n|PRIVATE KEY`),
	}
	knownHostsFile = sshFile{
		flag: "known-hosts", what: "known_hosts", variable: ci.KnownHostsVariable,
		content: func(inv *inventory.Inventory) string {
			return "the output of " + keyscanCommand(inv) + " checked against the nodes' fingerprints"
		},
		inValue: regexp.MustCompile(`\n|\s(ssh-|ecdsa-|sk-)`),
	}
)

// check refuses a value that cannot be the file's path, and a file that is
// missing or holds nothing but white space, in one sentence each.
func (f sshFile) check(p string, inv *inventory.Inventory) error {
	if p == "" {
		// A protected variable reaches only protected refs: it may exist
		// and still be missing in the job.
		return fmt.Errorf("--%s is empty, so %s is not set (or is protected and the tag is not): "+
			"add a CI/CD variable of type File named %s holding %s", f.flag, f.variable, f.variable, f.content(inv))
	}
	if f.inValue.MatchString(p) {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("--%s holds the %s itself instead of the name of a file: make %s a CI/CD variable of type File, not Variable "+
				"(GitLab then passes the path of a file holding it)", f.flag, f.what, f.variable)
		}
	}
	b, err := os.ReadFile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("--%s %s: no such file; give the path of the %s file (in CI: $%s)", f.flag, p, f.what, f.variable)
	case err != nil:
		return fmt.Errorf("--%s: %w", f.flag, err)
	case len(bytes.TrimSpace(b)) == 0:
		return fmt.Errorf("--%s %s is an empty file: the CI/CD variable %s (type File) must hold %s", f.flag, p, f.variable, f.content(inv))
	}
	return nil
}

// keyscanCommand is ssh-keyscan of the inventory's nodes, ready to paste
// when they share a port.
func keyscanCommand(inv *inventory.Inventory) string {
	port := inv.SSHFor(inv.Nodes[0]).Port
	var addrs []string
	for _, n := range inv.Nodes {
		if inv.SSHFor(n).Port != port {
			return "ssh-keyscan -t ed25519 -p <port> <each node>"
		}
		addrs = append(addrs, n.Address)
	}
	p := ""
	if port != 22 {
		p = "-p " + strconv.Itoa(port) + " "
	}
	return "ssh-keyscan -t ed25519 " + p + strings.Join(addrs, " ")
}
