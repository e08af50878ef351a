package cli

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fixture copies testdata/<name>.result.json into a new folder as the result
// of experiment.yaml there, and returns the spec's path.
func fixture(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	spec := filepath.Join(dir, "experiment.yaml")
	data, err := os.ReadFile(filepath.Join("testdata", name+".result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "experiment.result.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return spec
}

// execute runs the kubectl front-end's command tree in-process.
func execute(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRootCmd(Kubectl(), IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		errOut.WriteString("Error: " + err.Error() + "\n")
	}
	return out.String(), errOut.String(), ExitCode(err)
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		args    []string
		golden  string // compared with stdout, when set
		code    int
		stderr  string // must appear in stderr, when set
	}{
		{name: "report text", fixture: "completed", args: []string{"report"}, golden: "report-completed.txt"},
		{name: "report json", fixture: "completed", args: []string{"report", "-o", "json"}, golden: "report-completed.json"},
		{name: "report yaml", fixture: "completed", args: []string{"report", "-o", "yaml"}, golden: "report-completed.yaml"},
		{name: "report failed", fixture: "failed", args: []string{"report"}, golden: "report-failed.txt"},
		{name: "report running", fixture: "running", args: []string{"report"}, golden: "report-running.txt"},
		{name: "report bad format", fixture: "completed", args: []string{"report", "-o", "xml"}, code: 2, stderr: `-o: unknown output format "xml"`},
		{name: "report release without a cluster", args: []string{"report", "perf", "--kubeconfig", "/nonexistent/kubeconfig"}, code: 2, stderr: "report perf: connect to the cluster"},
		{name: "report release and file", fixture: "completed", args: []string{"report", "perf", "-f", "x.yaml"}, code: 2, stderr: "not both"},
		{name: "report nothing here", args: []string{"report"}, code: 2, stderr: "expected a release name, or -f SPEC"},
		{name: "report revision of a local result", fixture: "completed", args: []string{"report", "--revision", "2"}, code: 2, stderr: "--revision needs a release name"},
		{name: "log revision zero or less", args: []string{"log", "perf", "--revision", "-1"}, code: 2, stderr: "--revision must be at least 1"},
		{name: "report missing file", fixture: "", args: []string{"report", "-f", "/nonexistent/e.yaml"}, code: 2, stderr: "no result at /nonexistent/e.result.json"},
		{name: "assert holds", fixture: "completed", args: []string{"assert", "-c", "completed,nofailure"}, golden: "assert-holds.txt"},
		{name: "assert slos false", fixture: "completed", args: []string{"assert", "-c", "completed", "-c", "slos"}, golden: "assert-slos.txt", code: 1},
		{name: "assert failed run", fixture: "failed", args: []string{"assert", "-c", "completed,nofailure,slos"}, golden: "assert-failed.txt", code: 1},
		{name: "assert running", fixture: "running", args: []string{"assert", "-c", "completed"}, golden: "assert-running.txt", code: 1},
		{name: "assert unknown condition", fixture: "completed", args: []string{"assert", "-c", "fast"}, code: 2, stderr: `unknown condition "fast"`},
		{name: "assert no condition", fixture: "completed", args: []string{"assert"}, code: 2, stderr: "no condition given"},
		{name: "log", fixture: "completed", args: []string{"log"}, golden: "log.txt"},
		{name: "list without a cluster", args: []string{"list", "--kubeconfig", "/nonexistent/kubeconfig"}, code: 2, stderr: "list: connect to the cluster"},
		{name: "list bad format", args: []string{"list", "-o", "xml"}, code: 2, stderr: `unknown output format "xml"`},
		{name: "delete release without a cluster", args: []string{"delete", "perf", "--kubeconfig", "/nonexistent/kubeconfig"}, code: 2, stderr: "delete perf"},
		{name: "launch release without a cluster", args: []string{"launch", "perf", "--server", "https://127.0.0.1:1"}, code: 2, stderr: "release perf in namespace default: Kubernetes cluster unreachable"},
		{name: "launch spec without local", args: []string{"launch", "perf", "--spec", "x.yaml"}, code: 2, stderr: "--spec needs --local"},
		{name: "launch local with a chart version", args: []string{"launch", "--local", "--version", "1.0.0"}, code: 2, stderr: "--version is for charts from a repository"},
		{name: "launch local over plain HTTP", args: []string{"launch", "--local", "--plain-http"}, code: 2, stderr: "--plain-http is for charts from a registry"},
		{name: "launch plain HTTP without a chart", args: []string{"launch", "perf", "--plain-http"}, code: 2, stderr: "--version and --plain-http are for a chart from a repository or registry (-c)"},
		{name: "launch a version without a chart", args: []string{"launch", "perf", "--version", "1.0.0"}, code: 2, stderr: "--version and --plain-http are for a chart from a repository or registry (-c)"},
		{name: "launch dry without local", args: []string{"launch", "perf", "--dry"}, code: 2, stderr: "--dry needs --local"},
		{name: "launch needs --local or release", args: []string{"launch"}, code: 2, stderr: "give --local"},
		{name: "launch bad release name", args: []string{"launch", "--local", "Bad_Name"}, code: 2, stderr: `release name "Bad_Name"`},
		{name: "run nothing here", args: []string{"run"}, code: 2, stderr: "expected -f SPEC"},
		{name: "run in cluster without one", args: []string{"run", "--experiment", "perf", "--kubeconfig", "/nonexistent/kubeconfig"}, code: 2, stderr: "run experiment perf: connect to the cluster"},
		{name: "run workers account without job", args: []string{"run", "--workers-account", "w"}, code: 2, stderr: "--workers-account needs --job"},
		{name: "run worker without its index", args: []string{"run", "--experiment", "perf", "--worker-task", "0", "--worker-start", "2026-12-03T07:00:00Z", "--worker-owner", "u"}, code: 2, stderr: "--worker-task needs the environment variable JOB_COMPLETION_INDEX"},
		{name: "run worker start alone", args: []string{"run", "--worker-start", "2026-12-03T07:00:00Z"}, code: 2, stderr: "--worker-start and --worker-owner go with --worker-task"},
		{name: "unknown flag", args: []string{"report", "--bogus"}, code: 2, stderr: "unknown flag: --bogus"},
		{name: "version short", args: []string{"version", "--short"}, golden: "version-short.txt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.fixture != "" {
				args = append(args, "--file", fixture(t, tc.fixture))
			}
			stdout, stderr, code := execute(t, args...)
			if code != tc.code {
				t.Errorf("%v: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", tc.args, code, tc.code, stdout, stderr)
			}
			if tc.stderr != "" && !strings.Contains(stderr, tc.stderr) {
				t.Errorf("%v: stderr:\n%s\nwant it to contain %q", tc.args, stderr, tc.stderr)
			}
			if tc.golden != "" {
				checkGolden(t, tc.golden, stdout)
			}
		})
	}
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./pkg/cli -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestBothFrontEndsHaveTheSameCommands(t *testing.T) {
	names := func(fe Frontend) []string {
		var out []string
		for _, c := range NewRootCmd(fe, StdStreams()).Commands() {
			out = append(out, c.Name())
		}
		return out
	}
	h, k := strings.Join(names(Helm()), ","), strings.Join(names(Kubectl()), ",")
	if h != k {
		t.Errorf("helm commands %s\nkubectl commands %s", h, k)
	}
	for _, want := range []string{"launch", "run", "report", "assert", "log", "list", "delete", "version"} {
		if !strings.Contains(","+k+",", ","+want+",") {
			t.Errorf("command %s missing from %s", want, k)
		}
	}
}

