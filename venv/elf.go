package venv

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// elfObject is one ELF file found in the venv.
type elfObject struct {
	Rel     string // path relative to the venv root
	Needed  []string
	Soname  string
	Machine elf.Machine
	Class   elf.Class
}

// scanELF finds the ELF files in root (symlinks are not followed, so the
// venv's bin/python, a link to the system interpreter, is not counted) and
// the names of every file that could satisfy a DT_NEEDED entry from inside
// the venv.
func scanELF(root string) (objs []elfObject, local map[string]bool, warnings []string, err error) {
	local = map[string]bool{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		// Wheels repaired by auditwheel carry their libraries in <pkg>.libs/
		// (or .dylibs, or bundled with a symlink): anything named like a
		// library inside the venv satisfies a NEEDED of the same name.
		if strings.Contains(d.Name(), ".so") {
			local[d.Name()] = true
		}
		if !d.Type().IsRegular() {
			return nil
		}
		isELF, err := hasELFMagic(p)
		if err != nil || !isELF {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		f, err := elf.Open(p)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("cannot read ELF file %s: %v", rel, err))
			objs = append(objs, elfObject{Rel: rel})
			return nil
		}
		defer f.Close()
		o := elfObject{Rel: rel, Machine: f.Machine, Class: f.Class}
		o.Needed, _ = f.ImportedLibraries()
		if sonames, _ := f.DynString(elf.DT_SONAME); len(sonames) > 0 {
			o.Soname = sonames[0]
			local[o.Soname] = true
		}
		objs = append(objs, o)
		return nil
	})
	return objs, local, warnings, err
}

func hasELFMagic(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		return false, nil // shorter than a header: not ELF
	}
	return string(magic[:]) == elf.ELFMAG, nil
}

// externalNeeds lists, per soname, the objects that need it from outside
// the venv; sonames present in the venv are satisfied by the venv itself.
func externalNeeds(objs []elfObject, local map[string]bool) (sonames []string, neededBy map[string]elfObject) {
	neededBy = map[string]elfObject{}
	for _, o := range objs {
		for _, n := range o.Needed {
			if local[n] {
				continue
			}
			if _, seen := neededBy[n]; !seen {
				neededBy[n] = o
				sonames = append(sonames, n)
			}
		}
	}
	slices.Sort(sonames)
	return sonames, neededBy
}

// ldEntry is one line of "ldconfig -p".
type ldEntry struct {
	Soname, Flags, Path string
}

func parseLdconfig(r io.Reader) map[string][]ldEntry {
	out := map[string][]ldEntry{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		left, path, ok := strings.Cut(line, " => ")
		if !ok {
			continue
		}
		name, flags, ok := strings.Cut(left, " (")
		if !ok {
			continue
		}
		e := ldEntry{Soname: strings.TrimSpace(name), Flags: strings.TrimSuffix(flags, ")"), Path: strings.TrimSpace(path)}
		out[e.Soname] = append(out[e.Soname], e)
	}
	return out
}

// ldconfigTag is the word ldconfig -p puts in the flags of a library built
// for that machine, as in "(libc6,x86-64)".
func ldconfigTag(m elf.Machine, c elf.Class) string {
	switch {
	case m == elf.EM_X86_64 && c == elf.ELFCLASS64:
		return "x86-64"
	case m == elf.EM_AARCH64:
		return "AArch64"
	case c == elf.ELFCLASS64:
		return "64bit"
	}
	return ""
}

// multiarch is Debian's triplet for a machine (the lib dir when ldconfig's
// cache does not know a library).
func multiarch(m elf.Machine, c elf.Class) string {
	switch m {
	case elf.EM_X86_64:
		return "x86_64-linux-gnu"
	case elf.EM_AARCH64:
		return "aarch64-linux-gnu"
	case elf.EM_386:
		return "i386-linux-gnu"
	case elf.EM_ARM:
		return "arm-linux-gnueabihf"
	case elf.EM_PPC64:
		return "powerpc64le-linux-gnu"
	case elf.EM_S390:
		return "s390x-linux-gnu"
	case elf.EM_RISCV:
		return "riscv64-linux-gnu"
	case elf.EM_MIPS:
		if c == elf.ELFCLASS64 {
			return "mips64el-linux-gnuabi64"
		}
		return "mipsel-linux-gnu"
	}
	return ""
}

// shlibResolver maps sonames to Debian packages like dpkg-shlibdeps does:
// find the library the dynamic linker would load, then ask dpkg which
// package owns that file.
type shlibResolver struct {
	ldcache  map[string][]ldEntry // nil until loaded
	cache    map[string]string    // soname → package ("" when unmappable)
	errs     map[string]string    // soname → why it is unmappable
	ldconfig func(ctx context.Context) (io.Reader, error)
	owner    func(ctx context.Context, path string) (string, error) // dpkg -S
	exists   func(path string) bool
	realPath func(path string) (string, error)
}

// newShlibResolver resolves against the packages of the sandbox's system:
// the host's, or those of the release the venv is built for.
func newShlibResolver(sb sandbox) *shlibResolver {
	return &shlibResolver{
		cache:    map[string]string{},
		errs:     map[string]string{},
		ldconfig: func(ctx context.Context) (io.Reader, error) { return runLdconfig(ctx, sb) },
		owner:    func(ctx context.Context, p string) (string, error) { return dpkgOwner(ctx, sb, p) },
		exists: func(p string) bool {
			_, err := os.Stat(sb.host(p))
			return err == nil
		},
		realPath: func(p string) (string, error) {
			if sb.root == "" {
				return filepath.EvalSymlinks(p)
			}
			return realPathIn(sb.root, p)
		},
	}
}

