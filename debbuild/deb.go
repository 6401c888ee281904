package debbuild

import (
	"fmt"
	"time"

	"gitlab.com/debship/debship/debbuild/debfile"
)

type debInfo struct {
	spec      *Spec
	version   string
	arch      string
	depends   []string
	conffiles []string
	scripts   map[string][]byte
	mtime     time.Time
}

// writeDeb packs the staging root of a project's package into final.
func writeDeb(root, final string, di debInfo) error {
	s := di.spec
	long := s.LongDescription
	if long == "" {
		long = fmt.Sprintf("%s %s with its Python dependencies in a private virtualenv\nin %s, built by debship.", s.ProjectName, s.Version, s.VenvDir)
	}
	return debfile.WriteTree(root, final, debfile.TreePackage{
		Name:        s.Package,
		Version:     di.version,
		Arch:        di.arch,
		Section:     s.Section,
		Priority:    s.Priority,
		Maintainer:  s.Maintainer,
		Description: s.Description + "\n" + long,
		Homepage:    s.Homepage,
		Depends:     di.depends,
		Conffiles:   di.conffiles,
		Scripts:     di.scripts,
		Compression: s.Compression,
		MTime:       di.mtime,
		Fields:      map[string]string{debfile.ModeField: s.Mode},
	})
}
