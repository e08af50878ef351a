// Package experimenttest helps test tasks outside package experiment: it
// gives a task's Decoder what experiment.Decode would, and an Env to run the
// task in, as Runner does. It is for tests only.
package experimenttest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// WithPath is the path of the `with` block that Decoding describes.
var WithPath = field.NewPath("spec", "tasks").Index(0).Child("with")

// Decoding returns what experiment.Decode hands to the decoder of the first
// task of an experiment with the given versions (nil: one unnamed version),
// for a YAML or JSON `with` block, and the plan around it. The Catalog is
// the real one, captured by a stand-in task.
func Decoding(t testing.TB, with string, versions []string, readFile func(string) ([]byte, error)) (*experiment.Decoding, *experiment.Plan) {
	t.Helper()
	withJSON, err := yaml.YAMLToJSON([]byte(with))
	if err != nil {
		t.Fatalf("with block %q is not YAML: %v", with, err)
	}
	var catalog *experiment.Catalog
	reg := experiment.NewRegistry()
	reg.Register("capture", func(d *experiment.Decoding) (experiment.Task, field.ErrorList) {
		catalog = d.Metrics
		return nopTask{}, nil
	})
	spec, err := yaml.Marshal(map[string]any{
		"apiVersion": experiment.APIVersion,
		"kind":       experiment.Kind,
		"metadata":   map[string]any{"name": "test"},
		"spec":       map[string]any{"versions": versions, "tasks": []any{map[string]any{"task": "capture"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := experiment.Decode(spec, experiment.DecodeOptions{Registry: reg})
	if err != nil {
		t.Fatalf("decode the test experiment: %v", err)
	}
	return &experiment.Decoding{
		With:     withJSON,
		Path:     WithPath,
		Versions: plan.Experiment.Spec.VersionNames(),
		Loops:    1,
		Metrics:  catalog,
		ReadFile: readFile,
	}, plan
}

// Env returns an Env with a fresh Result for plan, no secrets and the real
// clock; log lines go to log (nil: nowhere).
func Env(plan *experiment.Plan, log io.Writer) *experiment.Env {
	handler := slog.Handler(slog.DiscardHandler)
	if log != nil {
		handler = slog.NewTextHandler(log, nil)
	}
	return &experiment.Env{
		Result:   experiment.NewResult(plan, 1, time.Now()),
		Versions: plan.Experiment.Spec.VersionNames(),
		Log:      slog.New(handler),
		Progress: io.Discard,
		Secret:   func(string) (string, bool) { return "", false },
		Now:      time.Now,
	}
}

type nopTask struct{}

func (nopTask) Run(context.Context, *experiment.Env) error { return nil }
