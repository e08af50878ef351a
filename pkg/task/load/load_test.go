package load

import (
	"context"
	"math"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/stats"
)

func TestEndpointChecker(t *testing.T) {
	targets := []Target{{Version: "v1", Name: "a"}, {Version: "v1", Name: "a"}, {Version: "v1"}, {Version: "v9"}, {Version: "v2", Name: "bad name"}}
	c := newEndpointChecker("http", []string{"v1", "v2"}, targets)
	var got []string
	for i, tg := range targets {
		ok, errs := c.check(field.NewPath("endpoints").Index(i), tg)
		for _, e := range errs {
			got = append(got, e.Field+" "+string(e.Type))
		}
		if want := tg.Version != "v9"; ok != want {
			t.Errorf("check(%+v) ok = %v, want %v", tg, ok, want)
		}
	}
	want := []string{
		"endpoints[1].name FieldValueDuplicate",
		"endpoints[2].name FieldValueRequired",
		"endpoints[3].version FieldValueNotSupported",
		"endpoints[4].name FieldValueInvalid",
	}
	if len(got) != len(want) {
		t.Fatalf("errors %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("error %d = %s, want %s", i, got[i], want[i])
		}
	}
}

func TestSingleVersion(t *testing.T) {
	p := field.NewPath("with")
	if v, err := singleVersion(p, []string{""}, nil, "url"); err != nil || v != "" {
		t.Errorf("one unnamed version: %q, %v", v, err)
	}
	if _, err := singleVersion(p, []string{"a", "b"}, nil, "url"); err == nil || err.Field != "with.version" {
		t.Errorf("two versions without version: %v", err)
	}
	b := "b"
	if v, err := singleVersion(p, []string{"a", "b"}, &b, "url"); err != nil || v != "b" {
		t.Errorf("version b: %q, %v", v, err)
	}
}

func TestRecordSumsEndpointsPerVersion(t *testing.T) {
	plan, err := experiment.Decode([]byte("apiVersion: iter8.tools/v1\nkind: Experiment\nmetadata: {name: e}\nspec: {versions: [v1], tasks: [{task: nop}]}"),
		experiment.DecodeOptions{Registry: nopRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	r := experiment.NewResult(plan, 1, time.Now())
	hist := func(d time.Duration, n int) *stats.Histogram {
		start := time.Unix(1_700_000_000, 0)
		rec := stats.NewRecorder(time.Second, start)
		for i := 0; i < n; i++ {
			rec.Record(start.Add(time.Duration(i)*d), d, false)
		}
		return rec.Histogram()
	}
	err = Record(r, "http", []*Measured{
		{Target: Target{Version: "v1", Name: "a"}, Requests: 10, Errors: 1, Latency: hist(time.Millisecond, 10)},
		nil,
		{Target: Target{Version: "v1", Name: "b"}, Requests: 30, Errors: 0, Latency: hist(3*time.Millisecond, 30)},
	}, []float64{50})
	if err != nil {
		t.Fatal(err)
	}
	for metric, want := range map[string]float64{
		"http/request-count": 40, "http/error-count": 1, "http/error-rate": 0.025,
		"http-a/request-count": 10, "http-b/latency-p50": 3, "http/latency-min": 1, "http/latency-max": 3,
	} {
		if got, ok := r.Value("v1", metric); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", metric, got, ok, want)
		}
	}
	// The samples behind rates and means, for comparisons and rewards.
	if s, ok := r.Sample("v1", "http/error-rate"); !ok || s != stats.RateSample(1, 40) {
		t.Errorf("sample of http/error-rate = %+v (present %v), want 1 of 40", s, ok)
	}
	s, ok := r.Sample("v1", "http/latency-mean")
	// 10 values at 1ms and 30 at 3ms (within the histogram's 0.1%): mean
	// 2.5ms, standard deviation sqrt(0.75) ms.
	if !ok || s.Kind != stats.KindMean || s.Count != 40 || math.Abs(s.Mean-2.5) > 0.005 || math.Abs(s.Stdev-math.Sqrt(0.75)) > 0.005 {
		t.Errorf("sample of http/latency-mean = %+v (present %v), want 40 values, mean 2.5, stdev 0.866", s, ok)
	}
	if s, ok := r.Sample("v1", "http-a/error-rate"); !ok || s != stats.RateSample(1, 10) {
		t.Errorf("sample of http-a/error-rate = %+v (present %v), want 1 of 10", s, ok)
	}
}

type nopTask struct{}

func (nopTask) Run(_ context.Context, _ *experiment.Env) error { return nil }

func nopRegistry() *experiment.Registry {
	reg := experiment.NewRegistry()
	reg.Register("nop", func(*experiment.Decoding) (experiment.Task, field.ErrorList) { return nopTask{}, nil })
	return reg
}
