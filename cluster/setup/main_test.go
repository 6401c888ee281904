package setup_test

import (
	"testing"

	"gitlab.com/debship/debship/cluster/lab/labtest"
)

// The lab tests share one lab per test binary (labtest); unit tests in this
// package do not touch it.
func TestMain(m *testing.M) { labtest.Main(m) }
