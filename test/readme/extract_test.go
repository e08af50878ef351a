package readme

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The check of the docs is only as good as its reading of them: these are
// its parsers on the shapes the docs use.

func TestShellWords(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{`kubectl iter8 report`, []string{"kubectl", "iter8", "report"}},
		{`kubectl iter8 report   # text; -o html > report.html`, []string{"kubectl", "iter8", "report"}},
		{`x --set 'tasks={ready,http}' --set 'a[0].b=c d'`, []string{"x", "--set", "tasks={ready,http}", "--set", "a[0].b=c d"}},
		{`x --spec "$out/experiment.yaml" --set ready.url="http://$v2/healthz"`, []string{"x", "--spec", "$out/experiment.yaml", "--set", "ready.url=http://$v2/healthz"}},
		{`x -o html >"$out/report.html"`, []string{"x", "-o", "html"}},
		{`x a || status=$?`, []string{"x", "a"}},
		{`x "a \"b\" \$c" d\ e`, []string{"x", `a "b" $c`, "d e"}},
		{`x a#b`, []string{"x", "a#b"}},
	} {
		got, err := shellWords(tc.line)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("shellWords(%q) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
	for _, bad := range []string{`x 'a`, `x "a`} {
		if got, err := shellWords(bad); err == nil {
			t.Errorf("shellWords(%q) = %q, want an error", bad, got)
		}
	}
}

func TestScriptWords(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{`! kubectl iter8 report # comment`, []string{"!", "kubectl", "iter8", "report"}},
		{`x --set 'tasks={a,b}' --set http.url=http://$ADDR_8080/`, []string{"x", "--set", "tasks={a,b}", "--set", "http.url=http://$ADDR_8080/"}},
		{`x 'don''t' 'a # b'`, []string{"x", "don't", "a # b"}},
		{`x ''`, []string{"x", ""}},
	} {
		got, err := scriptWords(tc.line)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("scriptWords(%q) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
	if got, err := scriptWords(`x 'a`); err == nil {
		t.Errorf("scriptWords of an open quote = %q, want an error", got)
	}
}

func TestScriptCommand(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"[linux]", "!", "exec", "kubectl", "iter8", "report"}, []string{"kubectl", "iter8", "report"}},
		{[]string{"exits", "1", "kubectl-iter8", "assert"}, []string{"kubectl-iter8", "assert"}},
		{[]string{"exec", "kubectl-iter8", "run", "&bg&"}, []string{"kubectl-iter8", "run"}},
	} {
		if got := scriptCommand(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("scriptCommand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCodeBlocksAndContinuations(t *testing.T) {
	md := strings.Join([]string{
		"Prose that names kubectl iter8 report is not a command.", // 1
		"",
		"```sh", // 3
		"kubectl iter8 launch --local \\",
		"  --set a=b   # a comment",
		"kubectl iter8 report",
		"```",
		"- a list item",
		"  ```yaml", // 9
		"  key: value",
		"  ```",
		"",
		"    kubectl iter8 version", // 13: indented code
		"",
		"    make demo",
	}, "\n")
	var got []string
	for _, b := range codeBlocks(md) {
		for _, c := range shellInvocations(t, "x.md", b) {
			got = append(got, c.where+" "+strings.Join(c.words, " "))
		}
	}
	want := []string{
		"x.md:4 kubectl iter8 launch --local --set a=b",
		"x.md:6 kubectl iter8 report",
		"x.md:13 kubectl iter8 version",
		"x.md:15 make demo",
	}
	if !slices.Equal(got, want) {
		t.Errorf("commands of the Markdown:\n got %q\nwant %q", got, want)
	}
}

func TestLocalMode(t *testing.T) {
	for _, tc := range []struct {
		fe, line string
		local    bool
		err      string
	}{
		{"kubectl", "launch --local --set a=b", true, ""},
		{"kubectl", "launch perf -n test --set a=b", false, ""},
		{"kubectl", "run -f experiment.yaml", true, ""},
		{"kubectl", "run --experiment perf -n test --revision 2", false, ""},
		{"kubectl", "report -o yaml", true, ""},
		{"kubectl", "report perf -n test", false, ""},
		{"kubectl", "assert -c completed,slos", true, ""},
		{"kubectl", "delete perf -n test", false, ""},
		{"kubectl", "list -A", false, ""},
		{"kubectl", "release status app -n demo", false, ""},
		{"helm", "version", true, ""},
		{"kubectl", "completion bash", true, ""},
		{"kubectl", "report --output yaml", true, ""},
		{"kubectl", "launch --local --sett a=b", false, "unknown flag: --sett"},
		{"kubectl", "assert -x completed", false, "unknown shorthand flag: 'x'"},
		{"kubectl", "reprot", false, `unknown command "reprot"`},
		{"kubectl", "version extra", false, `unknown command "extra"`},
		{"helm", "report -n test --kube-context c perf", false, ""},
		{"helm", "report --context c perf", false, "unknown flag: --context"},
	} {
		local, err := localMode(tc.fe, strings.Fields(tc.line))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s iter8 %s: error %v, want one containing %q", tc.fe, tc.line, err, tc.err)
		case tc.err == "" && (err != nil || local != tc.local):
			t.Errorf("%s iter8 %s: local %v, error %v; want local %v", tc.fe, tc.line, local, err, tc.local)
		}
	}
}

func TestParseCommandsTable(t *testing.T) {
	md := strings.Join([]string{
		"## Commands",
		"",
		"| command | what it does |",
		"| --- | --- |",
		"| `report [RELEASE \\| -f SPEC] [-o text\\|html]` | show it (`--revision`: which; as `helm upgrade --atomic`) |",
		"| `release status APP [-A]` | status |",
		"",
		"## Next",
		"| `list [-x]` | after the section |",
	}, "\n")
	got := parseCommandsTable(md)
	want := []tableRow{
		{line: 5, verb: []string{"report"}, flags: []string{"-f", "-o", "--revision"}},
		{line: 6, verb: []string{"release", "status"}, flags: []string{"-A"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseCommandsTable:\n got %+v\nwant %+v", got, want)
	}
}
