package action

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/store"
)

type noopTask struct{}

func (noopTask) Run(context.Context, *experiment.Env) error { return nil }

// TestRunResumeLog: a resumed run's log goes on from the stored one; a run
// that starts over, the stored result being of another spec, has a log of
// its own.
func TestRunResumeLog(t *testing.T) {
	const earlier = "a line of the earlier pod"
	tests := []struct {
		name   string
		tasks  []string
		seeded bool
	}{
		{"resumed", []string{"noop"}, true},
		{"another spec", []string{"http", "assess"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := filepath.Join(t.TempDir(), "experiment.yaml")
			if err := os.WriteFile(spec, []byte("apiVersion: iter8.tools/v1\nkind: Experiment\nmetadata: {name: e}\nspec: {tasks: [{task: noop}]}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			stored := &experiment.Result{Experiment: "e", Revision: 1, Versions: []experiment.VersionResult{{}}, Loop: 1, Loops: 1, Log: []string{earlier}}
			for _, task := range tt.tasks {
				stored.Tasks = append(stored.Tasks, experiment.TaskResult{Task: task, State: experiment.TaskPending})
			}
			writeResult(t, spec, stored)
			cfg := NewConfiguration()
			cfg.Registry = experiment.NewRegistry()
			cfg.Registry.Register("noop", func(*experiment.Decoding) (experiment.Task, field.ErrorList) { return noopTask{}, nil })
			a := NewRun(cfg)
			a.Experiment, a.Resume = &store.File{SpecPath: spec}, true
			res, err := a.Run(context.Background())
			if err != nil || len(res.Log) < 2 {
				t.Fatalf("run --resume: %v, log %q", err, res.Log)
			}
			if got := slices.Contains(res.Log, earlier); got != tt.seeded {
				t.Errorf("run --resume of a stored result of tasks %v: log %q; want the stored line in it: %v", tt.tasks, res.Log, tt.seeded)
			}
		})
	}
}
