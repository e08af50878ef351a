package readme

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/iter8-tools/iter8/pkg/cli"
)

// repoRoot is the checkout's root, from this package's folder.
const repoRoot = "../.."

// readmeLocalVerbs are verbs that README.md shows in local mode. The check
// fails when it finds none of one of them, so that an extractor that
// silently stopped finding commands cannot pass.
var readmeLocalVerbs = []string{"launch", "report", "assert", "version"}

// invocation is one run of a program as a doc or a script writes it.
type invocation struct {
	where string   // file:line
	text  string   // as written, continuation lines joined
	words []string // after quote removal; the program by its base name
}

func (c invocation) String() string { return c.where + ": " + c.text }

// plugin returns the front-end ("kubectl" or "helm") and the plugin's
// arguments of an invocation of iter8, or ok false for other programs.
func (c invocation) plugin() (fe string, args []string, ok bool) {
	w := c.words
	switch {
	case len(w) >= 2 && (w[0] == "kubectl" || w[0] == "helm") && w[1] == "iter8":
		return w[0], w[2:], true
	case len(w) >= 1 && w[0] == "kubectl-iter8":
		return "kubectl", w[1:], true
	case len(w) >= 1 && w[0] == "helm-iter8":
		return "helm", w[1:], true
	}
	return "", nil, false
}

// loopbackAddr is an address a doc's command names; a script stands a
// server of its own in for it and names it $ADDR_<port>, since the test
// picks free ports.
var loopbackAddr = regexp.MustCompile(`\b(?:127\.0\.0\.1|localhost):([0-9]+)`)

// TestDocsCommandsRunInScripts checks every iter8 command line in the code
// blocks of README.md and docs/*.md against the real command tree (unknown
// commands and flags, and extra arguments, fail), and that every one that
// needs no cluster, and every iter8 command of what `make demo` runs, is
// run word for word by a script in testdata/. Cluster commands are checked
// by the tests that have a cluster (test/cluster, test/release).
func TestDocsCommandsRunInScripts(t *testing.T) {
	scripts := scriptInvocations(t)
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append([]string{filepath.Join(repoRoot, "README.md")}, docs...)

	var local []invocation
	readmeVerbs := map[string]bool{}
	for _, doc := range docs {
		for _, c := range markdownInvocations(t, doc) {
			fe, args, ok := c.plugin()
			if !ok {
				continue
			}
			isLocal, err := localMode(fe, args)
			if err != nil {
				t.Errorf("%s\n\t%v", c, err)
				continue
			}
			if !isLocal {
				t.Logf("needs a cluster (flags checked only): %s", c)
				continue
			}
			if filepath.Base(doc) == "README.md" && len(args) > 0 {
				readmeVerbs[args[0]] = true
			}
			// The test's servers stand in for the doc's addresses.
			for i, w := range c.words {
				c.words[i] = loopbackAddr.ReplaceAllString(w, "$$ADDR_$1")
			}
			local = append(local, c)
		}
	}
	for _, v := range readmeLocalVerbs {
		if !readmeVerbs[v] {
			t.Errorf("found no local %q command in README.md's code blocks: the extraction broke, or README.md changed (then update readmeLocalVerbs)", v)
		}
	}

	demo := demoInvocations(t)
	if !slices.ContainsFunc(demo, func(c invocation) bool { _, a, _ := c.plugin(); return len(a) > 0 && a[0] == "launch" }) {
		t.Errorf("found no launch among the commands of scripts/demo.sh: %q", demo)
	}
	local = append(local, demo...)

	for _, c := range local {
		if !slices.ContainsFunc(scripts, func(s invocation) bool { return slices.Equal(s.words, c.words) }) {
			t.Errorf("no script in testdata/ runs this command of the docs word for word:\n\t%s\n%s", c, closest(c, scripts))
		}
	}
	t.Logf("checked %d local commands of the docs and the demo", len(local))
}

// TestCommandsTableFlags checks the flags that README.md's table of
// commands names (in a command's synopsis, and as `-x` or `--flag` in its
// description) against that command's real flags.
func TestCommandsTableFlags(t *testing.T) {
	rows := commandsTable(t, filepath.Join(repoRoot, "README.md"))
	if len(rows) < len(readmeLocalVerbs) {
		t.Fatalf("found %d rows in README.md's table of commands: the extraction broke, or the table moved", len(rows))
	}
	for _, r := range rows {
		root := newRoot("kubectl")
		cmd, _, err := root.Find(r.verb)
		if err != nil || cmd == root {
			t.Errorf("README.md:%d: command %q: not a command (%v)", r.line, strings.Join(r.verb, " "), err)
			continue
		}
		for _, f := range r.flags {
			if lookupFlag(cmd, f) == nil {
				t.Errorf("README.md:%d: %s has no flag %s", r.line, strings.Join(r.verb, " "), f)
			}
		}
	}
}

