package experiment

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/iter8-tools/iter8/pkg/stats"
)

// TaskState is the state of one task in a result.
type TaskState string

// The states a task can be in.
const (
	TaskPending   TaskState = "pending"
	TaskRunning   TaskState = "running"
	TaskSucceeded TaskState = "succeeded"
	TaskFailed    TaskState = "failed"
	TaskSkipped   TaskState = "skipped"
)

// Result is everything an experiment run found. It is written after every
// task.
type Result struct {
	// Experiment is the experiment's name.
	Experiment string `json:"experiment"`
	// Revision counts the runs of this experiment (a Helm release revision in
	// a cluster; 1 locally).
	Revision int `json:"revision"`
	// StartTime is when the run began; EndTime when it ended (zero while
	// running).
	StartTime time.Time  `json:"startTime"`
	EndTime   *time.Time `json:"endTime,omitempty"`
	// Tasks has one entry per spec task, in order.
	Tasks []TaskResult `json:"tasks"`
	// Versions has one entry per version under test, in spec order.
	Versions []VersionResult `json:"versions"`
	// SLOs holds the verdicts of the assess task, in spec order.
	SLOs []SLOVerdict `json:"slos,omitempty"`
	// Rewards holds the best version for each reward metric.
	Rewards []RewardResult `json:"rewards,omitempty"`
	// Winner is the best version by the first reward among those that meet
	// all their SLOs; empty when there is none.
	Winner string `json:"winner,omitempty"`
	// Comparisons holds the assess task's candidate-against-baseline
	// verdicts, in spec order.
	Comparisons []Comparison `json:"comparisons,omitempty"`
	// Loop is the loop in progress or last finished, from 1; Loops is the
	// number planned (1 for an experiment without loops).
	Loop  int `json:"loop,omitempty"`
	Loops int `json:"loops,omitempty"`
	// History summarises each finished loop, oldest first; thinned when
	// long (see MaxHistory) so that the result stays small.
	History []LoopSummary `json:"history,omitempty"`
	// Stopped says why the loops ended before the last one (a task
	// returned ErrDone).
	Stopped string `json:"stopped,omitempty"`
	// Interrupted tells that a signal stopped the run before its end; a
	// resumed run (a retried Job's pod) goes on from where it stopped.
	Interrupted bool `json:"interrupted,omitempty"`
	// Bandit is the bandit task's state.
	Bandit *Bandit `json:"bandit,omitempty"`
	// Rollout is the rollout task's state.
	Rollout *Rollout `json:"rollout,omitempty"`
	// Log is the tail of the run's log.
	Log []string `json:"log,omitempty"`
}

// TaskResult is the outcome of one task.
type TaskResult struct {
	Task  string    `json:"task"`
	State TaskState `json:"state"`
	Error string    `json:"error,omitempty"`
	// Reason says why a task was skipped (its `if` was false, or an
	// earlier task failed), or how it ended the experiment (ErrDone).
	Reason    string        `json:"reason,omitempty"`
	StartTime *time.Time    `json:"startTime,omitempty"`
	Duration  time.Duration `json:"durationNanos,omitempty"`
}

// VersionResult holds the metrics of one version.
type VersionResult struct {
	// Name is the version's name; empty for the one unnamed version.
	Name string `json:"name"`
	// Metrics maps a metric name (http/latency-p99) to its value.
	Metrics map[string]Metric `json:"metrics,omitempty"`
	// Histograms maps a histogram metric name (http/latency) to its buckets.
	Histograms map[string]*stats.Histogram `json:"histograms,omitempty"`
	// Unavailable maps a metric that a task could not read (a backend error,
	// no data) to the reason, so that a report can say why it is missing.
	Unavailable map[string]string `json:"unavailable,omitempty"`
	// Samples maps a metric to the sample behind its value (successes of
	// trials for a rate, count, mean and deviation for a mean), which
	// comparisons and probabilities of being best need.
	Samples map[string]stats.Sample `json:"samples,omitempty"`
	// Failures maps a load's metric prefix (http, http-<endpoint>) to its
	// requests that got no complete response, by kind of failure, so that
	// a report can say why they are errors.
	Failures map[string][]RequestFailure `json:"failures,omitempty"`
	// Workers maps a load's metric family (http, grpc) to what each of its
	// workers sent this version, when the load was spread over workers.
	Workers map[string][]WorkerCount `json:"workers,omitempty"`
}

