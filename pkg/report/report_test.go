package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

func result(values map[string]float64, metric string) *experiment.Result {
	r := &experiment.Result{}
	for _, v := range []string{"a", "b", "c"} {
		r.Versions = append(r.Versions, experiment.VersionResult{Name: v})
		if val, ok := values[v]; ok {
			r.SetMetric(v, metric, val, "")
		}
	}
	return r
}

func TestBest(t *testing.T) {
	tests := []struct {
		name   string
		metric string
		values map[string]float64
		reward *experiment.RewardResult
		want   string
	}{
		{"lower latency wins", "http/latency-p99", map[string]float64{"a": 5, "b": 3, "c": 9}, nil, "b"},
		{"lower error rate wins", "http/error-rate", map[string]float64{"a": 0.1, "b": 0.2}, nil, "a"},
		{"endpoint metrics too", "http-login/latency-mean", map[string]float64{"a": 5, "b": 3}, nil, "b"},
		{"a tie has no best", "http/error-count", map[string]float64{"a": 0, "b": 0, "c": 1}, nil, ""},
		{"no direction for counts", "http/request-count", map[string]float64{"a": 5, "b": 3}, nil, ""},
		{"no direction for stddev", "http/latency-stddev", map[string]float64{"a": 5, "b": 3}, nil, ""},
		{"a reward's best", "abn/sales", map[string]float64{"a": 5, "b": 3}, &experiment.RewardResult{Metric: "abn/sales", Direction: "max", Best: "a"}, "a"},
		{"missing values are skipped", "http/latency-p50", map[string]float64{"c": 1}, nil, "c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := result(tc.values, tc.metric)
			if tc.reward != nil {
				r.Rewards = append(r.Rewards, *tc.reward)
			}
			if got := Best(r, tc.metric); got != tc.want {
				t.Errorf("Best(%s over %v) = %q, want %q", tc.metric, tc.values, got, tc.want)
			}
		})
	}
}

func TestFormatsRoundTrip(t *testing.T) {
	r := result(map[string]float64{"a": 1.5, "b": 2}, "http/latency-p99")
	for _, f := range []Format{JSON, YAML} {
		var buf bytes.Buffer
		if err := Write(&buf, r, f); err != nil {
			t.Fatal(err)
		}
		var back experiment.Result
		var err error
		if f == JSON {
			err = json.Unmarshal(buf.Bytes(), &back)
		} else {
			err = yaml.Unmarshal(buf.Bytes(), &back)
		}
		if err != nil {
			t.Fatalf("%s does not read back: %v", f, err)
		}
		if v, ok := back.Value("b", "http/latency-p99"); !ok || v != 2 {
			t.Errorf("%s round trip lost b's value: %v %v", f, v, ok)
		}
	}
}

func TestParseFormat(t *testing.T) {
	if f, err := ParseFormat("YAML"); err != nil || f != YAML {
		t.Errorf("ParseFormat(YAML) = %v, %v", f, err)
	}
	if _, err := ParseFormat("xml"); err == nil || !strings.Contains(err.Error(), "text, html, json, yaml") {
		t.Errorf("ParseFormat(xml) error = %v, want the list of formats", err)
	}
}

// TestTextShowsBackendMetrics: backend metrics sit beside the built-in ones
// with their units, and one a backend could not give shows n/a and why.
func TestTextShowsBackendMetrics(t *testing.T) {
	r := result(map[string]float64{"a": 4.25, "b": 9}, "http/latency-mean")
	r.SetMetric("a", "istio/latency-p99", 12, "msec")
	r.SetUnavailable("b", "istio/latency-p99", "jq yielded no value (no data for the query?)")
	var buf bytes.Buffer
	if err := Write(&buf, r, Text); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	// Notes are wrapped to 80 columns: compare words.
	words := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{
		"istio/latency-p99 (msec)",
		"http/latency-mean",
		"istio/latency-p99 for b: unavailable: jq yielded no value (no data for the query?)",
	} {
		if !strings.Contains(words, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	var row string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "istio/latency-p99 (msec)") {
			row = strings.Join(strings.Fields(l), " ")
		}
	}
	if row != "istio/latency-p99 (msec) 12 n/a - a" {
		t.Errorf("istio row = %q; want 12 for a, n/a for b, - for c, best a", row)
	}
}

