package notify

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

func TestNewSummary(t *testing.T) {
	r := sampleResult()
	r.Tasks[1] = experiment.TaskResult{Task: "assess", State: experiment.TaskFailed, Error: "boom"}
	r.Versions = append(r.Versions, experiment.VersionResult{Name: "v3"})
	upper, v1, v2, effect := 100.0, 42.5, 120.0, 0.25
	r.Comparisons = []experiment.Comparison{{Metric: "http/latency", Baseline: "v1", Candidate: "v2", Test: "mann-whitney",
		Confidence: 0.95, Verdict: experiment.VerdictWorse, Effect: &effect, Relative: true, BaselineCount: 400, CandidateCount: 400}}
	s := NewSummary(r)
	want := &Summary{
		Experiment: "checkout", Revision: 3, State: experiment.StateFailed,
		FailedTask:    &FailedTask{Index: 1, Task: "assess", Error: "boom"},
		SLOsSatisfied: false,
		Versions:      []string{"v1", "v2", "v3"},
		Metrics: map[string]map[string]float64{ // v3 has no values, so it is no key
			"v1": {"http/latency-p99": 42.5, "http/error-rate": 0},
			"v2": {"http/latency-p99": 120, "http/error-rate": 0.5},
		},
		SLOs: []SLO{
			{Metric: "http/latency-p99", Version: "v1", Upper: &upper, Value: &v1, Satisfied: true},
			{Metric: "http/latency-p99", Version: "v2", Upper: &upper, Value: &v2},
		},
		Winner:      "v1",
		Comparisons: []Comparison{{Metric: "http/latency", Baseline: "v1", Candidate: "v2", Verdict: "worse", Effect: &effect}},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("NewSummary =\n%+v\nwant\n%+v", s, want)
	}

	empty := NewSummary(&experiment.Result{Experiment: "e", Revision: 1})
	b, err := json.Marshal(empty)
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"experiment":"e","revision":1,"state":"completed","slosSatisfied":true,"versions":[],"metrics":{},"slos":[],"winner":"","comparisons":[]}`
	if string(b) != wantJSON {
		t.Errorf("summary of an empty result = %s, want %s (lists and maps are [] and {}, not null)", b, wantJSON)
	}
}
