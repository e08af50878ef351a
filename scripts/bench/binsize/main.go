// Command binsize reports the size of a binary by module, for the issue's
// acceptance "binary ≤ 75 MB stripped (linux/amd64), with a size table by
// module":
//
//	go run ./scripts/bench/binsize [-pkg ./cmd/kubectl-iter8] [-top 40] [-limit 75] [-ldflags '...']
//
// It builds the package twice with CGO_ENABLED=0 -trimpath for -goos/-goarch
// (default linux/amd64): once with -ldflags='-s -w', whose file size is the
// one that counts, and once unstripped, for its ELF symbol table. The sizes
// of the symbols in sections that occupy file space (.text, .rodata,
// .noptrdata, .data, ...; not .bss or .noptrbss) are summed per package and
// the packages mapped to modules by the module list in the build info
// (longest prefix; the standard library as "std"). .gopclntab, the
// function tables, has no symbols of its own and is shared among modules in
// proportion to their .text. What no named symbol covers (type
// descriptors, string data and go:embed files, function metadata, linker
// tables, ELF headers and padding) is reported as unattributed, so that the
// table adds up to the stripped file size.
//
// 1 MB is 10^6 bytes. Exit status: 0 when the stripped binary is within
// -limit, 1 when it exceeds it, 2 for bad flags or a failed build.
package main

import (
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const mb = 1e6

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("binsize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pkg := fs.String("pkg", "./cmd/kubectl-iter8", "the main package to build")
	top := fs.Int("top", 40, "modules listed by name; the rest are summed as other modules")
	limit := fs.Float64("limit", 75, "largest acceptable stripped size in MB (10^6 bytes); 0 for no limit")
	ldflags := fs.String("ldflags", "", "extra -ldflags for both builds (e.g. -X settings)")
	goos := fs.String("goos", "linux", "GOOS of the builds")
	goarch := fs.String("goarch", "amd64", "GOARCH of the builds")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "binsize: unexpected arguments %q\n", fs.Args())
		return 2
	case *top < 1:
		fmt.Fprintln(stderr, "binsize: -top must be at least 1")
		return 2
	case *limit < 0:
		fmt.Fprintln(stderr, "binsize: -limit must not be negative")
		return 2
	case *pkg == "":
		fmt.Fprintln(stderr, "binsize: -pkg is empty")
		return 2
	}

	dir, err := os.MkdirTemp("", "iter8-binsize-")
	if err != nil {
		fmt.Fprintln(stderr, "binsize:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	stripped := filepath.Join(dir, "stripped")
	full := filepath.Join(dir, "full")
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS="+*goos, "GOARCH="+*goarch)
	for _, b := range []struct{ out, ldflags string }{
		{stripped, strings.TrimSpace("-s -w " + *ldflags)},
		{full, *ldflags},
	} {
		if err := build(*pkg, b.out, b.ldflags, env, stderr); err != nil {
			fmt.Fprintln(stderr, "binsize:", err)
			return 2
		}
	}

	a, err := analyze(stripped, full)
	if err != nil {
		fmt.Fprintln(stderr, "binsize:", err)
		return 2
	}
	a.print(stdout, *pkg, *goos+"/"+*goarch, *top)

	size := float64(a.fileSize) / mb
	switch {
	case *limit == 0:
		fmt.Fprintf(stdout, "\nstripped size %.2f MB (no limit)\n", size)
	case size <= *limit:
		fmt.Fprintf(stdout, "\nPASS: stripped size %.2f MB ≤ %g MB\n", size, *limit)
	default:
		fmt.Fprintf(stdout, "\nFAIL: stripped size %.2f MB > %g MB (%.2f MB over)\n", size, *limit, size-*limit)
		return 1
	}
	return 0
}

// build runs go build for one binary, showing the command on stderr.
func build(pkg, out, ldflags string, env []string, stderr io.Writer) error {
	gobin := os.Getenv("GO")
	if gobin == "" {
		gobin = "go"
	}
	args := []string{"build", "-trimpath", "-ldflags=" + ldflags, "-o", out, pkg}
	fmt.Fprintf(stderr, "binsize: CGO_ENABLED=0 %s build -trimpath %s -o %s %s\n", gobin, quoteArg(args[2]), out, pkg)
	cmd := exec.Command(gobin, args...)
	cmd.Env = env
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s (ldflags %q): %w", pkg, ldflags, err)
	}
	return nil
}

