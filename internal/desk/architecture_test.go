package desk_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// These tests hold two rules of ARCHITECTURE.md over the module's non-test
// code, type-checked (not grepped), so that a rename or an alias cannot
// slip past them:
//
//   - desk is the only writer of mailbox rows and server settings: no
//     package but desk (and store itself) calls the store methods that
//     write them. oauth writes its own tokens, through other methods.
//   - No package reads another's sentences: no strings.Contains / Index /
//     HasPrefix / Cut (...) on an error's Error() text, nor on a Message,
//     Reason or Detail field of another package's type (comparing one
//     with "" asks whether there is one, and is fine).

const module = "github.com/postdesk/postdesk"

// mailboxWriters are the store methods that write mailbox rows or server settings.
var mailboxWriters = map[string]bool{
	"CreateMailbox": true, "RenameMailbox": true, "RestoreMailbox": true, "SetMailboxSignature": true,
	"PutMailboxServer": true, "RemoveMailbox": true, "SetMailboxAuthKind": true, "SetMailboxPassword": true,
	"SetMailboxAck": true,
}

// mailboxWriterExceptions are the other callers allowed, each with why.
var mailboxWriterExceptions = map[string]string{
	// inspect applies a message in a transaction it always rolls back, so
	// that it can explain a message for a mailbox not created yet.
	module + "/internal/ingest": "Inspect's dry run (rolled back)",
}

// textReaders are the strings functions that read a text's content.
var textReaders = map[string]bool{
	"Contains": true, "ContainsAny": true, "ContainsRune": true, "Index": true, "IndexAny": true, "LastIndex": true,
	"HasPrefix": true, "HasSuffix": true, "Cut": true, "CutPrefix": true, "CutSuffix": true, "EqualFold": true,
	"Split": true, "SplitN": true, "Fields": true, "Count": true,
}

// messageFields are the fields that carry a package's sentences.
// (A message body's Text is content, not a package's sentence.)
var messageFields = map[string]bool{"Message": true, "Reason": true, "Detail": true}

type listedPackage struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Export     string
	Standard   bool
}

// loadModule lists the module's packages with the export data of every
// dependency, and type-checks the module's own non-test files.
func loadModule(t *testing.T) (fset *token.FileSet, pkgs map[string]*checked) {
	t.Helper()
	if testing.Short() {
		t.Skip("type-checks the whole module")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-export", "-deps", "-json", "./...")
	cmd.Dir = root
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	exports := map[string]string{}
	var own []listedPackage
	dec := json.NewDecoder(&out)
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		exports[p.ImportPath] = p.Export
		if strings.HasPrefix(p.ImportPath, module+"/") || p.ImportPath == module {
			own = append(own, p)
		}
	}
	fset = token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok || f == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	pkgs = map[string]*checked{}
	for _, p := range own {
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		info := &types.Info{Uses: map[*ast.Ident]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{}, Types: map[ast.Expr]types.TypeAndValue{}}
		conf := types.Config{Importer: imp.(types.ImporterFrom)}
		if _, err := conf.Check(p.ImportPath, fset, files, info); err != nil {
			t.Fatalf("type-check %s: %v", p.ImportPath, err)
		}
		pkgs[p.ImportPath] = &checked{path: p.ImportPath, files: files, info: info}
	}
	return fset, pkgs
}

type checked struct {
	path  string
	files []*ast.File
	info  *types.Info
}

// calls visits every call of the package's files.
func (c *checked) calls(visit func(call *ast.CallExpr)) {
	for _, f := range c.files {
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				visit(call)
			}
			return true
		})
	}
}

