package assess

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// plan decodes a spec whose first task produces m/a and m/b for every
// version, followed by an assess task with the given `with` block.
func plan(t *testing.T, versions, with string) (*experiment.Plan, error) {
	t.Helper()
	return planAfter(t, versions, with, func(c *experiment.Catalog, v string) {
		c.Add(v, "m/a")
		c.Add(v, "m/b")
	})
}

// planAfter decodes a spec whose first task declares, through produce, what
// it produces for each version, followed by an assess task with the given
// `with` block.
func planAfter(t *testing.T, versions, with string, produce func(c *experiment.Catalog, version string)) (*experiment.Plan, error) {
	t.Helper()
	reg := experiment.NewRegistry()
	reg.Register("produce", func(d *experiment.Decoding) (experiment.Task, field.ErrorList) {
		for _, v := range d.Versions {
			produce(d.Metrics, v)
		}
		return nil, nil
	})
	reg.Register(Name, Decode)
	spec := "apiVersion: iter8.tools/v1\nkind: Experiment\nmetadata: {name: e}\nspec:\n  versions: " + versions +
		"\n  tasks:\n  - task: produce\n  - task: assess\n    with: " + with + "\n"
	return experiment.Decode([]byte(spec), experiment.DecodeOptions{Registry: reg})
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ with, want string }{
		{"{}", "spec.tasks[1].with.slos: Required value"},
		{"{slos: [{metric: m/a}]}", "spec.tasks[1].with.slos[0].upper: Required value"},
		{"{slos: [{metric: m/a, upper: 1, lower: 2}]}", "spec.tasks[1].with.slos[0].lower: Invalid value: 2"},
		{"{slos: [{metric: m/zzz, upper: 1}]}", `spec.tasks[1].with.slos[0].metric: Invalid value: "m/zzz": no earlier task produces it; known metrics: m/a, m/b`},
		{"{slos: [{metric: '', upper: 1}]}", "spec.tasks[1].with.slos[0].metric: Required value"},
		{"{slos: [{metric: m/a, upper: 1, version: v9}]}", `spec.tasks[1].with.slos[0].version: Unsupported value: "v9"`},
		{"{rewards: {max: [m/a], min: [m/nope]}}", "spec.tasks[1].with.rewards.min[0]: Invalid value"},
		{"{slos: [{metric: m/a, upper: x}]}", "spec.tasks[1].with.slos[0].upper: got string, want a number"},
		{"{slo: []}", "spec.tasks[1].with.slo: unknown field"},
		// 1e999 is beyond float64: YAML keeps it a string, which is refused,
		// never rounded to infinity or coerced to 0 (issue 13).
		{"{slos: [{metric: m/a, upper: 1e999}]}", "got string, want a number"},
		{"{slos: [{metric: m/a, lower: -1e999}]}", "got string, want a number"},
	}
	for _, tc := range tests {
		_, err := plan(t, "[v1, v2]", tc.with)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("with %s: error = %v\nwant it to contain %q", tc.with, err, tc.want)
		}
	}
}

func run(t *testing.T, with string, values map[string]map[string]float64) *experiment.Result {
	t.Helper()
	p, err := plan(t, "[v1, v2, v3]", with)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	res := experiment.NewResult(p, 1, time.Time{})
	for v, ms := range values {
		for m, val := range ms {
			res.SetMetric(v, m, val, "")
		}
	}
	env := &experiment.Env{Result: res, Versions: []string{"v1", "v2", "v3"}, Log: slog.New(slog.DiscardHandler)}
	if err := p.Tasks[1].Task.Run(context.Background(), env); err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func verdicts(r *experiment.Result) string {
	var out []string
	for _, v := range r.SLOs {
		s := v.Version + ":" + v.Metric + "="
		if v.Satisfied {
			s += "ok"
		} else {
			s += "no"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

func TestVerdictsAndWinner(t *testing.T) {
	values := map[string]map[string]float64{
		"v1": {"m/a": 10, "m/b": 0.5},
		"v2": {"m/a": 5, "m/b": 0.9},
		"v3": {"m/b": 0.1}, // no m/a
	}
	tests := []struct {
		name, with, wantSLOs, wantWinner string
	}{
		{
			name:       "upper bound on every version; a missing value is not satisfied",
			with:       "{slos: [{metric: m/a, upper: 8}], rewards: {min: [m/a]}}",
			wantSLOs:   "v1:m/a=no v2:m/a=ok v3:m/a=no",
			wantWinner: "v2",
		},
		{
			name:       "lower bound on one version",
			with:       "{slos: [{metric: m/b, lower: 0.6, version: v2}], rewards: {max: [m/b]}}",
			wantSLOs:   "v2:m/b=ok",
			wantWinner: "v2",
		},
		{
			name:       "the winner must meet its SLOs",
			with:       "{slos: [{metric: m/b, upper: 0.8}], rewards: {max: [m/b]}}",
			wantSLOs:   "v1:m/b=ok v2:m/b=no v3:m/b=ok",
			wantWinner: "v1",
		},
		{
			name:       "bounds are inclusive",
			with:       "{slos: [{metric: m/a, lower: 5, upper: 10}]}",
			wantSLOs:   "v1:m/a=ok v2:m/a=ok v3:m/a=no",
			wantWinner: "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, tc.with, values)
			if got := verdicts(res); got != tc.wantSLOs {
				t.Errorf("verdicts = %s\nwant       %s", got, tc.wantSLOs)
			}
			if res.Winner != tc.wantWinner {
				t.Errorf("winner = %q, want %q", res.Winner, tc.wantWinner)
			}
		})
	}
}

func TestMissingValueHasReason(t *testing.T) {
	res := run(t, "{slos: [{metric: m/a, upper: 8, version: v3}]}", nil)
	if len(res.SLOs) != 1 || res.SLOs[0].Satisfied || res.SLOs[0].Value != nil || res.SLOs[0].Reason == "" {
		t.Fatalf("SLOs = %+v; want one unsatisfied verdict with no value and a reason", res.SLOs)
	}
}

func TestRewardBestPerMetric(t *testing.T) {
	res := run(t, "{rewards: {max: [m/b], min: [m/a]}}", map[string]map[string]float64{
		"v1": {"m/a": 10, "m/b": 0.5},
		"v2": {"m/a": 5, "m/b": 0.9},
	})
	got := map[string]string{}
	for _, r := range res.Rewards {
		got[r.Metric+"/"+string(r.Direction)] = r.Best
	}
	if got["m/b/max"] != "v2" || got["m/a/min"] != "v2" || res.Winner != "v2" {
		t.Errorf("rewards = %v winner %q; want v2 best on both and the winner", got, res.Winner)
	}
}
