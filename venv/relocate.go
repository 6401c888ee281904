package venv

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// maxShebang is the kernel's limit for "#!interpreter args\n" that pip's
// script maker (distlib) uses to choose its /bin/sh trampoline.
const maxShebang = 127

const (
	trampolineHead = "#!/bin/sh\n'''exec' "
	trampolineArgs = ` "$0" "$@"`
	trampolineTail = "' '''"
)

// rewriteShebang points a script's interpreter line from the staging venv to
// the final one. pip writes a plain "#!<stage>/bin/python" or, when that
// path is long or has spaces, a /bin/sh trampoline; a trampoline whose new
// path fits a plain shebang becomes a plain one, so that tools which read
// shebangs (lintian, debship inspect) see the real interpreter.
func rewriteShebang(content []byte, from, to string) ([]byte, bool) {
	if bytes.HasPrefix(content, []byte(trampolineHead)) {
		return rewriteTrampoline(content, from, to)
	}
	if !bytes.HasPrefix(content, []byte("#!")) {
		return content, false
	}
	line, rest, hasNL := bytes.Cut(content, []byte("\n"))
	interp := strings.TrimLeft(string(line[2:]), " \t")
	exe, post := interp, ""
	if i := strings.IndexAny(interp, " \t"); i >= 0 {
		exe, post = interp[:i], interp[i:]
	}
	newExe, ok := movePath(exe, from, to)
	if !ok {
		return content, false
	}
	if !hasNL {
		rest = nil
	}
	return append(shebangFor(newExe, post), rest...), true
}

func rewriteTrampoline(content []byte, from, to string) ([]byte, bool) {
	body := content[len(trampolineHead):]
	line, rest, ok := bytes.Cut(body, []byte("\n"))
	if !ok || !bytes.HasSuffix(line, []byte(trampolineArgs)) || !bytes.HasPrefix(rest, []byte(trampolineTail)) {
		return content, false
	}
	rest = rest[len(trampolineTail):]
	if len(rest) > 0 && rest[0] == '\n' {
		rest = rest[1:]
	}
	cmd := string(line[:len(line)-len(trampolineArgs)])
	var exe, post string
	if strings.HasPrefix(cmd, `"`) {
		end := strings.IndexByte(cmd[1:], '"')
		if end < 0 {
			return content, false
		}
		exe, post = cmd[1:1+end], cmd[2+end:]
	} else {
		exe, post = cmd, ""
		if i := strings.IndexAny(cmd, " \t"); i >= 0 {
			exe, post = cmd[:i], cmd[i:]
		}
	}
	newExe, moved := movePath(exe, from, to)
	if !moved {
		return content, false
	}
	return append(shebangFor(newExe, post), rest...), true
}

// shebangFor writes the interpreter line the way distlib would for that
// path: plain when it fits, else the trampoline (with a newline after it so
// the script body starts on its own line either way).
func shebangFor(exe, post string) []byte {
	plain := "#!" + exe + post + "\n"
	if len(plain) <= maxShebang && !strings.ContainsAny(exe, " \t") {
		return []byte(plain)
	}
	q := exe
	if strings.ContainsAny(exe, " \t") {
		q = `"` + exe + `"`
	}
	return []byte(trampolineHead + q + post + trampolineArgs + "\n" + trampolineTail + "\n")
}

// movePath maps a path inside from (a directory) to the same path inside to.
func movePath(p, from, to string) (string, bool) {
	if p == from {
		return to, true
	}
	if strings.HasPrefix(p, from+"/") {
		return to + p[len(from):], true
	}
	return p, false
}

// rewritePyvenvCfg relocates pyvenv.cfg and insists that home is the
// directory of the interpreter we asked for: a venv made by a pyenv shim or
// another venv's python carries that python's home, which the target host
// does not have.
func rewritePyvenvCfg(content []byte, from, to, wantHome string) ([]byte, error) {
	content = bytes.ReplaceAll(content, []byte(from), []byte(to))
	home := ""
	for line := range strings.Lines(string(content)) {
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == "home" {
			home = strings.TrimSpace(v)
		}
	}
	if home != wantHome {
		return nil, fmt.Errorf("pyvenv.cfg has home = %q, want %q: the venv was not made by that interpreter", home, wantHome)
	}
	return content, nil
}

