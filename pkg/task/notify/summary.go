package notify

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// Summary is what a notification says about the experiment so far. It is
// the data (the dot) of every template, the default webhook payload (as
// JSON), the client_payload of a repository_dispatch and the data of a
// CloudEvent. It keeps at most 10 top-level JSON properties, GitHub's limit
// for client_payload.
type Summary struct {
	// Experiment is the experiment's name.
	Experiment string `json:"experiment"`
	// Revision counts the runs of the experiment (the Helm release revision
	// in a cluster; 1 locally).
	Revision int `json:"revision"`
	// State is experiment.StateFailed when a task before this one failed
	// (FailedTask says which), else experiment.StateCompleted.
	State experiment.State `json:"state"`
	// FailedTask is the first task that failed; nil when none did. Guard it
	// in templates: {{ with .FailedTask }}{{ .Task }}{{ end }}.
	FailedTask *FailedTask `json:"failedTask,omitempty"`
	// SLOsSatisfied is true when every SLO verdict holds, and when there are
	// none.
	SLOsSatisfied bool `json:"slosSatisfied"`
	// Versions lists the versions under test in spec order; "" is the one
	// unnamed version.
	Versions []string `json:"versions"`
	// Metrics maps version → metric name → value, for each version that has
	// at least one value. Units follow Iter8's metric names: latencies in
	// msec, counts in requests, rates as fractions. A version without values
	// is not a key, so that {{ .Metrics.v2 }} fails (missingkey=error) rather
	// than print nothing; read one metric with
	// {{ index .Metrics.v2 "http/latency-p99" }}.
	Metrics map[string]map[string]float64 `json:"metrics"`
	// SLOs are the verdicts of the assess task, one per SLO and version.
	SLOs []SLO `json:"slos"`
	// Winner is the best version by the first reward among those meeting
	// their SLOs; empty when there is none.
	Winner string `json:"winner"`
	// Comparisons are the assess task's verdicts on candidates against the
	// baseline.
	Comparisons []Comparison `json:"comparisons"`
}

// Comparison is one candidate's verdict against the baseline on a metric.
type Comparison struct {
	Metric    string `json:"metric"`
	Baseline  string `json:"baseline"`
	Candidate string `json:"candidate"`
	// Verdict is better, worse or inconclusive.
	Verdict string `json:"verdict"`
	// Effect is the estimated change (relative for latencies: 0.2 is 20%
	// slower); nil when the comparison could not be made.
	Effect *float64 `json:"effect,omitempty"`
	// Reason explains an inconclusive verdict.
	Reason string `json:"reason,omitempty"`
}

// FailedTask names the task that failed.
type FailedTask struct {
	// Index is the task's position in spec.tasks, from 0.
	Index int `json:"index"`
	// Task is the task's name (http, ready, ...).
	Task string `json:"task"`
	// Error is the task's error as stored in the result.
	Error string `json:"error"`
}

// SLO is one verdict: whether a version met one objective.
type SLO struct {
	// Metric is the metric's name, such as http/latency-p99.
	Metric string `json:"metric"`
	// Version is the version judged.
	Version string `json:"version"`
	// Upper and Lower are the bounds; nil when not set.
	Upper *float64 `json:"upper,omitempty"`
	Lower *float64 `json:"lower,omitempty"`
	// Value is the measured value; nil when there is none.
	Value *float64 `json:"value,omitempty"`
	// Satisfied reports whether Value is within the bounds.
	Satisfied bool `json:"satisfied"`
	// Reason explains a verdict without a value.
	Reason string `json:"reason,omitempty"`
}

// NewSummary summarises r.
func NewSummary(r *experiment.Result) *Summary {
	s := &Summary{
		Experiment:    r.Experiment,
		Revision:      r.Revision,
		State:         experiment.StateCompleted,
		SLOsSatisfied: r.SLOsSatisfied(),
		Versions:      []string{},
		Metrics:       map[string]map[string]float64{},
		SLOs:          []SLO{},
		Winner:        r.Winner,
		Comparisons:   []Comparison{},
	}
	for _, c := range r.Comparisons {
		s.Comparisons = append(s.Comparisons, Comparison{
			Metric: c.Metric, Baseline: c.Baseline, Candidate: c.Candidate,
			Verdict: string(c.Verdict), Effect: c.Effect, Reason: c.Reason,
		})
	}
	for i, t := range r.Tasks {
		if t.State == experiment.TaskFailed {
			s.State = experiment.StateFailed
			s.FailedTask = &FailedTask{Index: i, Task: t.Task, Error: t.Error}
			break
		}
	}
	for _, v := range r.Versions {
		s.Versions = append(s.Versions, v.Name)
		if len(v.Metrics) == 0 {
			continue
		}
		m := make(map[string]float64, len(v.Metrics))
		for name, val := range v.Metrics {
			m[name] = val.Value
		}
		s.Metrics[v.Name] = m
	}
	for _, v := range r.SLOs {
		s.SLOs = append(s.SLOs, SLO{
			Metric: v.Metric, Version: v.Version, Upper: v.Upper, Lower: v.Lower,
			Value: v.Value, Satisfied: v.Satisfied, Reason: v.Reason,
		})
	}
	return s
}

