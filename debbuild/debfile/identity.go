// Package debfile is a .deb as a file: writing one from a staged tree
// (WriteTree, reproducibly), and what a .deb is, in one place: its identity
// (package, version, architecture, SHA-256) read back from the file, the
// file name Debian gives it, the Debian name of a Go architecture, and the
// control field that records its mode. The build writes by these rules, and
// the release, the registry download, the deploy, the webhook and debship's
// own package read and name .debs by them, so they cannot drift apart (as
// nfpm and goreleaser keep the file name and arch map next to the writer).
// Reading a whole .deb back is package inspect's.
package debfile

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/blakesmith/ar"

	"gitlab.com/debship/debship/debbuild/debversion"
)

// Identity is what a .deb is: its control fields Package, Version (the full
// Debian version, "[epoch:]upstream-revision") and Architecture, the
// SHA-256 of the file's bytes (hex), and the Debian release it was built
// for.
type Identity struct {
	Package string
	Version string
	Arch    string
	SHA256  string
	// Target is the release the package was built for ("debian-13"),
	// read from the version's suffix (VersionTarget); "" when the version
	// names no release debship knows.
	Target string
}

// FileName is the Debian file name of the package (see FileName).
func (id Identity) FileName() string { return FileName(id.Package, id.Version, id.Arch) }

// Upstream is the version without the Debian revision ("1:1.4-1" → "1:1.4").
func (id Identity) Upstream() string {
	if i := strings.LastIndexByte(id.Version, '-'); i > 0 {
		return id.Version[:i]
	}
	return id.Version
}

// FileName is Debian's name for a .deb, as dpkg-deb --build and dpkg-name
// write it: <package>_<version>_<arch>.deb, the version without its epoch
// (1:2.0-1 → pkg_2.0-1_amd64.deb).
func FileName(pkg, version, arch string) string {
	return pkg + "_" + stripEpoch(version) + "_" + arch + ".deb"
}

func stripEpoch(v string) string {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		return v[i+1:]
	}
	return v
}

// DebArch is the Debian architecture of a Go architecture (GOARCH, and for
// arm GOARM: "5", "6", "7", optionally with ",softfloat" or ",hardfloat", or
// "" for Go's default); false when Debian has no such architecture.
//
// The names are dpkg's (dpkg-architecture -L); Go and Debian differ for
// 386 (i386), ppc64le (ppc64el), mipsle and mips64le (mipsel, mips64el) and
// arm. Go's binaries are static, so for arm the float ABI of the system does
// not matter, only the instructions the binary needs: GOARM=5 runs on every
// ARM Debian supports and is armel; GOARM=6 and 7 (the default) need VFP
// and are armhf, the label under which every system that can install them
// can run them (Debian's ARMv7 armhf and Raspberry Pi OS's ARMv6 armhf;
// nfpm maps them the same way). Names dpkg knows only from ports (ppc64,
// loong64, sparc64) are kept; mips and mips64 (big-endian) and anything not
// Linux-capable have no current Debian architecture.
func DebArch(goarch, goarm string) (string, bool) {
	switch goarch {
	case "amd64", "arm64", "s390x", "riscv64", "ppc64", "loong64", "sparc64":
		return goarch, true
	case "386":
		return "i386", true
	case "ppc64le":
		return "ppc64el", true
	case "mips64le":
		return "mips64el", true
	case "mipsle":
		return "mipsel", true
	case "arm":
		if v, _, _ := strings.Cut(goarm, ","); v == "5" {
			return "armel", true
		}
		return "armhf", true
	}
	return "", false
}

// GoDebArch is the Debian architecture of the running binary (its GOARCH
// and GOARM), or its GOARCH when Debian has no name for it.
func GoDebArch() string {
	goarm := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOARM" {
				goarm = s.Value
			}
		}
	}
	if a, ok := DebArch(runtime.GOARCH, goarm); ok {
		return a
	}
	return runtime.GOARCH
}

// HostArch is the Debian architecture of this host: dpkg's when there is a
// dpkg, else the running binary's (GoDebArch).
func HostArch() string {
	if out, err := exec.Command("dpkg", "--print-architecture").Output(); err == nil {
		if a := strings.TrimSpace(string(out)); a != "" {
			return a
		}
	}
	return GoDebArch()
}

// OpenDeb reads the identity of the .deb at file: the control fields
// Package, Version and Architecture (each must be set) and the SHA-256 of
// the whole file, in one pass over it. Only the control member is
// decompressed; ReadPackage reads everything, for inspection.
func OpenDeb(file string) (Identity, error) {
	f, err := os.Open(file)
	if err != nil {
		return Identity{}, err
	}
	defer f.Close()
	h := sha256.New()
	tee := io.TeeReader(bufio.NewReader(f), h)
	id, err := readIdentity(tee)
	if err != nil {
		return Identity{}, fmt.Errorf("%s: %w", file, err)
	}
	// Whatever follows the members counts for the checksum too.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return Identity{}, err
	}
	id.SHA256 = hex.EncodeToString(h.Sum(nil))
	return id, nil
}

func readIdentity(r io.Reader) (Identity, error) {
	rd := ar.NewReader(r)
	var id Identity
	var format string
	var members []string
	haveControl, haveData := false, false
	for {
		h, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return id, fmt.Errorf("not a .deb (ar archive): %w", err)
		}
		name := strings.TrimSuffix(strings.TrimSpace(h.Name), "/")
		members = append(members, name)
		switch {
		case name == "debian-binary":
			b, err := io.ReadAll(io.LimitReader(rd, 64))
			if err != nil {
				return id, err
			}
			format = strings.TrimSpace(string(b))
		case strings.HasPrefix(name, "control.tar"):
			b, err := io.ReadAll(rd)
			if err != nil {
				return id, err
			}
			control, err := controlFile(name, b)
			if err != nil {
				return id, fmt.Errorf("%s: %w", name, err)
			}
			for _, f := range ParseControl(control) {
				switch strings.ToLower(f.Name) {
				case "package":
					id.Package = f.Value
				case "version":
					id.Version = f.Value
				case "architecture":
					id.Arch = f.Value
				}
			}
			haveControl = true
		case strings.HasPrefix(name, "data.tar"):
			haveData = true
		}
		// The ar reader skips what is left of a member at the next Next.
	}
	if len(members) == 0 {
		return id, errors.New("not a .deb: empty ar archive")
	}
	if format != "2.0" || !haveControl || !haveData {
		return id, fmt.Errorf("not a Debian binary package (format %q, members %s)", format, strings.Join(members, ", "))
	}
	if id.Package == "" || id.Version == "" || id.Arch == "" {
		return id, errors.New("no Package, Version or Architecture control field")
	}
	if r, ok := debversion.VersionTarget(id.Version); ok {
		id.Target = r.Target
	}
	return id, nil
}

// controlFile is the ./control file of a control.tar member.
func controlFile(member string, data []byte) (string, error) {
	r, err := decompress(member, data)
	if err != nil {
		return "", err
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return "", errors.New("no control file")
		}
		if err != nil {
			return "", err
		}
		if h.Typeflag == tar.TypeReg && path.Clean(strings.TrimPrefix(h.Name, "./")) == "control" {
			b, err := io.ReadAll(tr)
			return string(b), err
		}
	}
}