// recordRow is one line of a dist-info RECORD: path, "sha256=…", size.
type recordRow []string

// fileDigest reports the RECORD hash and size of the file at a RECORD path,
// or ok=false when the file is gone (deleted bytecode, direct_url.json, …).
// An empty hash with ok=true leaves the entry as it is.
type fileDigest func(recordPath string) (hash string, size int64, ok bool, err error)

// rewriteRecord relocates RECORD paths and keeps every entry true: hashes
// and sizes of rewritten files are recomputed and entries for files we
// removed are dropped, so "pip uninstall" and RECORD checkers still work.
// Line endings follow the input (pip writes CRLF).
func rewriteRecord(content []byte, from, to string, digest fileDigest) ([]byte, error) {
	r := csv.NewReader(bytes.NewReader(content))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("parse RECORD: %w", err)
	}
	var out bytes.Buffer
	w := csv.NewWriter(&out)
	w.UseCRLF = bytes.Contains(content, []byte("\r\n"))
	for _, row := range rows {
		if len(row) == 0 || row[0] == "" {
			continue
		}
		row[0], _ = movePath(row[0], from, to)
		isRecord := filepath.Base(row[0]) == "RECORD" && strings.HasSuffix(filepath.Dir(row[0]), ".dist-info")
		if !isRecord {
			hash, size, ok, err := digest(row[0])
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			if len(row) >= 2 && row[1] != "" && hash != "" {
				for len(row) < 3 {
					row = append(row, "")
				}
				row[1], row[2] = hash, strconv.FormatInt(size, 10)
			}
		}
		if err := w.Write(row); err != nil {
			return nil, err
		}
	}
	w.Flush()
	return out.Bytes(), w.Error()
}

// recordHash is the RECORD form of a file's digest (PEP 376/627).
func recordHash(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", 0, err
	}
	return "sha256=" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)), n, nil
}

// isText guesses whether substituting a path of another length keeps a file
// valid: binaries (ELF, zip, pyc) carry offsets and lengths.
func isText(b []byte) bool { return !bytes.Contains(b, []byte{0}) }

// relocateTree rewrites every reference to the staging venv dir (from) into
// the final dir (to) inside root (the staging venv).
func relocateTree(root, from, to, wantHome string) error {
	var records []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return relocateSymlink(p, from, to)
		case !d.Type().IsRegular():
			return nil
		case d.Name() == "RECORD" && strings.HasSuffix(filepath.Dir(p), ".dist-info"):
			// Last, once every file it hashes has its final content.
			records = append(records, p)
			return nil
		}
		return relocateFile(p, root, from, to, wantHome)
	})
	if err != nil {
		return err
	}
	for _, rec := range records {
		if err := relocateRecord(rec, root, from, to); err != nil {
			return err
		}
	}
	return nil
}

func relocateSymlink(p, from, to string) error {
	target, err := os.Readlink(p)
	if err != nil {
		return err
	}
	if !strings.Contains(target, from) {
		return nil
	}
	if err := os.Remove(p); err != nil {
		return err
	}
	return os.Symlink(strings.ReplaceAll(target, from, to), p)
}

