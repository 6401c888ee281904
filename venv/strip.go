package venv

import (
	"context"
	"debug/elf"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
)

// stripDebug removes debug information from the ELF files that pip built
// on this host, as dh_strip does: it makes the package smaller, and the
// debug info names the build directory. Objects that came from manylinux
// wheels are left alone: auditwheel patched them with patchelf, and strip
// can corrupt such files (spotify/dh-virtualenv#150).
func stripDebug(ctx context.Context, root string) (warnings []string, err error) {
	var targets []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if strings.HasSuffix(d.Name(), ".libs") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if ok, _ := hasELFMagic(p); !ok {
			return nil
		}
		if hasDebug, patched := debugState(p); hasDebug && !patched {
			targets = append(targets, p)
		}
		return nil
	})
	if err != nil || len(targets) == 0 {
		return nil, err
	}
	strip, lerr := exec.LookPath("strip")
	if lerr != nil {
		return []string{fmt.Sprintf("%d ELF files keep their debug information: strip not found (apt-get install binutils)", len(targets))}, nil
	}
	for _, p := range targets {
		cmd := exec.CommandContext(ctx, strip, "--remove-section=.comment", "--remove-section=.note", "--strip-unneeded", p)
		if out, err := cmd.CombinedOutput(); err != nil {
			rel, _ := filepath.Rel(root, p)
			warnings = append(warnings, fmt.Sprintf("strip %s: %v: %s", rel, err, strings.TrimSpace(string(out))))
		}
	}
	return warnings, nil
}

// debugState tells whether an ELF file has debug sections, and whether it
// looks like auditwheel's work (an $ORIGIN run path to bundled libraries).
func debugState(p string) (hasDebug, patched bool) {
	f, err := elf.Open(p)
	if err != nil {
		return false, false
	}
	defer f.Close()
	for _, s := range f.Sections {
		if strings.HasPrefix(s.Name, ".debug_") || s.Name == ".symtab" {
			hasDebug = true
		}
	}
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		if v, _ := f.DynString(tag); len(v) > 0 && strings.Contains(strings.Join(v, ":"), "$ORIGIN") {
			patched = true
		}
	}
	return hasDebug, patched
}