// newRoot builds the command tree of a front-end with its completion
// command (which cobra adds only when it executes).
func newRoot(fe string) *cobra.Command {
	front := cli.Kubectl()
	if fe == "helm" {
		front = cli.Helm()
	}
	root := cli.NewRootCmd(front, cli.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard})
	root.InitDefaultCompletionCmd()
	return root
}

// lookupFlag finds a flag of cmd (its own or inherited) as written: --name
// or -x.
func lookupFlag(cmd *cobra.Command, flag string) *pflag.Flag {
	if name, ok := strings.CutPrefix(flag, "--"); ok {
		if f := cmd.Flags().Lookup(name); f != nil {
			return f
		}
		return cmd.InheritedFlags().Lookup(name)
	}
	name := strings.TrimPrefix(flag, "-")
	if len(name) != 1 {
		return nil // pflag's shorthands are one letter
	}
	if f := cmd.Flags().ShorthandLookup(name); f != nil {
		return f
	}
	return cmd.InheritedFlags().ShorthandLookup(name)
}

// localMode parses a plugin's arguments with the real command tree and
// tells whether the command runs without a cluster. Unknown commands,
// unknown flags and arguments the command does not take are errors.
func localMode(fe string, args []string) (bool, error) {
	root := newRoot(fe)
	cmd, rest, err := root.Find(args)
	if err != nil {
		return false, err
	}
	if cmd == root {
		return false, errors.New("no command")
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return false, err
	}
	pos := cmd.Flags().Args()
	if err := cmd.ValidateArgs(pos); err != nil {
		return false, err
	}
	verb := cmd
	for verb.Parent() != root {
		verb = verb.Parent()
	}
	switch verb.Name() {
	case "launch":
		return cmd.Flags().Changed("local"), nil
	case "run":
		return !cmd.Flags().Changed("experiment"), nil
	case "report", "assert", "log", "delete":
		return len(pos) == 0, nil // a positional argument names a release
	case "version", "completion", "help":
		return true, nil
	case "list", "release":
		return false, nil
	}
	return false, fmt.Errorf("the check does not know whether %q needs a cluster: teach localMode", verb.Name())
}

// closest describes the script command nearest to c (the same verb, the
// most words in common), to show what a doc edit changed.
func closest(c invocation, scripts []invocation) string {
	_, args, _ := c.plugin()
	best, bestScore := invocation{}, -1
	for _, s := range scripts {
		_, sargs, _ := s.plugin()
		if len(args) == 0 || len(sargs) == 0 || sargs[0] != args[0] {
			continue
		}
		if n := len(common(s.words, c.words)); n > bestScore {
			best, bestScore = s, n
		}
	}
	if bestScore < 0 {
		return "\tno script runs this verb"
	}
	return fmt.Sprintf("\tclosest: %s\n\tonly in the doc: %q\n\tonly in the script: %q",
		best.where, minus(c.words, best.words), minus(best.words, c.words))
}

// common is the multiset intersection of a and b.
func common(a, b []string) []string {
	left := slices.Clone(b)
	var out []string
	for _, w := range a {
		if i := slices.Index(left, w); i >= 0 {
			out = append(out, w)
			left = slices.Delete(left, i, i+1)
		}
	}
	return out
}

// minus is a without the words of b (as multisets).
func minus(a, b []string) []string {
	left := slices.Clone(b)
	var out []string
	for _, w := range a {
		if i := slices.Index(left, w); i >= 0 {
			left = slices.Delete(left, i, i+1)
			continue
		}
		out = append(out, w)
	}
	return out
}

// markdownInvocations returns the commands in a Markdown file's code
// blocks, whatever their program.
func markdownInvocations(t *testing.T, file string) []invocation {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(repoRoot, file)
	var out []invocation
	for _, block := range codeBlocks(string(data)) {
		out = append(out, shellInvocations(t, rel, block)...)
	}
	return out
}

// demoInvocations returns the iter8 commands of what `make demo` runs: the
// Makefile's demo recipe must run scripts/demo.sh, and these are that
// script's commands.
func demoInvocations(t *testing.T) []invocation {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	const script = "scripts/demo.sh"
	if recipe := makeRecipe(string(mk), "demo"); !strings.Contains(recipe, script) {
		t.Fatalf("the Makefile's demo recipe no longer runs %s, which this test reads:\n%s", script, recipe)
	}
	data, err := os.ReadFile(filepath.Join(repoRoot, script))
	if err != nil {
		t.Fatal(err)
	}
	var lines []numbered
	for i, l := range strings.Split(string(data), "\n") {
		lines = append(lines, numbered{i + 1, l})
	}
	var out []invocation
	for _, c := range shellInvocations(t, script, lines) {
		if _, _, ok := c.plugin(); ok {
			out = append(out, c)
		}
	}
	return out
}