// sampleSummaries are what templates are tried on when a spec is decoded:
// a completed run and a failed one, with every version that earlier tasks
// produce metrics for, and one SLO verdict each, so that every field of the
// Summary is present.
func sampleSummaries(versions []string, metrics *experiment.Catalog) []*Summary {
	completed := &Summary{
		Experiment: "sample", Revision: 1, State: experiment.StateCompleted, SLOsSatisfied: true,
		Versions: versions, Metrics: map[string]map[string]float64{},
		SLOs:        []SLO{{Metric: "sample/metric", Version: versions[0], Upper: new(1.0), Value: new(1.0), Satisfied: true}},
		Comparisons: []Comparison{{Metric: "sample/metric", Baseline: versions[0], Candidate: versions[len(versions)-1], Verdict: "inconclusive", Effect: new(1.0), Reason: "sample"}},
	}
	for _, name := range metrics.Known() {
		for _, v := range metrics.Producers(name) {
			if completed.Metrics[v] == nil {
				completed.Metrics[v] = map[string]float64{}
			}
			completed.Metrics[v][name] = 1
		}
	}
	failed := *completed
	failed.State, failed.SLOsSatisfied, failed.Winner = experiment.StateFailed, false, ""
	failed.FailedTask = &FailedTask{Index: 0, Task: "sample", Error: "sample error"}
	failed.SLOs = []SLO{{Metric: "sample/metric", Version: versions[0], Upper: new(1.0), Reason: "no value"}}
	completed.Winner = versions[len(versions)-1]
	return []*Summary{completed, &failed}
}

// How much the default Slack text quotes of a failed task's error, and how
// many unmet SLOs it lists.
const (
	maxSlackError = 300
	maxSlackSLOs  = 5
)

// defaultSlackText is the text of a Slack message when the spec gives none:
// one line with the outcome, then the unmet SLOs.
func defaultSlackText(s *Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Iter8 experiment *%s* (revision %d) ", slackEscape(s.Experiment), s.Revision)
	if s.State == experiment.StateFailed {
		b.WriteString("failed")
		if f := s.FailedTask; f != nil {
			fmt.Fprintf(&b, ": task %d (%s): %s", f.Index, slackEscape(f.Task), slackEscape(truncate(f.Error, maxSlackError)))
		}
		return b.String()
	}
	b.WriteString("completed")
	switch {
	case len(s.SLOs) == 0:
	case s.SLOsSatisfied:
		b.WriteString(": SLOs satisfied")
	default:
		b.WriteString(": SLOs not satisfied")
	}
	if s.Winner != "" {
		fmt.Fprintf(&b, "; winner: %s", slackEscape(s.Winner))
	}
	shown := 0
	for _, v := range s.SLOs {
		if v.Satisfied {
			continue
		}
		if shown == maxSlackSLOs {
			b.WriteString("\n• …")
			break
		}
		shown++
		b.WriteString("\n• " + slackEscape(describeSLO(v)))
	}
	return b.String()
}

// describeSLO words an unmet SLO: "http/latency-p99 of v2: 120 (upper 100)".
func describeSLO(v SLO) string {
	s := v.Metric
	if v.Version != "" {
		s += " of " + v.Version
	}
	if v.Value == nil {
		return s + ": " + v.Reason
	}
	s += ": " + formatFloat(*v.Value)
	var bounds []string
	if v.Lower != nil {
		bounds = append(bounds, "lower "+formatFloat(*v.Lower))
	}
	if v.Upper != nil {
		bounds = append(bounds, "upper "+formatFloat(*v.Upper))
	}
	if len(bounds) > 0 {
		s += " (" + strings.Join(bounds, ", ") + ")"
	}
	return s
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }

// slackEscape escapes the three characters that Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncate cuts s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
