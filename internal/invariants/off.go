//go:build !invariants

// Package invariants switches on expensive self-checks in builds with the
// invariants build tag (go test -tags invariants). Code guards its checks
// with `if invariants.Enabled { ... }` so that normal builds compile them
// away.
package invariants

// Enabled is false in normal builds. See on.go.
const Enabled = false
