package doccheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// What counts as documented, for each exported identifier the checker
// looks at (declared at the top level of a file that is not a test):
//
//   - a func, or a method whose receiver's type is exported: a doc comment
//     (the comment directly above it);
//   - a type: its own doc comment, or the declaration's when the type is
//     alone in it;
//   - a const or var: its own doc comment, a trailing comment on its line,
//     or the doc comment of the parenthesized block it is in;
//   - an exported field of an exported struct type, or a method of an
//     exported interface type: its own doc comment or trailing comment, or
//     the doc comment of a run of fields it belongs to when that comment
//     names it. A run is fields on consecutive lines, no blank line or
//     comment between them, as in
//
//	// Layout picks the layout; SegmentSize is the unit the file grows by.
//	Layout      Layout
//	SegmentSize int64
//
// Embedded fields are left out: the embedded type has its own doc.

// gap is one exported identifier without a doc comment.
type gap struct {
	pos  token.Position
	name string // package.Ident, package.Type.Field, package.Type.Method
	kind string
}

func (g gap) String() string {
	return fmt.Sprintf("%s:%d: %s (%s)", g.pos.Filename, g.pos.Line, g.name, g.kind)
}

// moduleRoot is the directory holding the module's go.mod, found upward
// from the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("doccheck: no go.mod above the test's directory")
		}
		dir = parent
	}
}

// publicPackageDirs lists the directories under root that hold Go
// packages other users import: no "internal" element, no "testdata", no
// hidden or underscore directories, no nested modules. Commands are left
// out later, by package name.
func publicPackageDirs(t *testing.T, root string) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if path != root {
			name := d.Name()
			if name == "internal" || name == "testdata" || name == "vendor" ||
				strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir
			}
		}
		dirs = append(dirs, path)
		return nil
	})
	if err != nil {
		t.Fatalf("doccheck: walking %s: %v", root, err)
	}
	return dirs
}

// checkDir parses the non-test Go files of dir (every platform's) and
// returns the gaps of its package, or nil for a command or a directory
// without Go files. File names in the gaps are relative to root.
func checkDir(t *testing.T, root, dir string) []gap {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		rel, err := filepath.Rel(root, filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		src, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, rel, src, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("doccheck: %v", err)
		}
		files = append(files, f)
	}
	var gaps []gap
	for _, f := range files {
		if f.Name.Name == "main" {
			return nil
		}
		gaps = append(gaps, checkFile(fset, f)...)
	}
	return gaps
}

// checkFile returns the gaps of one parsed file.
func checkFile(fset *token.FileSet, f *ast.File) []gap {
	pkg := f.Name.Name
	var gaps []gap
	add := func(n ast.Node, name, kind string) {
		gaps = append(gaps, gap{pos: fset.Position(n.Pos()), name: pkg + "." + name, kind: kind})
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() {
				continue
			}
			name, kind := d.Name.Name, "func"
			if d.Recv != nil {
				recv := receiverType(d.Recv)
				if !ast.IsExported(recv) {
					continue
				}
				name, kind = recv+"."+name, "method"
			}
			if d.Doc == nil {
				add(d.Name, name, kind)
			}
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if !s.Name.IsExported() {
						continue
					}
					if s.Doc == nil && (d.Doc == nil || len(d.Specs) > 1) {
						add(s.Name, s.Name.Name, "type")
					}
					switch tt := s.Type.(type) {
					case *ast.StructType:
						for _, m := range undocumentedFields(fset, tt.Fields) {
							add(m, s.Name.Name+"."+m.Name, "field")
						}
					case *ast.InterfaceType:
						for _, m := range undocumentedFields(fset, tt.Methods) {
							add(m, s.Name.Name+"."+m.Name, "interface method")
						}
					}
				case *ast.ValueSpec:
					kind := "var"
					if d.Tok == token.CONST {
						kind = "const"
					}
					documented := s.Doc != nil || s.Comment != nil || d.Doc != nil
					for _, n := range s.Names {
						if n.IsExported() && !documented {
							add(n, n.Name, kind)
						}
					}
				}
			}
		}
	}
	return gaps
}

