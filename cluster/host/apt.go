package host

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gitlab.com/debship/debship/cluster/transport"
)

// aptEnv keeps apt and dpkg from asking anything: no debconf questions,
// and needrestart restarts services instead of prompting.
const aptEnv = "DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a "

// aptInstall installs from the node's apt sources; the conffile options
// keep local edits.
const aptInstall = aptEnv + "apt-get -q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install --no-install-recommends "

// aptInstallDeb installs the app's .deb so that apt resolves new Depends
// (dpkg -i would not); the lock timeout waits for an unattended upgrade
// instead of failing, the conffile options keep local edits.
// DEBSHIP_APP_INSTALL skips the rkhunter refresh of debship's apt hook
// (templates/files/cluster/rkhunter-apt.conf): seconds of CPU per deploy.
const aptInstallDeb = aptEnv + "DEBSHIP_APP_INSTALL=1 apt-get install -y -q --allow-downgrades --no-install-recommends -o DPkg::Lock::Timeout=300 " +
	"-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "

// MissingPackages lists the packages of pkgs that are not installed.
func MissingPackages(ctx context.Context, t transport.Transport, pkgs []string) ([]string, error) {
	out, err := transport.Output(ctx, t, "dpkg-query -W -f='${db:Status-Abbrev} ${Package}\\n' "+quoteAll(pkgs)+" 2>/dev/null || true")
	if err != nil {
		return nil, err
	}
	installed := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "ii" {
			installed[strings.SplitN(f[1], ":", 2)[0]] = true
		}
	}
	var missing []string
	for _, p := range pkgs {
		if !installed[p] {
			missing = append(missing, p)
		}
	}
	return missing, nil
}

// InstallPackages installs packages from the node's apt sources. apt's
// lists are refreshed only when the install does not find a package: an
// update on every apply would be slow and needs the mirror.
func InstallPackages(ctx context.Context, t transport.Transport, pkgs []string) error {
	cmd := aptInstall + quoteAll(pkgs)
	if _, err := transport.Output(ctx, t, cmd); err != nil {
		if _, err2 := transport.Output(ctx, t, aptEnv+"apt-get -q update && "+cmd); err2 != nil {
			return err2
		}
	}
	return nil
}

// InstalledVersion is the installed version of pkg on the node, "" when it
// is not installed.
func InstalledVersion(ctx context.Context, t transport.Transport, pkg string) (string, error) {
	return transport.Output(ctx, t, "dpkg-query -W -f='${db:Status-Abbrev} ${Version}\\n' "+q(pkg)+" 2>/dev/null | awk '$1==\"ii\"{print $2}' || true")
}

// DebOptions change how InstallDeb installs.
type DebOptions struct {
	// Reinstall installs the same version again.
	Reinstall bool
	// Repair first finishes what an interrupted dpkg left half-configured.
	Repair bool
}

// InstallDeb installs a .deb that is on the node. A failure is shortened
// to apt's exit code and last lines.
func InstallDeb(ctx context.Context, t transport.Transport, path string, o DebOptions) error {
	cmd := aptInstallDeb
	if o.Repair {
		cmd = aptEnv + "dpkg --configure -a --force-confdef --force-confold >/dev/null 2>&1; " + cmd
	}
	if o.Reinstall {
		cmd += "--reinstall "
	}
	_, err := transport.Output(ctx, t, cmd+q(path)+" 2>&1")
	return aptError(err)
}

// SimulateInstall asks apt what installing the .deb at path would do,
// without installing it (apt-get -s) and without taking apt's lock, so it
// runs while another apt works. It returns apt's output.
func SimulateInstall(ctx context.Context, t transport.Transport, path string) (string, error) {
	return transport.Output(ctx, t, aptEnv+"apt-get install -s -q --allow-downgrades -o Debug::NoLocking=1 "+q(path)+" 2>&1")
}

// DebField reads a control field of the .deb at path on the node.
func DebField(ctx context.Context, t transport.Transport, path, field string) (string, error) {
	return transport.Output(ctx, t, "dpkg-deb -f "+q(path)+" "+q(field))
}

// aptError shortens a failed apt-get to its exit code and the last lines
// of its output (the long command line says nothing new).
func aptError(err error) error {
	var ce *transport.CommandError
	if err == nil || !errors.As(err, &ce) || ce.ExitCode < 0 {
		return err
	}
	out := strings.TrimSpace(ce.Stdout + "\n" + ce.Stderr)
	lines := strings.Split(out, "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return fmt.Errorf("apt-get install failed (exit %d): %s", ce.ExitCode, strings.Join(lines, " | "))
}