// WorkerCount is what one worker of a load sent to one version.
type WorkerCount struct {
	// Worker is the worker's index, from 0.
	Worker   int   `json:"worker"`
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// Error is the worker's own failure, if it failed.
	Error string `json:"error,omitempty"`
}

// RequestFailure counts the requests of a load that failed in one way
// (no connection, a timeout, a body shorter than it said, ...).
type RequestFailure struct {
	Kind  string `json:"kind"`
	Count int64  `json:"count"`
	// Example is what went wrong for the first of them.
	Example string `json:"example"`
}

// Metric is one measured value.
type Metric struct {
	Value float64 `json:"value"`
	// Unit such as msec; empty for counts and ratios.
	Unit string `json:"unit,omitempty"`
}

// SLOVerdict says whether one version met one objective.
type SLOVerdict struct {
	Metric    string   `json:"metric"`
	Version   string   `json:"version"`
	Upper     *float64 `json:"upper,omitempty"`
	Lower     *float64 `json:"lower,omitempty"`
	Value     *float64 `json:"value,omitempty"`
	Satisfied bool     `json:"satisfied"`
	// Reason explains a verdict without a value (a missing metric).
	Reason string `json:"reason,omitempty"`
}

// RewardResult names the best version for one reward metric.
type RewardResult struct {
	Metric    string    `json:"metric"`
	Direction Direction `json:"direction"`
	// Best is the best version; empty when no version has a value.
	Best string `json:"best,omitempty"`
	// ProbabilityBest maps a version to the posterior probability that it is
	// the best one, and ExpectedLoss to how much reward choosing it is
	// expected to give up against the truly best; both present only when
	// every version has a sample of the metric.
	ProbabilityBest map[string]float64 `json:"probabilityBest,omitempty"`
	ExpectedLoss    map[string]float64 `json:"expectedLoss,omitempty"`
	// Reason says why there are no probabilities.
	Reason string `json:"reason,omitempty"`
}

// Direction says whether a reward is better higher or lower.
type Direction string

// The directions, as a spec's rewards name them.
const (
	DirectionMax Direction = "max"
	DirectionMin Direction = "min"
)

// Verdict of a comparison of a candidate with the baseline.
type Verdict string

// The verdicts: Better and Worse only with the confidence asked for.
const (
	VerdictBetter       Verdict = "better"
	VerdictWorse        Verdict = "worse"
	VerdictInconclusive Verdict = "inconclusive"
)