func TestOnlyDeskWritesMailboxes(t *testing.T) {
	fset, pkgs := loadModule(t)
	storePath := module + "/internal/store"
	var bad []string
	seen := map[string]bool{}
	for path, c := range pkgs {
		if path == storePath || path == module+"/internal/desk" {
			continue
		}
		c.calls(func(call *ast.CallExpr) {
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return
			}
			s := c.info.Selections[sel]
			if s == nil || s.Kind() != types.MethodVal {
				return
			}
			fn := s.Obj().(*types.Func)
			if fn.Pkg() == nil || fn.Pkg().Path() != storePath || !mailboxWriters[fn.Name()] {
				return
			}
			seen[fn.Name()] = true
			if why, ok := mailboxWriterExceptions[path]; ok {
				t.Logf("allowed: %s calls store %s (%s)", fset.Position(call.Pos()), fn.Name(), why)
				return
			}
			bad = append(bad, fmt.Sprintf("%s: %s calls store's %s: mailbox writes go through desk.Admin", fset.Position(call.Pos()), path, fn.Name()))
		})
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
	// desk itself calls them: the check sees the methods it looks for.
	deskCalls := 0
	pkgs[module+"/internal/desk"].calls(func(call *ast.CallExpr) {
		if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
			if s := pkgs[module+"/internal/desk"].info.Selections[sel]; s != nil && mailboxWriters[s.Obj().Name()] && s.Obj().Pkg().Path() == storePath {
				deskCalls++
			}
		}
	})
	if deskCalls < 5 {
		t.Errorf("the check found only %d calls of the writers in desk: it no longer sees them", deskCalls)
	}
}

func TestNoPackageReadsAnothersSentences(t *testing.T) {
	fset, pkgs := loadModule(t)
	var bad []string
	for path, c := range pkgs {
		c.calls(func(call *ast.CallExpr) {
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return
			}
			fn, ok := c.info.Uses[sel.Sel].(*types.Func)
			if !ok || fn.Pkg() == nil || fn.Pkg().Path() != "strings" || !textReaders[fn.Name()] {
				return
			}
			for _, arg := range call.Args {
				if what := sentenceOf(c, arg); what != "" {
					bad = append(bad, fmt.Sprintf("%s: %s reads %s with strings.%s: return a typed error or value instead",
						fset.Position(call.Pos()), path, what, fn.Name()))
				}
			}
		})
		// err.Error() == "..." reads the text as much as Contains does.
		for _, f := range c.files {
			ast.Inspect(f, func(n ast.Node) bool {
				if b, ok := n.(*ast.BinaryExpr); ok && (b.Op == token.EQL || b.Op == token.NEQ) && !isEmptyString(b.X) && !isEmptyString(b.Y) {
					for _, side := range []ast.Expr{b.X, b.Y} {
						if what := sentenceOf(c, side); what != "" {
							bad = append(bad, fmt.Sprintf("%s: %s compares %s: return a typed error or value instead", fset.Position(b.Pos()), path, what))
						}
					}
				}
				return true
			})
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
}

// sentenceOf names what e reads when it is an error's text (x.Error() of
// an error) or a sentence field of another package's type; "" otherwise.
func sentenceOf(c *checked, e ast.Expr) string {
	switch e := ast.Unparen(e).(type) {
	case *ast.CallExpr:
		sel, ok := e.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Error" || len(e.Args) != 0 {
			return ""
		}
		if tv, ok := c.info.Types[sel.X]; ok && types.Implements(tv.Type, errorType) {
			return "an error's text (Error())"
		}
	case *ast.SelectorExpr:
		s := c.info.Selections[e]
		if s == nil || s.Kind() != types.FieldVal || !messageFields[e.Sel.Name] {
			return ""
		}
		if pkg := s.Obj().Pkg(); pkg != nil && pkg.Path() != c.path {
			return "the " + e.Sel.Name + " field of package " + pkg.Name() + "'s type"
		}
	}
	return ""
}

func isEmptyString(e ast.Expr) bool {
	lit, ok := ast.Unparen(e).(*ast.BasicLit)
	return ok && lit.Kind == token.STRING && (lit.Value == `""` || lit.Value == "``")
}

var errorType = types.Universe.Lookup("error").Type().Underlying().(*types.Interface)
