package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLaunchKeepsFilesItDidNotWrite checks that launch --local refuses to
// replace a spec it did not write, or a file beside it that is not an Iter8
// result, and leaves both as they were; --force replaces them.
func TestLaunchKeepsFilesItDidNotWrite(t *testing.T) {
	const handWritten = "apiVersion: iter8.tools/v1\nkind: Experiment\n# my own, hand-written\nspec:\n  tasks: []\n"
	cases := []struct {
		name  string
		files map[string]string
		args  []string
		want  []string
	}{
		{
			name:  "hand-written experiment.yaml",
			files: map[string]string{"experiment.yaml": handWritten},
			want:  []string{"experiment.yaml", "--force"},
		},
		{
			name:  "unrelated --spec",
			files: map[string]string{"notes.txt": "remember the milk\n"},
			args:  []string{"--spec", "notes.txt"},
			want:  []string{"notes.txt", "--force"},
		},
		{
			name:  "unrelated file where the result goes",
			files: map[string]string{"notes.result.json": `{"mine": true}`},
			args:  []string{"--spec", "notes.yaml"},
			want:  []string{"notes.result.json", "--force"},
		},
		{
			name: "spec path is a folder",
			args: []string{"--spec", "sub"},
			want: []string{"sub", "folder"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			for name, content := range tc.files {
				writeFile(t, dir, name, content)
			}
			args := append([]string{"launch", "--local", "--dry", "--set", "tasks={http}", "--set", "http.url=http://127.0.0.1:1/"}, tc.args...)
			out := iter8(t, dir, args...)
			checkNoCrash(t, out)
			if out.code != 2 {
				t.Errorf("exit %d, want 2\n%s", out.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.stderr, w) {
					t.Errorf("stderr lacks %q\n%s", w, out)
				}
			}
			checkFilesUnchanged(t, dir, tc.files)
			if names := dirNames(t, dir); len(names) != len(tc.files)+1 {
				t.Errorf("folder holds %v, want only the test's files and sub/", names)
			}

			// --force replaces a file, never a folder.
			if len(tc.files) == 0 {
				return
			}
			out = iter8(t, dir, append(args, "--force")...)
			if out.code != 0 {
				t.Fatalf("with --force: exit %d\n%s", out.code, out)
			}
		})
	}
}

// TestLaunchReplacesItsOwnSpec checks that launch --local rewrites a spec it
// wrote itself without --force, and that the old result goes with the old
// spec: report and assert then say there is no result instead of showing and
// passing on the previous run.
func TestLaunchReplacesItsOwnSpec(t *testing.T) {
	tg := newTarget(t)
	dir := t.TempDir()
	first := iter8(t, dir, "launch", "--local",
		"--set", "tasks={ready}", "--set", "ready.url="+tg.url())
	if first.code != 0 {
		t.Fatalf("first launch: %s", first)
	}
	if !fileExists(filepath.Join(dir, "experiment.result.json")) {
		t.Fatalf("first launch wrote no result")
	}
	if out := iter8(t, dir, "assert", "-c", "completed,nofailure"); out.code != 0 {
		t.Fatalf("assert after the first launch: %s", out)
	}

	// A new spec, not run: the old result must not pass for it.
	dry := iter8(t, dir, "launch", "--local", "--dry",
		"--set", "tasks={http}", "--set", "http.url=http://127.0.0.1:1/")
	if dry.code != 0 {
		t.Fatalf("launch --dry over launch's own spec: %s", dry)
	}
	spec, err := os.ReadFile(filepath.Join(dir, "experiment.yaml"))
	if err != nil || !strings.Contains(string(spec), "127.0.0.1:1") {
		t.Fatalf("experiment.yaml is not the new spec (err %v):\n%s", err, spec)
	}
	if fileExists(filepath.Join(dir, "experiment.result.json")) {
		t.Errorf("the old result is still beside the new spec")
	}
	if out := iter8(t, dir, "report"); out.code != 2 || !strings.Contains(out.stderr, "no result") {
		t.Errorf("report after a new spec: want exit 2 and no result\n%s", out)
	}
	if out := iter8(t, dir, "assert", "-c", "completed"); out.code == 0 {
		t.Errorf("assert passed on the previous run's result\n%s", out)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
