package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

func TestResultPath(t *testing.T) {
	for in, want := range map[string]string{
		"experiment.yaml":  "experiment.result.json",
		"dir/perf.yml":     "dir/perf.result.json",
		"spec":             "spec.result.json",
		"/a/b.c/spec.json": "/a/b.c/spec.result.json",
	} {
		if got := ResultPath(in); got != want {
			t.Errorf("ResultPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteReadDelete(t *testing.T) {
	dir := t.TempDir()
	f := &File{SpecPath: filepath.Join(dir, "e.yaml")}
	ctx := context.Background()
	if _, err := f.ReadResult(ctx); !errors.Is(err, ErrNoResult) {
		t.Fatalf("ReadResult before any write = %v, want ErrNoResult", err)
	}
	if err := f.WriteSpec([]byte("apiVersion: iter8.tools/v1\nkind: Experiment\n")); err != nil {
		t.Fatal(err)
	}
	r := &experiment.Result{Experiment: "e", Revision: 1, StartTime: time.Now(), Versions: []experiment.VersionResult{{Name: "v1"}}}
	r.SetMetric("v1", "http/request-count", 10, "")
	for i := 0; i < 3; i++ { // rewrites replace the file whole
		if err := f.WriteResult(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.ReadResult(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := got.Value("v1", "http/request-count"); !ok || v != 10 {
		t.Errorf("read back request-count %v %v, want 10", v, ok)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("folder holds %d entries, want the spec and the result only (no temp files)", len(entries))
	}
	removed, err := f.Delete(ctx)
	if err != nil || len(removed) != 2 {
		t.Errorf("Delete = %v, %v; want both files removed", removed, err)
	}
	if removed, err := f.Delete(ctx); err == nil || len(removed) != 0 {
		t.Errorf("second Delete = %v, %v; want nothing removed and an error saying there is no experiment", removed, err)
	}
}

func TestReadCorruptResult(t *testing.T) {
	dir := t.TempDir()
	f := &File{SpecPath: filepath.Join(dir, "e.yaml")}
	if err := os.WriteFile(f.ResultPath(), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := f.ReadResult(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not a valid result file") {
		t.Errorf("ReadResult of a corrupt file = %v", err)
	}
}

func TestWriteIntoMissingFolderFails(t *testing.T) {
	f := &File{SpecPath: filepath.Join(t.TempDir(), "missing", "e.yaml")}
	if err := f.WriteResult(context.Background(), &experiment.Result{}); err == nil {
		t.Error("WriteResult into a missing folder succeeded")
	}
}

// TestReadResultRefusesEmptyDocuments: a result file holding null, a list
// or an empty object used to read as an empty experiment, which a report
// showed as if a run had happened.
func TestReadResultRefusesEmptyDocuments(t *testing.T) {
	for _, content := range []string{"null\n", "  ", "[]", `"x"`, "{}"} {
		dir := t.TempDir()
		f := &File{SpecPath: filepath.Join(dir, "e.yaml")}
		if err := os.WriteFile(f.ResultPath(), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := f.ReadResult(context.Background())
		if err == nil || !strings.Contains(err.Error(), f.ResultPath()) || !strings.Contains(err.Error(), "not a valid result file") {
			t.Errorf("ReadResult of %q = %+v, %v; want an error naming %s", content, r, err, f.ResultPath())
		}
	}
}

// TestFileRevisionsUpdateAndWatch: a local experiment keeps one result,
// which Update changes in place and Watch reports, even when a rewrite has
// the old size.
func TestFileRevisionsUpdateAndWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &File{SpecPath: filepath.Join(t.TempDir(), "e.yaml")}
	changes, err := f.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Update(ctx, func(r *experiment.Result) error {
		r.Experiment, r.Revision = "e", 2
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitForChange(t, changes)
	if r, err := f.ReadRevision(ctx, 0); err != nil || r.Revision != 2 {
		t.Errorf("ReadRevision(0) = %v, %v; want the one result, of revision 2", r, err)
	}
	if _, err := f.ReadRevision(ctx, 1); !errors.Is(err, ErrNoResult) {
		t.Errorf("ReadRevision(1) = %v; want ErrNoResult: the file keeps revision 2", err)
	}
	if err := f.Update(ctx, func(r *experiment.Result) error {
		r.Experiment = "f" // same length: the file keeps its size
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitForChange(t, changes)
	if r, err := f.ReadResult(ctx); err != nil || r.Experiment != "f" || r.Revision != 2 {
		t.Errorf("after Update: %+v, %v; want experiment f of revision 2", r, err)
	}
}

func waitForChange(t *testing.T, changes <-chan struct{}) {
	t.Helper()
	select {
	case <-changes:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch reported no change within 10s")
	}
}
