package ci

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"gitlab.com/debship/debship/templates"
)

// checksumPrefix starts the header line that records the SHA-256 of what
// debship wrote (the file without that line). A file whose content no longer
// matches it was edited by hand, and generate will not overwrite it silently.
const checksumPrefix = "# debship-checksum: sha256:"

var checksumRE = regexp.MustCompile(`(?m)^# debship-checksum: sha256:([0-9a-f]{64})\n`)

// header says where a generated file comes from and how to write it again.
type header struct {
	Source     string // what to change instead of the file
	Regenerate string // command that writes the file again
	Check      string // command that tells whether the file is current
}

// withHeader puts the "generated, do not edit" header and the checksum line
// on top of body.
func withHeader(body []byte, h header) ([]byte, error) {
	head, err := templates.Render("ci/header", h)
	if err != nil {
		return nil, err
	}
	unsummed := append(append([]byte{}, head...), body...)
	sum := sha256.Sum256(unsummed)
	var out bytes.Buffer
	out.Write(head)
	out.WriteString(checksumPrefix + hex.EncodeToString(sum[:]) + "\n")
	out.Write(body)
	return out.Bytes(), nil
}

// Pristine reports whether content is exactly what debship generated: it
// carries a checksum line and the rest of the file still matches it.
func Pristine(content []byte) bool {
	loc := checksumRE.FindSubmatchIndex(content)
	if loc == nil {
		return false
	}
	want := string(content[loc[2]:loc[3]])
	rest := append(append([]byte{}, content[:loc[0]]...), content[loc[1]:]...)
	sum := sha256.Sum256(rest)
	return hex.EncodeToString(sum[:]) == want
}

// Status is what Write did, or Check found, for one file.
type Status struct {
	Name   string
	Action string // "created", "updated", "unchanged", "stale", "missing"
	Diff   string // for stale and missing files: a unified diff, old → new
}

// HandEditedError is returned by Write for a file that was changed by hand
// (or that debship did not write) and would be replaced.
type HandEditedError struct {
	Path string
	Diff string // what generate would change
}

func (e *HandEditedError) Error() string {
	return fmt.Sprintf("refusing to overwrite %s: it was edited by hand after debship generated it (or debship did not write it); move the change into [tool.debship.ci] or a flag, or run again with --force to replace it", e.Path)
}

// Write writes files into dir. An existing file is replaced only if it is
// still exactly what debship generated last time, unless force is set; the
// check is done for every file before anything is written, so a refusal
// leaves the project untouched.
func Write(dir string, files []File, force bool) ([]Status, error) {
	var st []Status
	for _, f := range files {
		p, old, state, err := compare(dir, f)
		switch {
		case err != nil:
			return nil, err
		case state == "missing":
			st = append(st, Status{Name: f.Name, Action: "created"})
		case state == "unchanged":
			st = append(st, Status{Name: f.Name, Action: "unchanged"})
		case !force && !Pristine(old):
			return nil, &HandEditedError{Path: p, Diff: UnifiedDiff(f.Name, old, f.Content)}
		default:
			st = append(st, Status{Name: f.Name, Action: "updated"})
		}
	}
	for i, f := range files {
		if st[i].Action == "unchanged" {
			continue
		}
		if err := writeAtomic(filepath.Join(dir, f.Name), f.Content); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// compare reads f's file in dir: state is "missing", "unchanged" or
// "differs" (then old is what is there).
func compare(dir string, f File) (path string, old []byte, state string, err error) {
	path = filepath.Join(dir, f.Name)
	old, err = os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return path, nil, "missing", nil
	case err != nil:
		return path, nil, "", fmt.Errorf("read %s: %w", path, err)
	case bytes.Equal(old, f.Content):
		return path, old, "unchanged", nil
	}
	return path, old, "differs", nil
}

// Check compares files with what is in dir; it changes nothing.
func Check(dir string, files []File) ([]Status, error) {
	var st []Status
	for _, f := range files {
		_, old, state, err := compare(dir, f)
		switch {
		case err != nil:
			return nil, err
		case state == "missing":
			st = append(st, Status{Name: f.Name, Action: "missing", Diff: UnifiedDiff(f.Name, nil, f.Content)})
		case state == "unchanged":
			st = append(st, Status{Name: f.Name, Action: "unchanged"})
		default:
			st = append(st, Status{Name: f.Name, Action: "stale", Diff: UnifiedDiff(f.Name, old, f.Content)})
		}
	}
	return st, nil
}

// writeAtomic replaces path by rename, so an interrupted run never leaves a
// half-written pipeline behind.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