// Comparison is the verdict on one metric of a candidate against the
// baseline.
type Comparison struct {
	Metric    string `json:"metric"`
	Baseline  string `json:"baseline"`
	Candidate string `json:"candidate"`
	// Test names the statistic (see README's statistics section):
	// log-ratio (latencies), mean-difference (mean latency), two-proportion
	// (rates), tail-share (percentiles) or welch (means of plain samples).
	Test stats.Test `json:"test,omitempty"`
	// Confidence is the level asked for, such as 0.95.
	Confidence float64 `json:"confidence"`
	Verdict    Verdict `json:"verdict"`
	// Reason explains an inconclusive verdict ("need 1200 more requests per
	// version") or a comparison that could not be made.
	Reason string `json:"reason,omitempty"`
	// Effect is the candidate's estimated change against the baseline with
	// its confidence interval [Low, High]: a relative change for latencies
	// (0.2 is 20% slower), a difference otherwise. In sequential mode it is
	// the pooled estimate and the interval a confidence sequence.
	Effect *float64 `json:"effect,omitempty"`
	Low    *float64 `json:"low,omitempty"`
	High   *float64 `json:"high,omitempty"`
	// Relative tells that Effect is a relative change.
	Relative bool `json:"relative,omitempty"`
	// PValue of the test: always valid in sequential mode.
	PValue *float64 `json:"pValue,omitempty"`
	// AdjustedPValue is PValue after Holm's correction over the
	// experiment's Family comparisons; the verdict follows it. Absent when
	// the experiment has one comparison.
	AdjustedPValue *float64 `json:"adjustedPValue,omitempty"`
	Family         int      `json:"family,omitempty"`
	// BaselineCount and CandidateCount are the sample sizes compared.
	BaselineCount  int64 `json:"baselineCount,omitempty"`
	CandidateCount int64 `json:"candidateCount,omitempty"`
	// Needed is the sample size per version at which a change of the
	// comparison's minimum effect would be detected (80% power), from the
	// observed variance; 0 when unknown.
	Needed int64 `json:"needed,omitempty"`
	// DesignEffect is the factor by which correlation in time and bursts
	// widened the variance against independent requests; absent when 1.
	DesignEffect float64 `json:"designEffect,omitempty"`
	// Blocks is the number of time blocks in which both versions ran and
	// were paired; absent when they were not.
	Blocks int `json:"blocks,omitempty"`
	// Threshold is the latency (msec) a tail-share test counts requests at
	// or above: the baseline's percentile, rounded down to a quarter
	// doubling.
	Threshold float64 `json:"thresholdMsec,omitempty"`
	// Sequential is the evidence carried across loops in sequential mode.
	Sequential *stats.Evidence `json:"sequential,omitempty"`
}

// LoopSummary is what one loop of an experiment found: its metric values,
// SLO verdicts and comparisons, without histograms or samples.
type LoopSummary struct {
	Loop      int       `json:"loop"`
	StartTime time.Time `json:"startTime"`
	EndTime   time.Time `json:"endTime"`
	// Metrics maps version to metric to value.
	Metrics map[string]map[string]float64 `json:"metrics,omitempty"`
	// SLOsSatisfied maps version to whether it met all its SLOs.
	SLOsSatisfied map[string]bool `json:"slosSatisfied,omitempty"`
	// Verdicts holds the verdict of each candidate's comparison by metric.
	Verdicts map[VerdictKey]Verdict `json:"verdicts,omitempty"`
	// Failed tells that a task failed in this loop.
	Failed bool `json:"failed,omitempty"`
}

// VerdictKey names a comparison in LoopSummary.Verdicts. Its JSON form is
// "candidate metric": a version's name holds no space, so the first space
// splits it, and results written before the key was typed read the same.
type VerdictKey struct{ Candidate, Metric string }

// MarshalText writes the key as "candidate metric".
func (k VerdictKey) MarshalText() ([]byte, error) {
	return []byte(k.Candidate + " " + k.Metric), nil
}

// UnmarshalText reads "candidate metric".
func (k *VerdictKey) UnmarshalText(text []byte) error {
	candidate, metric, ok := strings.Cut(string(text), " ")
	if !ok {
		return fmt.Errorf("verdict key %q: want a candidate and a metric, separated by a space", text)
	}
	*k = VerdictKey{Candidate: candidate, Metric: metric}
	return nil
}

// NewResult starts the result of a run of plan.
func NewResult(plan *Plan, revision int, start time.Time) *Result {
	r := &Result{
		Experiment: plan.Experiment.Metadata.Name,
		Revision:   revision,
		StartTime:  start,
	}
	for _, t := range plan.Tasks {
		r.Tasks = append(r.Tasks, TaskResult{Task: t.Spec.Task, State: TaskPending})
	}
	for _, v := range plan.Experiment.Spec.VersionNames() {
		r.Versions = append(r.Versions, VersionResult{Name: v})
	}
	return r
}

// State is where an experiment's run is, in a word.
type State string

