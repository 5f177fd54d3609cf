//go:build linux

package torture

import "testing"

func TestBadinput(t *testing.T) {
	r := runSuite(t, "badinput", 100, nil)
	if !r.OK() || r.Acked == 0 || r.Trials != 100 {
		t.Fatalf("%s", r.Line())
	}
}

// TestBadinputCatchesBlindReader: with a reader that trusts the file (no
// checksums, no recovery), the suite must count records returned with
// wrong bytes and damage nobody reported; a suite that cannot fail proves
// nothing.
func TestBadinputCatchesBlindReader(t *testing.T) {
	badinputBlind = true
	defer func() { badinputBlind = false }()
	r := runSuite(t, "badinput", 60, nil)
	if r.Corrupt == 0 || r.Undetected == 0 {
		t.Fatalf("a blind reader, yet: %s", r.Line())
	}
}
