package cli

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// envReaders are the calls that read the process environment; under pkg/
// only this package may make them (DESIGN §2), so that the core used as a
// library does what its caller says and nothing else. Nor may the core
// import cobra or pflag (cliOnly): the commands are this package's.
var envReaders = map[string][]string{
	"os":                      {"Getenv", "LookupEnv", "Environ", "ExpandEnv"},
	"helm.sh/helm/v3/pkg/cli": {"New"},
}

var cliOnly = []string{"github.com/spf13/cobra", "github.com/spf13/pflag"}

func TestOnlyCLIReadsTheEnvironment(t *testing.T) {
	root := filepath.Join("..")
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && filepath.Base(path) == "cli" && filepath.Dir(path) == root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		found = append(found, envCalls(t, path)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Errorf("%s: only pkg/cli may", f)
	}
}

// envCalls lists the calls of envReaders in one file, by the names its
// imports give the packages.
func envCalls(t *testing.T, path string) []string {
	t.Helper()
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string][]string{}
	var out []string
	for _, imp := range file.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if slices.Contains(cliOnly, p) {
			out = append(out, fset.Position(imp.Pos()).String()+": imports "+p)
		}
		funcs, ok := envReaders[p]
		if !ok {
			continue
		}
		name := filepath.Base(p)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		names[name] = funcs
	}
	ast.Inspect(file, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		pkg, ok := sel.X.(*ast.Ident)
		if !ok {
			return true
		}
		for _, f := range names[pkg.Name] {
			if sel.Sel.Name == f {
				out = append(out, fset.Position(sel.Pos()).String()+": reads the environment with "+pkg.Name+"."+f)
			}
		}
		return true
	})
	return out
}

// TestPureCoreImportsNoClientGo: the spec, the statistics and the reports
// work without Kubernetes, so that local mode and library users do not
// carry a cluster client.
func TestPureCoreImportsNoClientGo(t *testing.T) {
	for _, pkg := range []string{"../experiment", "../stats", "../report"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "k8s.io/client-go") {
				t.Errorf("pkg/%s imports %s", filepath.Base(pkg), dep)
			}
		}
	}
}