// The states of a run.
const (
	StateRunning   State = "running"
	StateCompleted State = "completed"
	// StateFailed: a task failed (the run may go on to its end).
	StateFailed State = "failed"
	// StateInterrupted: a signal stopped the run before its end (Ctrl-C,
	// or a long-running experiment's pod stopped); a retried Job's pod
	// resumes it (run --resume).
	StateInterrupted State = "interrupted"
)

// State is StateInterrupted when a signal stopped the run (a task that
// the signal stopped failed, but the run is not over), else StateFailed
// once a task has failed, StateCompleted when the run has ended without
// one, else StateRunning.
func (r *Result) State() State {
	switch {
	case r.Interrupted:
		return StateInterrupted
	case r.Failed():
		return StateFailed
	case !r.Completed():
		return StateRunning
	}
	return StateCompleted
}

// Completed reports whether the run has ended, in success or failure. An
// interrupted run has not: it stopped (EndTime says when) but did not
// reach its end, and a retried Job's pod resumes it, so that waiters (assert
// --timeout, release status, list) do not take it for a finished one.
func (r *Result) Completed() bool { return r.EndTime != nil && !r.Interrupted }

// Resumable reports whether a Runner with this stored result as its
// Resume and the given Revision takes it up for plan (goes on with it, or
// returns it when its run had ended) rather than starting over, as it does
// with the result of another experiment, revision or spec. The result is
// not changed; a caller that seeds the run's log with the stored one asks
// first.
func (r *Result) Resumable(plan *Plan, revision int) bool {
	c := *r // resumePoint changes the tasks and history of the result it takes up
	c.Tasks = slices.Clone(r.Tasks)
	_, err := resumePoint(&c, (&Runner{Revision: revision}).env(plan).Result)
	return err == nil
}

// Failed reports whether any task failed.
func (r *Result) Failed() bool {
	return slices.ContainsFunc(r.Tasks, func(t TaskResult) bool { return t.State == TaskFailed })
}

// SLOsSatisfied reports whether every SLO verdict so far is satisfied; true
// when there are none.
func (r *Result) SLOsSatisfied() bool {
	return !slices.ContainsFunc(r.SLOs, func(v SLOVerdict) bool { return !v.Satisfied })
}

// Version returns the entry of the named version, or nil.
func (r *Result) Version(name string) *VersionResult {
	if i := slices.IndexFunc(r.Versions, func(v VersionResult) bool { return v.Name == name }); i >= 0 {
		return &r.Versions[i]
	}
	return nil
}

// SetMetric stores a metric value for a version. Values that are not finite
// are not stored: a missing metric says more than a NaN.
func (r *Result) SetMetric(version, name string, value float64, unit string) {
	v := r.Version(version)
	if v == nil || math.IsNaN(value) || math.IsInf(value, 0) {
		return
	}
	put(&v.Metrics, name, Metric{Value: value, Unit: unit})
	delete(v.Unavailable, name)
}

// SetUnavailable records why a metric has no value for a version, and drops
// a value (and the sample behind it) that an earlier run of the task stored.
func (r *Result) SetUnavailable(version, name, reason string) {
	if v := r.Version(version); v != nil {
		put(&v.Unavailable, name, reason)
		delete(v.Metrics, name)
		delete(v.Samples, name)
	}
}

// SetHistogram stores a histogram for a version.
func (r *Result) SetHistogram(version, name string, h *stats.Histogram) {
	v := r.Version(version)
	if v != nil && h != nil {
		put(&v.Histograms, name, h)
	}
}

// SetFailures replaces the failed requests recorded under a load's metric
// prefix for a version; none removes them, so that a later loop does not
// show an earlier loop's failures.
func (r *Result) SetFailures(version, prefix string, failures []RequestFailure) {
	switch v := r.Version(version); {
	case v == nil:
	case len(failures) == 0:
		delete(v.Failures, prefix)
	default:
		put(&v.Failures, prefix, failures)
	}
}

// SetWorkers replaces the per-worker counts of a load's family for a
// version; none removes them (a later loop without workers).
func (r *Result) SetWorkers(version, family string, counts []WorkerCount) {
	switch v := r.Version(version); {
	case v == nil:
	case len(counts) == 0:
		delete(v.Workers, family)
	default:
		put(&v.Workers, family, counts)
	}
}