// quoteArg single-quotes a shell word that needs it, for the log.
func quoteArg(s string) string {
	if !strings.ContainsAny(s, " '\"$\\") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// section is one section of the stripped binary.
type section struct {
	name   string
	nobits bool  // occupies no file space (.bss, .noptrbss)
	size   int64 // bytes (in memory, for NOBITS)
	named  int64 // bytes covered by named symbols in the unstripped binary
}

// moduleSize is what a module adds to the binary.
type moduleSize struct {
	path, version string
	text          int64 // .text symbols
	pcln          int64 // share of .gopclntab, in proportion to text
	data          int64 // symbols in other file-backed sections
}

func (m moduleSize) total() int64 { return m.text + m.pcln + m.data }

// analysis is the breakdown of one binary.
type analysis struct {
	fileSize  int64
	goVersion string
	sections  []section
	modules   []moduleSize // descending by total
	pclntab   int64
	textTotal int64 // .text attributed to modules
}

func (a *analysis) attributed() int64 {
	var n int64
	for _, m := range a.modules {
		n += m.total()
	}
	return n
}

// analyze reads the stripped binary's size and sections and the
// unstripped one's symbols and build info.
func analyze(stripped, full string) (*analysis, error) {
	st, err := os.Stat(stripped)
	if err != nil {
		return nil, err
	}
	a := &analysis{fileSize: st.Size()}

	sf, err := elf.Open(stripped)
	if err != nil {
		return nil, err
	}
	defer sf.Close()
	index := map[string]int{}
	for _, s := range sf.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		index[s.Name] = len(a.sections)
		a.sections = append(a.sections, section{name: s.Name, nobits: s.Type == elf.SHT_NOBITS, size: int64(s.Size)})
		if s.Name == ".gopclntab" {
			a.pclntab = int64(s.Size)
		}
	}

	bi, err := buildinfo.ReadFile(full)
	if err != nil {
		return nil, fmt.Errorf("build info of %s: %w", full, err)
	}
	a.goVersion = bi.GoVersion
	mods := []module{{path: bi.Main.Path, version: "(main module)"}}
	for _, d := range bi.Deps {
		mods = append(mods, module{path: d.Path, version: d.Version})
	}
	idx := newModuleIndex(mods)
	idx.version["std"] = bi.GoVersion

	ff, err := elf.Open(full)
	if err != nil {
		return nil, err
	}
	defer ff.Close()
	syms, err := ff.Symbols()
	if err != nil {
		return nil, fmt.Errorf("symbols of the unstripped build: %w", err)
	}
	sizes := map[string]*moduleSize{}
	for _, sym := range syms {
		if sym.Size == 0 || sym.Section == elf.SHN_UNDEF || sym.Section >= elf.SHN_LORESERVE || int(sym.Section) >= len(ff.Sections) {
			continue
		}
		fsec := ff.Sections[sym.Section]
		if fsec.Type == elf.SHT_NOBITS || fsec.Flags&elf.SHF_ALLOC == 0 || fsec.Name == ".gopclntab" {
			continue
		}
		mod := idx.moduleOf(symbolPackage(sym.Name), bi.Main.Path)
		if mod == "" {
			continue
		}
		if i, ok := index[fsec.Name]; ok {
			a.sections[i].named += int64(sym.Size)
		}
		m := sizes[mod]
		if m == nil {
			m = &moduleSize{path: mod, version: idx.version[mod]}
			sizes[mod] = m
		}
		if fsec.Name == ".text" {
			m.text += int64(sym.Size)
			a.textTotal += int64(sym.Size)
		} else {
			m.data += int64(sym.Size)
		}
	}
	for _, m := range sizes {
		if a.textTotal > 0 {
			m.pcln = int64(float64(a.pclntab) * float64(m.text) / float64(a.textTotal))
		}
		a.modules = append(a.modules, *m)
	}
	sort.Slice(a.modules, func(i, j int) bool {
		if a.modules[i].total() != a.modules[j].total() {
			return a.modules[i].total() > a.modules[j].total()
		}
		return a.modules[i].path < a.modules[j].path
	})
	return a, nil
}