func TestTextShowsTheBandit(t *testing.T) {
	r := result(nil, "")
	r.Stopped = "the experiment reached its end: promoted b: P(best) 0.970 by abn/purchase-per-user"
	r.Bandit = &experiment.Bandit{Release: "shop/backend", Revision: 7, Weights: map[string]int{"a": 0, "b": 100, "c": 0},
		ProbabilityBest: map[string]float64{"a": 0.01, "b": 0.97, "c": 0.02}, Reason: "promoted b", Promoted: "b"}
	var buf bytes.Buffer
	if err := Write(&buf, r, Text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Stopped:     the experiment reached its end: promoted b",
		"Bandit:      shop/backend at revision 7: a 0 (P(best) 0.010), b 100 (P(best) 0.970), c 0 (P(best) 0.020)",
		"             promoted b\n",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestTextShowsTheRollout(t *testing.T) {
	paused := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		rollout experiment.Rollout
		want    string
	}{
		{experiment.Rollout{Step: 1, Weights: map[string]int{"a": 75, "b": 25}, Reason: "step 2 of 3: a 75, b 25 (the analysis passed)"},
			"Rollout:     shop/backend at revision 7: b at step 2 of 3 (25%)\n             step 2 of 3: a 75, b 25"},
		{experiment.Rollout{Step: 1, Weights: map[string]int{"a": 100, "b": 0}, PausedSince: &paused},
			"b at step 2 of 3 (0%), paused\n"},
		{experiment.Rollout{Step: -1, Weights: map[string]int{"a": 100, "b": 0}, Outcome: experiment.RolloutRolledBack},
			"b before its first step (0%), rolled back\n"},
		{experiment.Rollout{Step: 2, Weights: map[string]int{"a": 0, "b": 100}, Outcome: experiment.RolloutPromoted},
			"b at step 3 of 3 (100%), promoted\n"},
	} {
		r := result(nil, "")
		ro := tc.rollout
		ro.Release, ro.Revision, ro.Candidate, ro.Steps = "shop/backend", 7, "b", []int{10, 25, 100}
		r.Rollout = &ro
		var buf bytes.Buffer
		if err := Write(&buf, r, Text); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), tc.want) {
			t.Errorf("report lacks %q:\n%s", tc.want, buf.String())
		}
	}
}

// TestTextSaysInterrupted: a run a signal stopped says so, not running or
// failed (its interrupted task counts as failed).
func TestTextSaysInterrupted(t *testing.T) {
	end := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &experiment.Result{Experiment: "e", Revision: 1, StartTime: end.Add(-time.Minute), EndTime: &end, Interrupted: true,
		Loop: 2, Loops: 5, Tasks: []experiment.TaskResult{{Task: "http", State: experiment.TaskFailed, Error: "interrupted: context canceled"}}}
	if got := stateLine(r); !strings.HasPrefix(got, "interrupted: ") {
		t.Errorf("state line %q, want it to start interrupted", got)
	}
}

func TestTextShowsWorkers(t *testing.T) {
	r := result(map[string]float64{"a": 4.25, "b": 9}, "http/latency-mean")
	r.SetWorkers("a", "http", []experiment.WorkerCount{{Worker: 0, Requests: 1001}, {Worker: 1, Requests: 1000, Errors: 2}, {Worker: 2, Requests: 12, Error: "a: connection refused"}})
	var buf bytes.Buffer
	if err := Write(&buf, r, Text); err != nil {
		t.Fatal(err)
	}
	words := strings.Join(strings.Fields(buf.String()), " ")
	if want := "Workers http for a: 3 workers, 12 to 1001 requests each, 2 errors; failed: worker 2: a: connection refused"; !strings.Contains(words, want) {
		t.Errorf("text report lacks %q:\n%s", want, buf.String())
	}
}
