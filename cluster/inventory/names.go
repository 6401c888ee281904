package inventory

// Names debship gives what it creates on the nodes. Setup creates them,
// status and deploy look them up; they live here, below all three, so that
// none of them has to import another for a name.

// Resource names in the CIB.
const (
	ResourceFloatingIP = "floating-ip"
	ResourceApp        = "app"
	ResourceAppClone   = "app-clone"
	ResourceFence      = "debship-fence"
)

// PackageCache is where .debs go on the nodes; deploy keeps the previous
// version there for rollback.
const PackageCache = "/var/cache/debship"
