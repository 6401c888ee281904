package debbuild

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// migrateArgRE is what an argument of the migration command may hold: it
// reaches ExecStart= of a unit, where systemd would expand '$', '%',
// quotes and backslashes, so only plain words pass.
var migrateArgRE = regexp.MustCompile(`^[A-Za-z0-9_./:=+,@-]+$`)

// setMigrate validates [tool.debship] migrate and resolves its first word
// to the venv's console script.
func (s *Spec) setMigrate(cmd, where string) error {
	words := strings.Fields(cmd)
	if len(words) == 0 {
		return fmt.Errorf("%s: migrate is empty; write the command, e.g. migrate = \"manage migrate --noinput\", or remove the key", where)
	}
	if !contains(s.ProjectScripts, words[0]) {
		hint := "none are declared: add it under [project.scripts]"
		if len(s.ProjectScripts) > 0 {
			hint = "the project's console scripts are: " + strings.Join(s.ProjectScripts, ", ")
		}
		return fmt.Errorf("%s: migrate %q does not start with a console script of the project; %s", where, cmd, hint)
	}
	for _, a := range words[1:] {
		if !migrateArgRE.MatchString(a) {
			return fmt.Errorf("%s: migrate argument %q is not a plain word; use letters, digits and _ . / : = + , @ - only (the command runs without a shell)", where, a)
		}
	}
	svc, ok := s.migrateBase()
	switch {
	case !ok:
		return fmt.Errorf("%s: migrate needs a [[tool.debship.service]]: the migration runs as that service's user, with its environment", where)
	case svc.Unit != "":
		return fmt.Errorf("%s: migrate needs the service %s to be generated (exec = …), not a unit file of the project: the migration's unit copies its user and environment", where, svc.Name)
	}
	for _, o := range s.Services {
		if o.Name+".service" == MigrateUnit(s.Package) {
			return fmt.Errorf("%s: migrate runs as the unit %s, and a service already has that name; rename the service", where, MigrateUnit(s.Package))
		}
	}
	s.Migrate = append([]string{path.Join(s.VenvDir, "bin", words[0])}, words[1:]...)
	return nil
}

// migrateBase is the service whose user, environment and working
// directory the migration shares: the one named like the package (the
// unit the cluster runs by default), else the first.
func (s *Spec) migrateBase() (Service, bool) {
	for _, svc := range s.Services {
		if svc.Name == s.Package {
			return svc, true
		}
	}
	if len(s.Services) > 0 {
		return s.Services[0], true
	}
	return Service{}, false
}

// migrateExtra are the base service's extra lines that also fit a oneshot
// unit: how it restarts or what it execs is the long-running service's.
func migrateExtra(extra []string) []string {
	var out []string
	for _, l := range extra {
		k, _, _ := strings.Cut(strings.TrimSpace(l), "=")
		switch strings.TrimSpace(k) {
		case "Type", "Restart", "RestartSec", "ExecStart", "ExecStartPre", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost", "RemainAfterExit", "WatchdogSec", "TimeoutStartSec":
			continue
		}
		out = append(out, l)
	}
	return out
}