// makeRecipe returns the recipe lines of a Makefile's rule for target.
func makeRecipe(makefile, target string) string {
	var recipe []string
	in := false
	for _, l := range strings.Split(makefile, "\n") {
		switch {
		case strings.HasPrefix(l, target+":"):
			in = true
		case in && strings.HasPrefix(l, "\t"):
			recipe = append(recipe, l)
		case in:
			return strings.Join(recipe, "\n")
		}
	}
	return strings.Join(recipe, "\n")
}

// numbered is a line of a file with its number.
type numbered struct {
	n    int
	text string
}

// codeBlocks returns the code blocks of Markdown text: fenced (``` or ~~~,
// at any indentation, as in list items) and indented (four spaces or a tab,
// after a blank line).
func codeBlocks(md string) [][]numbered {
	var (
		blocks [][]numbered
		cur    []numbered
		fence  string // the open fence, if in a fenced block
		blank  = true // the previous line was blank
	)
	end := func() {
		if len(cur) > 0 {
			blocks = append(blocks, cur)
		}
		cur = nil
	}
	for i, l := range strings.Split(md, "\n") {
		n, trimmed := i+1, strings.TrimSpace(l)
		switch {
		case fence != "":
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
				fence = ""
				end()
			} else {
				cur = append(cur, numbered{n, l})
			}
		case strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~"):
			end()
			fence = trimmed[:3]
		case (strings.HasPrefix(l, "    ") || strings.HasPrefix(l, "\t")) && trimmed != "" && (blank || len(cur) > 0):
			cur = append(cur, numbered{n, l})
		case trimmed == "":
			// A blank line may sit inside an indented block.
		default:
			end()
		}
		blank = trimmed == ""
	}
	end()
	return blocks
}

// shellInvocations returns the commands of shell lines: continuation lines
// (a trailing backslash) are joined, a leading "$ " prompt is dropped, and
// a line is split into words by shellWords. Only lines that run iter8 or
// make are split, and one of them that does not split fails the test.
func shellInvocations(t *testing.T, file string, lines []numbered) []invocation {
	t.Helper()
	var out []invocation
	for i := 0; i < len(lines); i++ {
		start, text := lines[i].n, strings.TrimSpace(lines[i].text)
		for strings.HasSuffix(text, `\`) && i+1 < len(lines) {
			i++
			text = strings.TrimSpace(strings.TrimSuffix(text, `\`)) + " " + strings.TrimSpace(lines[i].text)
		}
		text = strings.TrimPrefix(text, "$ ")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		prog := path.Base(fields[0])
		if !strings.Contains(prog, "iter8") && !(len(fields) > 1 && fields[1] == "iter8") && prog != "make" {
			continue
		}
		words, err := shellWords(text)
		if err != nil {
			t.Errorf("%s:%d: %v: %s", file, start, err, text)
			continue
		}
		words[0] = path.Base(words[0])
		out = append(out, invocation{where: fmt.Sprintf("%s:%d", file, start), text: text, words: words})
	}
	return out
}

// shellWords splits a shell command line into the words the command gets,
// as sh does before expansion: quotes and backslashes are removed and
// variables are kept as written ("$out/x" is $out/x). The command ends at a
// comment or at an operator outside quotes (| & ; < >), so that
// `report -o html > report.html` is `report -o html`.
func shellWords(line string) ([]string, error) {
	var (
		words  []string
		w      strings.Builder
		inWord bool
	)
	flush := func() {
		if inWord {
			words = append(words, w.String())
			w.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			flush()
		case c == '#' && !inWord, strings.IndexByte("|&;<>", c) >= 0:
			flush()
			return words, nil
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated ' quote")
			}
			w.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			for i++; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte("\"\\$`", line[i+1]) >= 0 {
					i++
				}
				w.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, errors.New(`unterminated " quote`)
			}
			inWord = true
		case c == '\\':
			if i+1 < len(line) {
				i++
				w.WriteByte(line[i])
			}
			inWord = true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return words, nil
}

// scriptInvocations returns the commands that the scripts in testdata/ run,
// with their variables unexpanded ($ADDR_8080 stays as written).
func scriptInvocations(t *testing.T) []invocation {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.txtar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in testdata/ (%v)", err)
	}
	var out []invocation
	for _, f := range files {
		a, err := txtar.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(a.Comment), "\n") {
			words, err := scriptWords(line)
			if err != nil {
				t.Errorf("%s:%d: %v", f, i+1, err)
				continue
			}
			words = scriptCommand(words)
			if len(words) == 0 {
				continue
			}
			out = append(out, invocation{where: fmt.Sprintf("%s:%d", f, i+1), text: line, words: words})
		}
	}
	return out
}