func (a *analysis) print(w io.Writer, pkg, platform string, top int) {
	fmt.Fprintf(w, "binsize: %s for %s, %s, CGO_ENABLED=0 -trimpath (1 MB = 10^6 bytes)\n", pkg, platform, a.goVersion)
	fmt.Fprintf(w, "stripped (-ldflags=-s -w): %d bytes = %.2f MB\n\n", a.fileSize, float64(a.fileSize)/mb)

	fmt.Fprintln(w, "Sections of the stripped binary (named: bytes covered by named symbols of the unstripped build):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| section | MB | named MB |")
	fmt.Fprintln(w, "|---|---:|---:|")
	for _, s := range a.sections {
		switch {
		case s.nobits:
			fmt.Fprintf(w, "| %s | (%.2f, no file space) | |\n", s.name, float64(s.size)/mb)
		case s.name == ".gopclntab":
			fmt.Fprintf(w, "| %s | %.2f | (shared by .text) |\n", s.name, float64(s.size)/mb)
		default:
			fmt.Fprintf(w, "| %s | %.2f | %.2f |\n", s.name, float64(s.size)/mb, float64(s.named)/mb)
		}
	}

	fmt.Fprintln(w)
	fmt.Fprintf(w, "Size by module: symbol sizes per package, packages mapped to modules (longest prefix; standard library as std).\n")
	fmt.Fprintf(w, ".gopclntab (%.2f MB) is shared among modules in proportion to their .text (code = .text + that share; data = other file-backed sections).\n", float64(a.pclntab)/mb)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| # | module | version | MB | share | code MB | data MB |")
	fmt.Fprintln(w, "|---:|---|---|---:|---:|---:|---:|")
	share := func(n int64) string { return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(a.fileSize)) }
	var other moduleSize
	nOther := 0
	for i, m := range a.modules {
		if i >= top {
			other.text += m.text
			other.pcln += m.pcln
			other.data += m.data
			nOther++
			continue
		}
		fmt.Fprintf(w, "| %d | %s | %s | %.2f | %s | %.2f | %.2f |\n", i+1, m.path, m.version,
			float64(m.total())/mb, share(m.total()), float64(m.text+m.pcln)/mb, float64(m.data)/mb)
	}
	if nOther > 0 {
		fmt.Fprintf(w, "| | other modules (%d) | | %.2f | %s | %.2f | %.2f |\n", nOther,
			float64(other.total())/mb, share(other.total()), float64(other.text+other.pcln)/mb, float64(other.data)/mb)
	}
	un := a.fileSize - a.attributed()
	fmt.Fprintf(w, "| | unattributed (runtime tables, strings) | | %.2f | %s | | |\n", float64(un)/mb, share(un))
	fmt.Fprintf(w, "| | total (stripped file) | | %.2f | 100.0%% | | |\n", float64(a.fileSize)/mb)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%d modules; attributed %.2f MB of %.2f MB (%s); unattributed %.2f MB: type descriptors, string data and go:embed files, function metadata (go:func.*), linker tables, headers and padding.\n",
		len(a.modules), float64(a.attributed())/mb, float64(a.fileSize)/mb, share(a.attributed()), float64(un)/mb)
}

// module is a module of the build list.
type module struct{ path, version string }

// moduleIndex maps package paths to the modules that provide them.
type moduleIndex struct {
	paths   []string // longest first
	version map[string]string
}

func newModuleIndex(mods []module) *moduleIndex {
	idx := &moduleIndex{version: map[string]string{}}
	for _, m := range mods {
		if m.path == "" {
			continue
		}
		if _, dup := idx.version[m.path]; !dup {
			idx.paths = append(idx.paths, m.path)
		}
		idx.version[m.path] = m.version
	}
	sort.SliceStable(idx.paths, func(i, j int) bool { return len(idx.paths[i]) > len(idx.paths[j]) })
	return idx
}

// moduleOf returns the module that provides package pkg: the longest
// module path that is pkg or a prefix of it at a slash; "std" for the
// standard library (a first path element without a dot, such as
// "net/http", "internal/abi" or "vendor/golang.org/x/net/idna"); the main
// module for package main; "" for no package (unattributed). A package
// outside every module and the standard library is returned as itself.
func (idx *moduleIndex) moduleOf(pkg, mainPath string) string {
	switch pkg {
	case "":
		return ""
	case "main":
		if mainPath != "" {
			return mainPath
		}
	}
	for _, p := range idx.paths {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return p
		}
	}
	first, _, _ := strings.Cut(pkg, "/")
	if !strings.Contains(first, ".") {
		return "std"
	}
	return pkg
}

