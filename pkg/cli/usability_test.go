package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// unquotedSetValue finds a --set value that a shell would change before
// iter8 sees it: braces (bash's brace expansion turns tasks={http,assess}
// into two words) or brackets, * and ? (globs; zsh refuses a glob that
// matches nothing).
var unquotedSetValue = regexp.MustCompile(`--set(?:-string|-json|-file)?[ =]([^'"\s]\S*)`)

// TestHelpExamplesPasteIntoAShell checks every command's help, in both
// front-ends, for examples that would fail when pasted into bash or zsh.
func TestHelpExamplesPasteIntoAShell(t *testing.T) {
	for _, fe := range []Frontend{Helm(), Kubectl()} {
		var walk func(c *cobra.Command)
		walk = func(c *cobra.Command) {
			for _, m := range unquotedSetValue.FindAllStringSubmatch(c.Long+"\n"+c.Example, -1) {
				if strings.ContainsAny(m[1], "{}[]*?") {
					t.Errorf("%s: help example %q: quote the value ('...') so that the shell leaves it alone", c.CommandPath(), m[0])
				}
			}
			for _, sub := range c.Commands() {
				walk(sub)
			}
		}
		walk(NewRootCmd(fe, StdStreams()))
	}
}

// TestFileWhereReleaseGoes checks that a spec path given where a release
// name goes is explained, not looked up as a release.
func TestFileWhereReleaseGoes(t *testing.T) {
	for _, args := range [][]string{
		{"report", "experiment.yaml"},
		{"assert", "perf.yml", "-c", "completed"},
		{"log", "dir/e.yaml"},
		{"delete", "experiment.yaml"},
	} {
		_, stderr, code := execute(t, append(args, "--kubeconfig", "/nonexistent/kubeconfig")...)
		want := args[1] + " looks like a file: use -f " + args[1]
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant exit 2 and %q", args, code, stderr, want)
		}
		if strings.Contains(stderr, "connect to the cluster") {
			t.Errorf("%v: looked for a release:\n%s", args, stderr)
		}
	}
}

// TestLaunchValuesFileThatIsASpec checks that launch's -f (values, as in
// Helm) given an experiment spec says what -f means here and what to use.
func TestLaunchValuesFileThatIsASpec(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "experiment.yaml")
	data := "apiVersion: iter8.tools/v1\nkind: Experiment\nspec:\n  tasks: []\n"
	if err := os.WriteFile(spec, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := execute(t, "launch", "--local", "--dry", "--spec", filepath.Join(dir, "out.yaml"), "-f", spec)
	for _, want := range []string{spec, "experiment spec", "values", "run -f"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr:\n%s\nwant it to contain %q", stderr, want)
		}
	}
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "out.yaml")); err == nil {
		t.Errorf("launch wrote out.yaml")
	}
}

// TestNoClusterConfigured checks that both front-ends, with no kubeconfig
// and no --server, say so at once instead of trying client-go's fallback of
// http://localhost:8080.
func TestNoClusterConfigured(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "no-such-kubeconfig"))
	t.Setenv("HOME", t.TempDir()) // no ~/.kube/config either
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	for _, fe := range []Frontend{Helm(), Kubectl()} {
		var out, errOut bytes.Buffer
		root := NewRootCmd(fe, IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		root.SetArgs([]string{"list"})
		err := root.ExecuteContext(context.Background())
		want := "list: connect to the cluster: no cluster configured: set KUBECONFIG or --kubeconfig"
		if err == nil || err.Error() != want || ExitCode(err) != 2 {
			t.Errorf("%s list: %v (exit %d), want %q (exit 2)", fe.DisplayName, err, ExitCode(err), want)
		}
	}
}