// realPathIn resolves the symlinks of p as the root's own system would
// (an absolute link target is below root, not on the host).
func realPathIn(root, p string) (string, error) {
	parts := strings.Split(strings.TrimPrefix(filepath.Clean(p), "/"), "/")
	cur := "/"
	for hops := 0; len(parts) > 0; {
		next := filepath.Join(cur, parts[0])
		parts = parts[1:]
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		t, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(cur, t)
		}
		parts = append(strings.Split(strings.TrimPrefix(filepath.Clean(t), "/"), "/"), parts...)
		cur = "/"
	}
	return cur, nil
}

func runLdconfig(ctx context.Context, sb sandbox) (io.Reader, error) {
	bin, err := sb.lookPath("ldconfig")
	if err != nil {
		for _, p := range []string{"/sbin/ldconfig", "/usr/sbin/ldconfig"} {
			if _, err2 := os.Stat(sb.host(p)); err2 == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return nil, err
	}
	out, err := sb.command(ctx, bin, "-p").Output()
	return bytes.NewReader(out), err
}

// dpkgOwner returns the package that ships path, without the ":arch".
func dpkgOwner(ctx context.Context, sb sandbox, path string) (string, error) {
	cmd := sb.command(ctx, "dpkg-query", "-S", path)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.Output()
	if err != nil {
		return "", err
	}
	return parseDpkgS(out, path), nil
}

// parseDpkgS reads "pkg[:arch][, pkg2…]: /path" lines and skips diversions.
func parseDpkgS(out []byte, path string) string {
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "diversion by") || strings.HasPrefix(line, "local diversion") {
			continue
		}
		pkgs, p, ok := strings.Cut(line, ": ")
		if !ok || strings.TrimSpace(p) != path {
			continue
		}
		first, _, _ := strings.Cut(pkgs, ",")
		name, _, _ := strings.Cut(strings.TrimSpace(first), ":")
		if name != "" {
			return name
		}
	}
	return ""
}

// candidates are the paths under which dpkg may know a library: the path
// itself, its real path, and their twins across the /usr merge (dpkg's
// database keeps the path the package shipped, ldconfig reports either).
func candidates(path string, realPath func(string) (string, error)) []string {
	var out []string
	add := func(p string) {
		if p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	paths := []string{path}
	if real, err := realPath(path); err == nil {
		paths = append(paths, real)
	}
	for _, p := range paths {
		add(p)
		if rest, ok := strings.CutPrefix(p, "/usr/"); ok {
			add("/" + rest)
		} else {
			add("/usr" + p)
		}
	}
	return out
}

func (r *shlibResolver) locate(ctx context.Context, soname string, m elf.Machine, c elf.Class) string {
	if r.ldcache == nil {
		r.ldcache = map[string][]ldEntry{}
		if out, err := r.ldconfig(ctx); err == nil {
			r.ldcache = parseLdconfig(out)
		}
	}
	tag := ldconfigTag(m, c)
	for _, e := range r.ldcache[soname] {
		if tag == "" || strings.Contains(e.Flags, tag) {
			return e.Path
		}
	}
	var dirs []string
	if t := multiarch(m, c); t != "" {
		dirs = append(dirs, "/lib/"+t, "/usr/lib/"+t)
	}
	dirs = append(dirs, "/lib", "/usr/lib")
	if c == elf.ELFCLASS64 {
		dirs = append(dirs, "/lib64", "/usr/lib64")
	}
	for _, d := range dirs {
		if p := filepath.Join(d, soname); r.exists(p) {
			return p
		}
	}
	return ""
}

// resolve returns the package for a soname, or "" and the reason.
func (r *shlibResolver) resolve(ctx context.Context, soname string, m elf.Machine, c elf.Class) (string, string) {
	if pkg, ok := r.cache[soname]; ok {
		return pkg, r.errs[soname]
	}
	pkg, why := "", ""
	if path := r.locate(ctx, soname, m, c); path == "" {
		why = "not found on the build host (ldconfig -p, multiarch lib dirs)"
	} else {
		realPath := r.realPath
		if realPath == nil {
			realPath = filepath.EvalSymlinks
		}
		for _, p := range candidates(path, realPath) {
			if pkg, _ = r.owner(ctx, p); pkg != "" {
				break
			}
		}
		if pkg == "" {
			why = fmt.Sprintf("%s belongs to no Debian package (dpkg -S)", path)
		}
	}
	r.cache[soname], r.errs[soname] = pkg, why
	return pkg, why
}

// sharedLibDepends maps the external NEEDED libraries of the venv's ELF
// files to Debian packages; unmappable libraries become warnings.
func sharedLibDepends(ctx context.Context, r *shlibResolver, objs []elfObject, local map[string]bool) (pkgs, warnings []string) {
	sonames, by := externalNeeds(objs, local)
	for _, so := range sonames {
		o := by[so]
		pkg, why := r.resolve(ctx, so, o.Machine, o.Class)
		if pkg == "" {
			warnings = append(warnings, fmt.Sprintf("cannot map %s (needed by %s) to a Debian package: %s; add it to depends by hand", so, o.Rel, why))
			continue
		}
		pkgs = append(pkgs, pkg)
	}
	slices.Sort(pkgs)
	return slices.Compact(pkgs), warnings
}