// scriptWords splits a testscript line into words as testscript does, but
// without expanding variables: words are separated by spaces, 'single
// quotes' group (” is a quote inside them), and # starts a comment.
func scriptWords(line string) ([]string, error) {
	var (
		words  []string
		w      strings.Builder
		inWord bool
		quoted bool
	)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\'' && i+1 < len(line) && line[i+1] == '\'':
			w.WriteByte('\'')
			i++
		case c == '\'':
			quoted, inWord = !quoted, true
		case quoted:
			w.WriteByte(c)
		case c == ' ' || c == '\t' || c == '\r' || c == '#':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			if c == '#' {
				return words, nil
			}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated quoted argument")
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// scriptCommand strips what testscript and this package's script commands
// put around a program's words: [conditions], !, exec, `exits CODE` and a
// trailing & (background).
func scriptCommand(words []string) []string {
	for len(words) > 0 && strings.HasPrefix(words[0], "[") && strings.HasSuffix(words[0], "]") {
		words = words[1:]
	}
	if len(words) > 0 && words[0] == "!" {
		words = words[1:]
	}
	switch {
	case len(words) > 0 && words[0] == "exec":
		words = words[1:]
	case len(words) > 1 && words[0] == "exits":
		words = words[2:]
	}
	if n := len(words); n > 0 && strings.HasPrefix(words[n-1], "&") && strings.HasSuffix(words[n-1], "&") {
		words = words[:n-1]
	}
	return words
}

// tableRow is a row of README.md's table of commands.
type tableRow struct {
	line  int
	verb  []string // "release", "status"
	flags []string // "-o", "--revision"
}

var (
	flagInSynopsis = regexp.MustCompile(`(?:^|[\s\[|])(--?[A-Za-z][A-Za-z0-9-]*)`)
	codeSpan       = regexp.MustCompile("`([^`]*)`")
	lowerWord      = regexp.MustCompile(`^[a-z]+$`)
)

// commandsTable reads the table under README.md's "## Commands".
func commandsTable(t *testing.T, file string) []tableRow {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return parseCommandsTable(string(data))
}

// parseCommandsTable reads the table under "## Commands": each row's first
// cell is a synopsis (`run -f SPEC [--revision N]`), whose leading
// lowercase words are the command and whose -x and --flag words are flags;
// code spans that start with a flag in the second cell name flags too.
func parseCommandsTable(md string) []tableRow {
	var rows []tableRow
	in := false
	for i, l := range strings.Split(md, "\n") {
		switch {
		case strings.TrimSpace(l) == "## Commands":
			in = true
			continue
		case !in:
			continue
		case strings.HasPrefix(l, "## "):
			return rows
		case !strings.HasPrefix(l, "|"):
			continue
		}
		cells := splitRow(l)
		if len(cells) < 2 || strings.HasPrefix(cells[0], "---") || cells[0] == "command" {
			continue
		}
		synopsis := strings.ReplaceAll(strings.Trim(cells[0], "`"), `\|`, "|")
		r := tableRow{line: i + 1}
		for _, w := range strings.Fields(synopsis) {
			if !lowerWord.MatchString(w) {
				break
			}
			r.verb = append(r.verb, w)
		}
		for _, m := range flagInSynopsis.FindAllStringSubmatch(synopsis, -1) {
			r.flags = append(r.flags, m[1])
		}
		for _, m := range codeSpan.FindAllStringSubmatch(cells[1], -1) {
			if f := strings.Fields(m[1]); len(f) > 0 && strings.HasPrefix(f[0], "-") {
				r.flags = append(r.flags, strings.TrimRight(f[0], ":,"))
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// splitRow splits a Markdown table row into its trimmed cells; \| is a
// pipe inside a cell.
func splitRow(l string) []string {
	l = strings.TrimSpace(l)
	l = strings.TrimSuffix(strings.TrimPrefix(l, "|"), "|")
	var cells []string
	var cell strings.Builder
	for i := 0; i < len(l); i++ {
		switch {
		case l[i] == '\\' && i+1 < len(l) && l[i+1] == '|':
			cell.WriteString(`\|`)
			i++
		case l[i] == '|':
			cells = append(cells, strings.TrimSpace(cell.String()))
			cell.Reset()
		default:
			cell.WriteByte(l[i])
		}
	}
	return append(cells, strings.TrimSpace(cell.String()))
}
