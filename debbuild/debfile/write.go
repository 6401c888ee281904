package debfile

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/blakesmith/ar"
	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"

	"gitlab.com/debship/debship/internal/atomicfile"
)

// TreePackage is the control data of a package made from a staged tree.
type TreePackage struct {
	Name        string
	Version     string // full Debian version, "[epoch:]upstream-revision"
	Arch        string
	Section     string
	Priority    string
	Maintainer  string
	Description string // synopsis, newline, extended description
	Homepage    string
	Depends     []string
	Recommends  []string
	Conffiles   []string          // absolute paths
	Scripts     map[string][]byte // preinst, postinst, prerm, postrm
	Compression string            // xz, zstd, gzip, none
	MTime       time.Time         // of every entry
	// Fields are further control fields ("X-Debship-Mode"); an empty
	// value writes none.
	Fields map[string]string
}

// WriteTree packs the tree under root into the .deb final (temp file and
// rename). Every entry is handed to nfpm one by one with a normalised mode,
// root ownership and the one mtime: nfpm keeps a tree's own mtimes, which
// would make builds differ. debship's own package is written by it too.
func WriteTree(root, final string, p TreePackage) error {
	contents, sizeKiB, err := treeContents(root, p)
	if err != nil {
		return fmt.Errorf("collect package files: %w", err)
	}
	info := nfpmInfo(p, contents)
	scriptDir, err := os.MkdirTemp("", "dsb-scripts")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scriptDir)
	if err := writeScripts(&info.Scripts, scriptDir, p.Scripts); err != nil {
		return err
	}

	var buf bytes.Buffer
	if err := deb.Default.Package(nfpm.WithDefaults(info), &buf); err != nil {
		return fmt.Errorf("write .deb: %w", err)
	}
	out, err := setInstalledSize(buf.Bytes(), sizeKiB, p.MTime)
	if err != nil {
		return fmt.Errorf("write .deb: %w", err)
	}
	return atomicfile.Write(final, out, 0o644)
}

// treeContents lists every entry under root for nfpm, with the
// Installed-Size in KiB computed as dpkg-gencontrol does.
func treeContents(root string, p TreePackage) (files.Contents, int64, error) {
	conf := map[string]bool{}
	for _, c := range p.Conffiles {
		conf[c] = true
	}
	var contents files.Contents
	var sizeKiB int64
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == root {
			return nil
		}
		dest := "/" + filepath.ToSlash(strings.TrimPrefix(path, root+"/"))
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		c, kib, err := treeEntry(path, dest, fi, conf[dest], p.MTime)
		if err != nil {
			return err
		}
		sizeKiB += kib
		contents = append(contents, c)
		return nil
	})
	return contents, sizeKiB, err
}

// treeEntry is one entry of the tree, root's and with a normalised mode,
// and what it adds to the Installed-Size.
func treeEntry(path, dest string, fi fs.FileInfo, conffile bool, mtime time.Time) (*files.Content, int64, error) {
	info := &files.ContentFileInfo{Owner: "root", Group: "root", MTime: mtime}
	c := &files.Content{Destination: dest, FileInfo: info}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return nil, 0, err
		}
		c.Type, c.Source = files.TypeSymlink, target
		info.Mode = fs.ModeSymlink | 0o777
		return c, (int64(len(target)) + 1023) / 1024, nil
	case fi.IsDir():
		c.Type = files.TypeDir
		info.Mode = fs.ModeDir | 0o755
		return c, 1, nil
	case fi.Mode().IsRegular():
		c.Type, c.Source = files.TypeFile, path
		if conffile {
			c.Type = files.TypeConfig
		}
		info.Mode = 0o644
		if fi.Mode()&0o111 != 0 {
			info.Mode = 0o755
		}
		info.Size = fi.Size()
		return c, (fi.Size() + 1023) / 1024, nil
	}
	return nil, 0, fmt.Errorf("%s: only files, directories and symlinks can be packaged", dest)
}

// nfpmInfo is the package's control data as nfpm takes it.
func nfpmInfo(p TreePackage, contents files.Contents) *nfpm.Info {
	upstream, revision := p.Version, ""
	if i := strings.LastIndexByte(p.Version, '-'); i >= 0 {
		upstream, revision = p.Version[:i], p.Version[i+1:]
	}
	return &nfpm.Info{
		Name:          p.Name,
		Arch:          p.Arch,
		Platform:      "linux",
		Version:       upstream,
		Release:       revision,
		VersionSchema: "none",
		Section:       p.Section,
		Priority:      p.Priority,
		Maintainer:    p.Maintainer,
		Description:   p.Description,
		Homepage:      p.Homepage,
		MTime:         p.MTime,
		Overridables: nfpm.Overridables{
			Depends:    p.Depends,
			Recommends: p.Recommends,
			Contents:   contents,
			Deb: nfpm.Deb{
				Compression: p.Compression,
				Fields:      p.Fields,
			},
		},
	}
}

// writeScripts writes the maintainer scripts into dir, where nfpm reads
// them from.
func writeScripts(dst *nfpm.Scripts, dir string, scripts map[string][]byte) error {
	for name, body := range scripts {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, body, 0o755); err != nil {
			return err
		}
		switch name {
		case "preinst":
			dst.PreInstall = path
		case "postinst":
			dst.PostInstall = path
		case "prerm":
			dst.PreRemove = path
		case "postrm":
			dst.PostRemove = path
		default:
			return fmt.Errorf("unknown maintainer script %q", name)
		}
	}
	return nil
}

var installedSizeRE = regexp.MustCompile(`(?m)^Installed-Size: \d+$`)

// setInstalledSize rewrites the Installed-Size field of a .deb. nfpm floors
// the sum of the file sizes; dpkg counts every file in whole KiB and every
// directory as one, and apt's disk-space check relies on that number.
func setInstalledSize(debBytes []byte, kib int64, mtime time.Time) ([]byte, error) {
	members, err := ReadMembers(bytes.NewReader(debBytes))
	if err != nil {
		return nil, err
	}
	var outBuf bytes.Buffer
	w := ar.NewWriter(&outBuf)
	if err := w.WriteGlobalHeader(); err != nil {
		return nil, err
	}
	for _, m := range members {
		body := m.Data
		if m.Name == "control.tar.gz" {
			if body, err = rewriteControl(body, func(control []byte) []byte {
				return installedSizeRE.ReplaceAll(control, []byte(fmt.Sprintf("Installed-Size: %d", kib)))
			}); err != nil {
				return nil, fmt.Errorf("control.tar.gz: %w", err)
			}
		}
		hdr := &ar.Header{Name: m.Name, ModTime: mtime, Mode: 0o644, Size: int64(len(body))}
		if err := w.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := w.Write(body); err != nil {
			return nil, err
		}
	}
	return outBuf.Bytes(), nil
}

func rewriteControl(tgz []byte, edit func([]byte) []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		if h.Name == "./control" || h.Name == "control" {
			body = edit(body)
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// GzipN compresses like `gzip -9n`: no name, no time, so that the result
// only depends on the input (lintian also wants maximum compression).
func GzipN(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
