//go:build invariants

package invariants

// Enabled is true in builds with the invariants tag: the packages then run
// extra, slower checks of their own state and scribble over memory they
// have released, so misuse shows up as a failure instead of a silent read
// of stale bytes.
const Enabled = true
