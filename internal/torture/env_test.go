//go:build linux

package torture

import "testing"

// runEnvSuite runs an environment suite with its quick count and checks
// it passed, or skips the test with the reason the environment gave.
func runEnvSuite(t *testing.T, name string, mod func(*Config)) *Result {
	t.Helper()
	var s Suite
	for _, x := range Suites() {
		if x.Name == name {
			s = x
		}
	}
	r := runSuite(t, name, s.Quick, mod)
	if r.Trials == 0 && r.Acked == 0 && r.Skipped != "" {
		t.Skipf("%s: %s", name, r.Skipped)
	}
	return r
}

func TestENOSPC(t *testing.T) {
	r := runEnvSuite(t, "enospc", nil)
	if !r.OK() || r.Acked == 0 || r.Trials != 1 {
		t.Fatalf("%s", r.Line())
	}
}

func TestTruncate(t *testing.T) {
	r := runEnvSuite(t, "truncate", nil)
	if !r.OK() || r.Acked == 0 || r.Trials != 1 {
		t.Fatalf("%s", r.Line())
	}
}
