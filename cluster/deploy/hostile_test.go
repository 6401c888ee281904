package deploy

import (
	"context"
	"strings"
	"testing"

	"gitlab.com/debship/debship/internal/shtest"
)

// TestHostileHealthPathStaysOneWord: [app] health-path is the one
// inventory value only the deploy's commands use (the health check's curl
// on the nodes), and the URL grammar lets quotes, ';', '$' and parentheses
// through. A rolling deploy with each hostile value the inventory accepts
// must hold it as one literal word in every command (the setup package's
// TestHostileInventoryValues covers the other fields).
func TestHostileHealthPathStaysOneWord(t *testing.T) {
	v1 := makeDeb(t, "hello-web", "1.0-1")
	v2 := makeDeb(t, "hello-web", "2.0-1")
	accepted := 0
	for _, h := range shtest.Hostile {
		for _, path := range []string{h, "/" + h} {
			f := newFakeCluster("1.0-1")
			f.seed(t, v1)
			o, _ := fakeOptions(f, t, v2)
			o.Inventory.App.HealthPath = path
			if err := o.Inventory.Validate(); err != nil {
				if !strings.Contains(err.Error(), "health-path") {
					t.Errorf("health-path %q: the error does not name the key: %v", path, err)
				}
				continue
			}
			accepted++
			if _, err := Run(context.Background(), o); err != nil {
				t.Errorf("health-path %q: deploy: %v", path, err)
			}
			curls := 0
			for _, c := range f.ran {
				_, cmd, _ := strings.Cut(c, ": ")
				found, err := shtest.Literal(cmd, h)
				if err != nil {
					t.Errorf("health-path %q: %v", path, err)
				}
				if found {
					curls++
				}
			}
			if curls == 0 {
				t.Errorf("health-path %q: no command held it; the test no longer sees the health check", path)
			}
		}
	}
	if accepted == 0 {
		t.Fatal("every hostile health-path is refused; the setup test's table should then say \"rejected at load\"")
	}
}
