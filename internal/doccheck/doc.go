// Package doccheck holds a test, and nothing else: every exported
// identifier of the module's public packages (every package whose import
// path has no "internal" element and that is not a command) has a doc
// comment. Run it with
//
//	go test ./internal/doccheck
//
// It fails listing each identifier without one as file:line, so the list is
// the work to do. What counts as documented is described in the test file.
package doccheck