func relocateFile(p, root, from, to, wantHome string) error {
	rel, _ := filepath.Rel(root, p)
	// Large files (shared libraries of numpy, torch …) are searched as a
	// stream, not read whole, and are rarely text that needs rewriting.
	if rel != "pyvenv.cfg" {
		found, err := fileContains(p, [][]byte{[]byte(from)})
		if err != nil || !found {
			return err
		}
	}
	content, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	var out []byte
	switch {
	case rel == "pyvenv.cfg":
		out, err = rewritePyvenvCfg(content, from, to, wantHome)
		if err != nil {
			return err
		}
	case !bytes.Contains(content, []byte(from)):
		return nil
	case !isText(content):
		// Left for verifyNoLeak to name: rewriting a binary would corrupt it.
		return nil
	default:
		// Shebangs first (they may need reshaping), then every other mention:
		// activate*, *.pth, *.egg-link, generated config files.
		out, _ = rewriteShebang(content, from, to)
		out = bytes.ReplaceAll(out, []byte(from), []byte(to))
	}
	if bytes.Equal(out, content) {
		return nil
	}
	return writeKeepMode(p, out)
}

func writeKeepMode(p string, content []byte) error {
	st, err := os.Lstat(p)
	if err != nil {
		return err
	}
	tmp := p + ".debship-tmp"
	if err := os.WriteFile(tmp, content, st.Mode().Perm()); err != nil {
		return err
	}
	if err := os.Chmod(tmp, st.Mode().Perm()); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, p)
}

// relocateRecord rewrites one RECORD. Its paths are relative to the
// directory holding the .dist-info (site-packages) or absolute.
func relocateRecord(rec, root, from, to string) error {
	content, err := os.ReadFile(rec)
	if err != nil {
		return err
	}
	base := filepath.Dir(filepath.Dir(rec))
	digest := func(rp string) (string, int64, bool, error) {
		var p string
		if filepath.IsAbs(rp) {
			// Already moved to the final dir; read it back from the stage.
			moved, ok := movePath(rp, to, root)
			if !ok {
				return "", 0, true, nil // outside the venv: not ours to judge
			}
			p = moved
		} else {
			p = filepath.Join(base, filepath.FromSlash(rp))
		}
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			return "", 0, false, nil
		}
		if err != nil {
			return "", 0, false, err
		}
		defer f.Close()
		h, n, err := recordHash(bufio.NewReader(f))
		return h, n, true, err
	}
	out, err := rewriteRecord(content, from, to, digest)
	if err != nil {
		return fmt.Errorf("%s: %w", rec, err)
	}
	if bytes.Equal(out, content) {
		return nil
	}
	return writeKeepMode(rec, out)
}

// verifyNoLeak fails when any file or symlink in root still mentions one of
// the needles. It is the guarantee relocation is judged by: whatever the
// rewriting missed, the package must not carry the build host's paths.
func verifyNoLeak(root string, needles []string) error {
	var pats [][]byte
	for _, n := range needles {
		if n != "" {
			pats = append(pats, []byte(n))
		}
	}
	var leaks []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var found bool
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			for _, n := range pats {
				found = found || bytes.Contains([]byte(t), n)
			}
		case d.Type().IsRegular():
			if found, err = fileContains(p, pats); err != nil {
				return err
			}
		}
		if found {
			rel, _ := filepath.Rel(root, p)
			leaks = append(leaks, rel)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(leaks) > 0 {
		slices.Sort(leaks)
		more := ""
		if len(leaks) > 20 {
			more = fmt.Sprintf(" and %d more", len(leaks)-20)
			leaks = leaks[:20]
		}
		return fmt.Errorf("the build path %s is still mentioned after relocation in: %s%s", needles[0], strings.Join(leaks, ", "), more)
	}
	return nil
}

// fileContains reports whether the file holds any of pats, reading it in
// chunks that overlap by the longest pattern so no match straddles a seam.
func fileContains(path string, pats [][]byte) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	overlap := 0
	for _, p := range pats {
		overlap = max(overlap, len(p)-1)
	}
	buf := make([]byte, 0, 1<<20+overlap)
	for {
		n, err := io.ReadFull(f, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		for _, p := range pats {
			if bytes.Contains(buf, p) {
				return true, nil
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		keep := min(overlap, len(buf))
		copy(buf, buf[len(buf)-keep:])
		buf = buf[:keep]
	}
}