// SetSample stores the sample behind a metric's value for a version.
func (r *Result) SetSample(version, name string, s stats.Sample) {
	if v := r.Version(version); v != nil {
		put(&v.Samples, name, s)
	}
}

// Sample returns the sample behind a metric's value for a version.
func (r *Result) Sample(version, name string) (stats.Sample, bool) {
	if v := r.Version(version); v != nil {
		s, ok := v.Samples[name]
		return s, ok
	}
	return stats.Sample{}, false
}

// Histogram returns a histogram metric of a version.
func (r *Result) Histogram(version, name string) *stats.Histogram {
	if v := r.Version(version); v != nil {
		return v.Histograms[name]
	}
	return nil
}

// Value returns a metric's value for a version.
func (r *Result) Value(version, name string) (float64, bool) {
	if v := r.Version(version); v != nil {
		m, ok := v.Metrics[name]
		return m.Value, ok
	}
	return 0, false
}

// MetricNames lists every metric name in the result, sorted.
func (r *Result) MetricNames() []string {
	return namesOf(r.Versions, func(v VersionResult) map[string]Metric { return v.Metrics })
}

// HistogramNames lists every histogram name in the result, sorted.
func (r *Result) HistogramNames() []string {
	return namesOf(r.Versions, func(v VersionResult) map[string]*stats.Histogram { return v.Histograms })
}

// namesOf lists the keys of one map of every version, sorted.
func namesOf[V any](versions []VersionResult, m func(VersionResult) map[string]V) []string {
	var all []string
	for _, v := range versions {
		all = slices.AppendSeq(all, maps.Keys(m(v)))
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// MaxHistory and MaxHistoryBytes bound Result.History. Past either, every
// other older loop is dropped (the first and the latest are kept), so a long
// run keeps an even sample of its trend and the result stays far below a
// Secret's 1 MiB, however many versions and metrics there are.
const (
	MaxHistory      = 64
	MaxHistoryBytes = 256 << 10
)

// summarize takes the loop's values, SLO verdicts and comparison verdicts.
func (r *Result) summarize(loop int, start, end time.Time, failed bool) LoopSummary {
	s := LoopSummary{Loop: loop, StartTime: start, EndTime: end, Failed: failed}
	for _, v := range r.Versions {
		if len(v.Metrics) == 0 {
			continue
		}
		m := make(map[string]float64, len(v.Metrics))
		for name, val := range v.Metrics {
			m[name] = val.Value
		}
		put(&s.Metrics, v.Name, m)
	}
	for _, v := range r.SLOs {
		ok, seen := s.SLOsSatisfied[v.Version]
		put(&s.SLOsSatisfied, v.Version, v.Satisfied && (ok || !seen))
	}
	for _, c := range r.Comparisons {
		put(&s.Verdicts, VerdictKey{Candidate: c.Candidate, Metric: c.Metric}, c.Verdict)
	}
	return s
}

// put sets m[k], making the map on first use: the result's maps stay nil,
// and out of its JSON, until they hold something.
func put[K comparable, V any](m *map[K]V, k K, v V) {
	if *m == nil {
		*m = map[K]V{}
	}
	(*m)[k] = v
}

// addHistory appends a loop's summary, thinning the history past
// MaxHistory loops or MaxHistoryBytes of JSON.
func (r *Result) addHistory(s LoopSummary) {
	r.History = append(r.History, s)
	for len(r.History) > 2 && (len(r.History) > MaxHistory || historyBytes(r.History) > MaxHistoryBytes) {
		kept := r.History[:1]
		for i := 2; i < len(r.History)-1; i += 2 {
			kept = append(kept, r.History[i])
		}
		r.History = append(kept, r.History[len(r.History)-1])
	}
}

func historyBytes(h []LoopSummary) int {
	b, _ := json.Marshal(h) // on an error, 0 bytes: thin by count alone
	return len(b)
}