func TestUsageNamesThePlugin(t *testing.T) {
	for _, fe := range []Frontend{Helm(), Kubectl()} {
		var out bytes.Buffer
		root := NewRootCmd(fe, IOStreams{Out: &out, ErrOut: &out})
		root.SetArgs([]string{"report", "--help"})
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), fe.DisplayName+" report") {
			t.Errorf("%s report --help does not name %q:\n%s", fe.DisplayName, fe.DisplayName+" report", out.String())
		}
	}
}

func TestCompletion(t *testing.T) {
	stdout, _, code := execute(t, "completion", "bash")
	if code != 0 || !strings.Contains(stdout, "bash completion") {
		t.Errorf("completion bash: code %d, output starts %.80q", code, stdout)
	}
	stdout, _, _ = execute(t, "__complete", "assert", "-c", "")
	for _, want := range []string{"completed", "nofailure", "slos"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("completion of assert -c lacks %s:\n%s", want, stdout)
		}
	}
}

// TestRunWorkerFlags: a worker Pod's flags and index are checked before
// anything connects, each refusal naming the flag or variable.
func TestRunWorkerFlags(t *testing.T) {
	worker := []string{"run", "--experiment", "perf", "--worker-task", "0", "--worker-start", "2026-12-03T07:00:00Z", "--worker-owner", "u"}
	for _, tc := range []struct {
		name, index string
		args        []string
		stderr      string
	}{
		{name: "index not a number", index: "x", args: worker, stderr: `JOB_COMPLETION_INDEX must be a worker index (a whole number from 0), got "x"`},
		{name: "index negative", index: "-1", args: worker, stderr: `JOB_COMPLETION_INDEX must be a worker index`},
		{name: "bad start", index: "0", args: []string{"run", "--experiment", "perf", "--worker-task", "0", "--worker-start", "7am", "--worker-owner", "u"}, stderr: "--worker-start: not a time"},
		{name: "no owner", index: "0", args: []string{"run", "--experiment", "perf", "--worker-task", "0", "--worker-start", "2026-12-03T07:00:00Z"}, stderr: "--worker-task needs --worker-owner"},
		{name: "negative task", index: "0", args: []string{"run", "--experiment", "perf", "--worker-task", "-2", "--worker-start", "2026-12-03T07:00:00Z", "--worker-owner", "u"}, stderr: "--worker-task must be a task's index (from 0), got -2"},
		{name: "with job", index: "0", args: append(slices.Clone(worker), "--job", "j"), stderr: "--worker-task needs --experiment, and neither --job"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("JOB_COMPLETION_INDEX", tc.index)
			_, stderr, code := execute(t, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("%v: exit %d, stderr:\n%s\nwant exit 2 and %q", tc.args, code, stderr, tc.stderr)
			}
		})
	}
}
