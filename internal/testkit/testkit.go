// Package testkit holds helpers the packages' tests share.
package testkit

import (
	"testing"

	"github.com/ringlog/ringlog/pager"
)

// Backends are the pager backends every test runs over.
var Backends = []pager.Backend{pager.Remap, pager.Mmap, pager.Copy}

// ForEachBackend runs fn as a subtest named after each backend, skipping
// the backends this build or machine lacks (with the reason).
func ForEachBackend(t *testing.T, fn func(t *testing.T, b pager.Backend)) {
	for _, b := range Backends {
		t.Run(b.String(), func(t *testing.T) {
			if err := pager.Available(b); err != nil {
				t.Skipf("backend %v unavailable here: %v", b, err)
			}
			fn(t, b)
		})
	}
}
