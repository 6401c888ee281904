package debfile

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/blakesmith/ar"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Field is one control field, in file order.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Member is one member of the ar archive a .deb is.
type Member struct {
	Name string // "debian-binary", "control.tar.gz", "data.tar.xz" …
	Data []byte
}

// ReadMembers reads the members of a .deb.
func ReadMembers(r io.Reader) ([]Member, error) {
	rd := ar.NewReader(r)
	var out []Member
	for {
		h, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not a .deb (ar archive): %w", err)
		}
		b, err := io.ReadAll(rd)
		if err != nil {
			return nil, err
		}
		out = append(out, Member{Name: strings.TrimSuffix(strings.TrimSpace(h.Name), "/"), Data: b})
	}
	if len(out) == 0 {
		return nil, errors.New("not a .deb: empty ar archive")
	}
	return out, nil
}

func decompress(name string, data []byte) (io.Reader, error) {
	switch path.Ext(name) {
	case ".gz":
		return gzip.NewReader(bytes.NewReader(data))
	case ".xz":
		return xz.NewReader(bytes.NewReader(data))
	case ".zst":
		d, err := zstd.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case ".tar":
		return bytes.NewReader(data), nil
	}
	return nil, fmt.Errorf("unknown compression %q", path.Ext(name))
}

// EachTarEntry calls f for every entry of a compressed tar member of the
// .deb (control.tar.* or data.tar.*), with the reader at its content.
func EachTarEntry(m Member, f func(h *tar.Header, tr *tar.Reader) error) error {
	r, err := decompress(m.Name, m.Data)
	if err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := f(h, tr); err != nil {
			return err
		}
	}
}

// ParseControl reads the fields of a control file, a continuation line
// joined to its field's value.
func ParseControl(s string) []Field {
	var out []Field
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
			if len(out) > 0 {
				out[len(out)-1].Value += "\n" + line
			}
			continue
		}
		k, v, _ := strings.Cut(line, ":")
		out = append(out, Field{Name: k, Value: strings.TrimSpace(v)})
	}
	return out
}
