package inspect

import (
	"strings"

	"gitlab.com/debship/debship/debbuild/debfile"
)

// readMode is the mode the package was built in: its debfile.ModeField, or
// for a .deb without one (built by an older debship, or not by debship)
// what its postinst does: ModeSystemd when it enables or starts a unit, ""
// when it starts nothing (which a cluster can run as well).
func (p *Package) readMode() string {
	if m := p.Field(debfile.ModeField); m != "" {
		return m
	}
	if startsUnits(p.Scripts["postinst"]) {
		return debfile.ModeSystemd
	}
	return ""
}

// startsUnits reports whether a maintainer script enables or starts a
// systemd unit: deb-systemd-invoke with any action but stop (debship's
// systemd mode and dh_installsystemd run it with a variable action),
// deb-systemd-helper enable, or systemctl enable/start/restart.
func startsUnits(script string) bool {
	for _, line := range strings.Split(script, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		w := strings.Fields(line)
		for i := 0; i+1 < len(w); i++ {
			switch w[i] {
			case "deb-systemd-invoke":
				if w[i+1] != "stop" {
					return true
				}
			case "deb-systemd-helper":
				if w[i+1] == "enable" {
					return true
				}
			case "systemctl":
				for _, a := range w[i+1:] {
					switch a {
					case "enable", "start", "restart", "try-restart", "reload-or-restart":
						return true
					}
				}
			}
		}
	}
	return false
}

// ModeSentence says what the mode means for a cluster, for inspect.
func ModeSentence(mode string) string {
	switch mode {
	case debfile.ModeCluster:
		return "cluster (the units are installed only; pacemaker runs them)"
	case debfile.ModeSystemd:
		return "systemd (the postinst enables and starts the units; a cluster refuses it)"
	case "":
		return "none recorded (the postinst starts no unit)"
	}
	return mode
}
