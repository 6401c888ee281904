package host

import (
	"reflect"
	"testing"
)

func TestParseMigration(t *testing.T) {
	for _, c := range []struct {
		out  string
		want Migration
		how  string
	}{
		{"migration=none", Migration{}, "failed"},
		{"migration=ran\nrc=0\nstatus=0\n-- output", Migration{Ran: true, RC: "0", Status: "0"}, "failed"},
		{"migration=ran\nrc=1\nstatus=2\n-- output\nfirst\n\nlast", Migration{Ran: true, RC: "1", Status: "2", Output: []string{"first", "last"}}, "exited with status 2"},
	} {
		got := ParseMigration(c.out)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseMigration(%q) = %+v, want %+v", c.out, got, c.want)
		}
		if got.Failed() != (c.want.Ran && c.want.RC != "0") || got.How() != c.how {
			t.Errorf("ParseMigration(%q): failed %v, how %q", c.out, got.Failed(), got.How())
		}
	}
}
