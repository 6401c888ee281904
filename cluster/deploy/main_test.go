package deploy

import (
	"testing"

	"gitlab.com/debship/debship/cluster/lab/labtest"
)

// The lab test shares the machine's one lab with the other packages' lab
// tests (labtest takes turns); the unit tests do not touch it.
func TestMain(m *testing.M) { labtest.Main(m) }
