package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeleteRefusesWhatIsNotAnExperiment checks that `delete -f` removes
// only an Iter8 spec and its result: anything else is refused with exit 2
// and left in place, together with the file beside it.
func TestDeleteRefusesWhatIsNotAnExperiment(t *testing.T) {
	cases := []struct {
		name string
		// files are written into the test's folder before delete runs.
		files map[string]string
		// dirs are made there (empty).
		dirs []string
		file string
		want []string
	}{
		{
			name:  "go source",
			files: map[string]string{"main.go": "package main\n\nfunc main() {}\n"},
			file:  "main.go",
			want:  []string{"main.go", "not an Iter8 experiment spec"},
		},
		{
			name:  "yaml of another kind",
			files: map[string]string{"deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n"},
			file:  "deploy.yaml",
			want:  []string{"deploy.yaml", "apiVersion iter8.tools/v1", "kind Experiment"},
		},
		{
			name: "spec beside a file that is not its result",
			files: map[string]string{
				"notes.txt":         "remember the milk\n",
				"notes.result.json": `{"some": "other tool's file"}`,
			},
			file: "notes.txt",
			want: []string{"notes.txt", "not an Iter8 experiment spec"},
		},
		{
			name:  "result that is not an Iter8 result",
			files: map[string]string{"data.result.json": `[1, 2, 3]`},
			file:  "data.yaml",
			want:  []string{"data.result.json", "not an Iter8 result"},
		},
		{
			name: "empty folder",
			dirs: []string{"empty"},
			file: "empty",
			want: []string{"empty", "folder"},
		},
		{
			name: "nothing there",
			file: "gone.yaml",
			want: []string{"gone.yaml", "no experiment"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				writeFile(t, dir, name, content)
			}
			for _, d := range tc.dirs {
				if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			out := iter8(t, dir, "delete", "-f", tc.file)
			checkNoCrash(t, out)
			if out.code != 2 {
				t.Errorf("exit %d, want 2\n%s", out.code, out)
			}
			if strings.Contains(out.stdout, "removed") {
				t.Errorf("stdout reports a removal:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.stderr, w) {
					t.Errorf("stderr lacks %q\n%s", w, out)
				}
			}
			checkFilesUnchanged(t, dir, tc.files)
			for _, d := range tc.dirs {
				if !fileExists(filepath.Join(dir, d)) {
					t.Errorf("folder %s was removed", d)
				}
			}
		})
	}
}

// TestDeleteRemovesAnExperiment checks the other side: a spec and its
// result go, named on stdout, with exit 0; so does a result whose spec is
// gone.
func TestDeleteRemovesAnExperiment(t *testing.T) {
	tg := newTarget(t)
	dir := t.TempDir()
	writeFile(t, dir, "e.yaml", strings.ReplaceAll(`apiVersion: iter8.tools/v1
kind: Experiment
metadata:
  name: del
spec:
  tasks:
  - task: ready
    with: {url: "{{URL}}", timeout: 5s}
`, "{{URL}}", tg.url()))
	if out := iter8(t, dir, "run", "-f", "e.yaml"); out.code != 0 {
		t.Fatalf("run: %s", out)
	}
	// A copy of the result without its spec: delete takes it alone.
	data, err := os.ReadFile(filepath.Join(dir, "e.result.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "orphan.result.json", string(data))

	out := iter8(t, dir, "delete", "-f", "e.yaml")
	if out.code != 0 || !strings.Contains(out.stdout, "removed e.yaml") || !strings.Contains(out.stdout, "removed e.result.json") {
		t.Errorf("delete -f e.yaml: want exit 0 naming both files\n%s", out)
	}
	out = iter8(t, dir, "delete", "-f", "orphan.yaml")
	if out.code != 0 || !strings.Contains(out.stdout, "removed orphan.result.json") {
		t.Errorf("delete -f orphan.yaml: want exit 0 naming the result\n%s", out)
	}
	for _, f := range []string{"e.yaml", "e.result.json", "orphan.result.json"} {
		if fileExists(filepath.Join(dir, f)) {
			t.Errorf("%s is still there", f)
		}
	}
}