// receiverType is the name of a method receiver's type: T of T, *T, T[P]
// and *T[P].
func receiverType(recv *ast.FieldList) string {
	if recv == nil || len(recv.List) == 0 {
		return ""
	}
	x := recv.List[0].Type
	if star, ok := x.(*ast.StarExpr); ok {
		x = star.X
	}
	switch t := x.(type) {
	case *ast.IndexExpr:
		x = t.X
	case *ast.IndexListExpr:
		x = t.X
	}
	if id, ok := x.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

// undocumentedFields returns the exported names of a struct's fields or an
// interface's methods that have no documentation by the rules at the top
// of this file.
func undocumentedFields(fset *token.FileSet, list *ast.FieldList) []*ast.Ident {
	if list == nil {
		return nil
	}
	var out []*ast.Ident
	var runDoc string // doc comment of the run the previous field is in
	prevEnd := -1     // line the previous field ends on
	for _, field := range list.List {
		line := fset.Position(field.Pos()).Line
		if field.Doc != nil {
			runDoc = field.Doc.Text()
		} else if line != prevEnd+1 {
			runDoc = ""
		}
		prevEnd = fset.Position(field.End()).Line
		if field.Comment != nil {
			prevEnd = max(prevEnd, fset.Position(field.Comment.End()).Line)
		}
		if field.Doc != nil || field.Comment != nil {
			continue
		}
		for _, n := range field.Names {
			if n.IsExported() && !mentions(runDoc, n.Name) {
				out = append(out, n)
			}
		}
	}
	return out
}

// mentions reports whether text has name as a whole word.
func mentions(text, name string) bool {
	if text == "" {
		return false
	}
	return regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b`).MatchString(text)
}

// knownGaps are identifiers without doc comments in files whose owners
// are changing them now; the check skips instead of failing while these
// are the only gaps. Remove an entry once its comment is written.
var knownGaps = map[string]bool{}

// TestExportedIdentifiersDocumented checks every public package of the
// module.
func TestExportedIdentifiersDocumented(t *testing.T) {
	root := moduleRoot(t)
	var gaps []gap
	packages := 0
	for _, dir := range publicPackageDirs(t, root) {
		g := checkDir(t, root, dir)
		gaps = append(gaps, g...)
		packages++
	}
	if packages < 5 {
		t.Fatalf("doccheck: found only %d package directories under %s", packages, root)
	}
	var known, unknown []string
	for _, g := range gaps {
		if knownGaps[g.name] {
			known = append(known, g.String())
		} else {
			unknown = append(unknown, g.String())
		}
	}
	slices.Sort(known)
	slices.Sort(unknown)
	if len(unknown) > 0 {
		t.Errorf("%d exported identifiers have no doc comment (see the rules at the top of doccheck_test.go):\n%s",
			len(unknown), strings.Join(unknown, "\n"))
	}
	if len(known) > 0 && len(unknown) == 0 {
		t.Skipf("only the known gaps remain, %d exported identifiers without a doc comment (remove each from knownGaps once documented):\n%s",
			len(known), strings.Join(known, "\n"))
	}
}

// TestRules runs the checker on a file holding every case the rules at
// the top of this file name, documented and not.
func TestRules(t *testing.T) {
	const src = `package p

// F has a doc.
func F() {}

func G() {}

func g() {}

// T has a doc.
type T struct {
	// A has a doc.
	A int
	B int // B has a trailing comment.
	C int

	// D and E share a comment that names both.
	D int
	E int

	// H's comment does not name the field after it.
	H int
	I int

	// J's comment names K, but a blank line ends the run.
	J int

	K int
	L, M int // a trailing comment covers both names
	N, O int
	U    // embedded: left out
	p int
}

type U struct{}

type u struct{ X int }

// M has a doc.
func (T) M() {}

func (*T) Q() {}

func (u) X() {}

// G is generic.
type Gen[K any] struct{}

func (g *Gen[K]) Get() {}

// I has a doc.
type I interface {
	// A has a doc.
	A()
	// B and C share a comment.
	B()
	C()
	D()
	u
}

type (
	// V has a doc.
	V int
	W int
)

// A group comment covers the block.
const (
	C1 = iota
	C2
)

const (
	C3 = 1 // trailing
	C4 = 2
	// C5 has a doc.
	C5 = 3
	c6 = 4
)

var Var1, Var2 int

// Var3 has a doc.
var Var3 int
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range checkFile(fset, f) {
		got = append(got, g.String())
	}
	want := []string{
		"p.go:6: p.G (func)",
		"p.go:15: p.T.C (field)",
		"p.go:23: p.T.I (field)",
		"p.go:28: p.T.K (field)",
		"p.go:30: p.T.N (field)",
		"p.go:30: p.T.O (field)",
		"p.go:35: p.U (type)",
		"p.go:42: p.T.Q (method)",
		"p.go:49: p.Gen.Get (method)",
		"p.go:58: p.I.D (interface method)",
		"p.go:65: p.W (type)",
		"p.go:76: p.C4 (const)",
		"p.go:82: p.Var1 (var)",
		"p.go:82: p.Var2 (var)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("gaps found:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