// unattributedPrefixes begin the names of symbols that belong to no
// package: string data, function metadata, constants, GC bitmaps and
// methods of unnamed types.
var unattributedPrefixes = []string{
	"go:string.", "go:func.", "go:buildinfo", "go:fipsinfo", "go:cuinfo.", "go:textfips",
	"go:struct", "go:interface", "go:(", "go:map", "go:func(",
	"$f32.", "$f64.", "$i64.", "$i128.",
	"runtime.gcbits.", "gclocals·",
}

// linkerTables are runtime symbols that the linker fills with tables over
// all packages.
var linkerTables = map[string]bool{
	"runtime.findfunctab": true, "runtime.typelink": true, "runtime.itablink": true,
	"runtime.pclntab": true, "runtime.epclntab": true, "runtime.firstmoduledata": true,
	"runtime.functab": true, "runtime.filetab": true, "runtime.pctab": true,
	"runtime.cutab": true, "runtime.funcnametab": true,
}

// symbolPackage returns the import path of the package a symbol belongs
// to, or "" for none. It takes the package of the outermost name:
// "pkg.(*T).M", "pkg.F[...].func1" and "pkg..dict.F[...]" belong to pkg;
// "type:*pkg.T", "type:.eq.[8]pkg.T" and "go:itab.*pkg.T,pkg2.I" to pkg;
// "go:string.*", "go:func.*" and the like to none. Dots in a path's last
// element, escaped as %2e in symbol names, are unescaped.
func symbolPackage(name string) string {
	if linkerTables[name] {
		return ""
	}
	for _, p := range unattributedPrefixes {
		if strings.HasPrefix(name, p) {
			return ""
		}
	}
	s := name
	for _, p := range []string{"type:.eq.", "type:.hash.", "type:.namedata.", "type:.importpath.", "type:", "go:itab.", "go:link.", "go:info."} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			s = rest
			if p == "go:itab." {
				// The concrete type, before the interface.
				s = cutTopLevel(s, ',')
			}
			break
		}
	}
	// Type constructors around a named type: pointers, slices, arrays,
	// channels; noalg marks compiler-made types without equality.
	for {
		n := len(s)
		s = strings.TrimPrefix(s, "*")
		s = strings.TrimPrefix(s, "noalg.")
		s = strings.TrimPrefix(s, "[]")
		s = strings.TrimPrefix(s, "<-chan ")
		s = strings.TrimPrefix(s, "chan<- ")
		s = strings.TrimPrefix(s, "chan ")
		if strings.HasPrefix(s, "[") {
			if i := strings.IndexByte(s, ']'); i > 1 {
				if _, err := strconv.Atoi(s[1:i]); err == nil {
					s = s[i+1:]
				}
			}
		}
		if len(s) == n {
			break
		}
	}
	// Unnamed types (map[...], func(...), struct {...}, interface {...}) and
	// builtin ones have no package.
	for _, p := range []string{"map[", "func(", "struct {", "struct{", "interface {", "interface{", "go.shape."} {
		if strings.HasPrefix(s, p) {
			return ""
		}
	}
	// The import path ends at the first dot after its last slash; only
	// the part before any bracket, parenthesis or space can be the path.
	head := s
	if i := strings.IndexAny(head, "[( ,*{"); i >= 0 {
		head = head[:i]
	}
	slash := strings.LastIndexByte(head, '/')
	dot := strings.IndexByte(head[slash+1:], '.')
	if dot <= 0 {
		return ""
	}
	return unescape(head[:slash+1+dot])
}

// cutTopLevel returns s up to the first sep outside brackets and braces.
func cutTopLevel(s string, sep byte) string {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[', '(', '{':
			depth++
		case ']', ')', '}':
			depth--
		case sep:
			if depth == 0 {
				return s[:i]
			}
		}
	}
	return s
}

// unescape undoes the linker's %xx escapes in a package path (a dot in the
// last element is written %2e); a malformed escape is left as it is.
func unescape(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			if v, err := strconv.ParseUint(p[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}
