package ci

import "runtime/debug"

// BinaryVersion is the version of the running debship: the one set at link
// time, else the module version Go recorded (`go install ...@v1.2.3` sets
// it), else "dev". The pipeline pins it when [tool.debship.ci] names none,
// so the jobs run the debship that wrote the pipeline.
func BinaryVersion(linked string) string {
	if linked != "" && linked != "dev" {
		return linked
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
