package debfile

// The modes a package is built in ([tool.debship] mode).
const (
	// ModeSystemd: the postinst enables and (re)starts the units.
	ModeSystemd = "systemd"
	// ModeCluster: the units are installed only; pacemaker runs them.
	ModeCluster = "cluster"
)

// ModeField is the control field in which a build records its mode, so
// that deploy and cluster apply can refuse a package whose postinst would
// start the app behind pacemaker's back, and dpkg -s shows it on a node.
const ModeField = "X-Debship-Mode"
