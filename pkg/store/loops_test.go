package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/stats"
	"github.com/iter8-tools/iter8/pkg/task/load"
)

// wideLoad sets, in every loop, what the http task records for five
// versions with three named endpoints each: 4 × 13 metrics and 4 latency
// histograms per version. They are recorded once, in a result of their own,
// and copied: their size, not their values, matters here.
type wideLoad struct{ recorded *experiment.Result }

func newWideLoad(versions []string) (*wideLoad, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := &experiment.Result{}
	var measured []*load.Measured
	for _, v := range versions {
		r.Versions = append(r.Versions, experiment.VersionResult{Name: v})
		for e := range 3 {
			start := time.Unix(1_700_000_000, 0)
			rec, at := stats.NewRecorder(10*time.Second, start), start
			for range 400 {
				d := time.Duration(float64(5*time.Millisecond) * math.Exp(0.5*rng.NormFloat64()))
				rec.Record(at, d, false)
				at = at.Add(d)
			}
			measured = append(measured, &load.Measured{
				Target: load.Target{Version: v, Name: fmt.Sprint("endpoint", e)}, Requests: 400, Errors: 3, Latency: rec.Histogram(),
			})
		}
	}
	return &wideLoad{recorded: r}, load.Record(r, "http", measured, []float64{50, 75, 90, 95, 99, 99.9})
}

func (w *wideLoad) Run(_ context.Context, env *experiment.Env) error {
	for _, v := range w.recorded.Versions {
		for name, m := range v.Metrics {
			env.Result.SetMetric(v.Name, name, m.Value, m.Unit)
		}
		for name, h := range v.Histograms {
			env.Result.SetHistogram(v.Name, name, h)
		}
		for name, s := range v.Samples {
			env.Result.SetSample(v.Name, name, s)
		}
	}
	return nil
}

// TestLongLoopingResultFitsASecret runs 200 loops of a wide experiment and
// checks that its result, history included, fits the Secret's budget with
// room for other revisions, histograms and all.
func TestLongLoopingResultFitsASecret(t *testing.T) {
	reg := experiment.NewRegistry()
	reg.Register("wide", func(d *experiment.Decoding) (experiment.Task, field.ErrorList) {
		w, err := newWideLoad(d.Versions)
		if err != nil {
			return nil, field.ErrorList{field.InternalError(d.Path, err)}
		}
		return w, nil
	})
	plan, err := experiment.Decode([]byte(`apiVersion: iter8.tools/v1
kind: Experiment
metadata: {name: wide}
spec: {loops: 200, versions: [v1, v2, v3, v4, v5], tasks: [{task: wide}]}`), experiment.DecodeOptions{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	noWait := func(context.Context, time.Time) error { return nil }
	res, err := (&experiment.Runner{Wait: noWait}).Run(context.Background(), plan)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	history, _ := json.Marshal(res.History)
	t.Logf("after %d loops: %d loops in history (%d bytes), result %d bytes", res.Loop, len(res.History), len(history), len(b))
	if len(b) > ResultBudget/2 {
		t.Errorf("the result takes %d bytes, more than half the Secret's budget of %d", len(b), ResultBudget)
	}
	if n := len(res.History); n < 8 || res.History[0].Loop != 1 || res.History[n-1].Loop != 200 {
		t.Errorf("history keeps %d loops from %d to %d; want at least 8, from 1 to 200", n, res.History[0].Loop, res.History[n-1].Loop)
	}
	if got := len(res.History[0].Metrics["v5"]); got != 4*13 {
		t.Errorf("a loop keeps %d metrics of v5, want %d", got, 4*13)
	}
}
