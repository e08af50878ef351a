// Package assess is the `assess` task: it judges each version against SLOs
// and picks the best version by reward metrics.
package assess

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// Name is the task's name in a spec.
const Name = "assess"

// SLO is one objective: a metric's value must stay at or below Upper and at
// or above Lower.
type SLO struct {
	Metric string   `json:"metric"`
	Upper  *float64 `json:"upper,omitempty"`
	Lower  *float64 `json:"lower,omitempty"`
	// Version limits the SLO to one version; empty means every version.
	Version *string `json:"version,omitempty"`
}

// Rewards name metrics to maximise or minimise when picking a winner.
type Rewards struct {
	Max []string `json:"max,omitempty"`
	Min []string `json:"min,omitempty"`
}

type inputs struct {
	SLOs    []SLO    `json:"slos,omitempty"`
	Rewards *Rewards `json:"rewards,omitempty"`
}

// reward is one reward metric with its direction.
type reward struct {
	metric    string
	direction string
}

// Task is the decoded assess task.
type Task struct {
	SLOs    []SLO
	rewards []reward
}

// Decode validates the task's `with` block against the metrics that earlier
// tasks produce.
func Decode(d *experiment.Decoding) (experiment.Task, field.ErrorList) {
	var in inputs
	if errs := d.Into(&in); len(errs) > 0 {
		return nil, errs
	}
	var errs field.ErrorList
	if len(in.SLOs) == 0 && (in.Rewards == nil || len(in.Rewards.Max)+len(in.Rewards.Min) == 0) {
		errs = append(errs, field.Required(d.Path.Child("slos"), "give slos, rewards or both"))
	}
	for i, s := range in.SLOs {
		p := d.Path.Child("slos").Index(i)
		if s.Upper == nil && s.Lower == nil {
			errs = append(errs, field.Required(p.Child("upper"), "an SLO needs upper, lower or both"))
		}
		if s.Upper != nil && s.Lower != nil && *s.Lower > *s.Upper {
			errs = append(errs, field.Invalid(p.Child("lower"), *s.Lower, fmt.Sprintf("above upper (%v): no value can meet it", *s.Upper)))
		}
		version := ""
		if s.Version != nil {
			version = *s.Version
			if !slices.Contains(d.Versions, version) {
				errs = append(errs, field.NotSupported(p.Child("version"), version, d.Versions))
				continue
			}
		}
		if fe := checkMetric(d, p.Child("metric"), s.Metric, s.Version); fe != nil {
			errs = append(errs, fe)
		}
	}
	t := &Task{SLOs: in.SLOs}
	if in.Rewards != nil {
		// max before min, each in spec order: the first reward decides the winner.
		for _, dir := range []struct {
			name    string
			metrics []string
		}{{"max", in.Rewards.Max}, {"min", in.Rewards.Min}} {
			for i, m := range dir.metrics {
				if fe := checkMetric(d, d.Path.Child("rewards", dir.name).Index(i), m, nil); fe != nil {
					errs = append(errs, fe)
				}
				t.rewards = append(t.rewards, reward{metric: m, direction: dir.name})
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return t, nil
}

func checkMetric(d *experiment.Decoding, p *field.Path, metric string, version *string) *field.Error {
	if metric == "" {
		return field.Required(p, "a metric name such as http/latency-p99")
	}
	if d.Metrics.Incomplete() {
		return nil
	}
	if version != nil {
		if d.Metrics.Has(*version, metric) {
			return nil
		}
		return field.Invalid(p, metric, fmt.Sprintf("no earlier task produces it for version %q; %s", *version, known(d)))
	}
	if len(d.Metrics.Producers(metric)) > 0 {
		return nil
	}
	return field.Invalid(p, metric, "no earlier task produces it; "+known(d))
}

func known(d *experiment.Decoding) string {
	k := d.Metrics.Known()
	if len(k) == 0 {
		return "no earlier task produces metrics"
	}
	return "known metrics: " + strings.Join(k, ", ")
}

// Run records a verdict per SLO and version, the best version per reward, and
// the winner. It replaces verdicts of an earlier assess task.
func (t *Task) Run(_ context.Context, env *experiment.Env) error {
	r := env.Result
	r.SLOs = nil
	for _, s := range t.SLOs {
		versions := env.Versions
		if s.Version != nil {
			versions = []string{*s.Version}
		}
		for _, v := range versions {
			r.SLOs = append(r.SLOs, verdict(r, s, v))
		}
	}
	r.Rewards, r.Winner = nil, ""
	for _, rw := range t.rewards {
		r.Rewards = append(r.Rewards, experiment.RewardResult{
			Metric: rw.metric, Direction: rw.direction, Best: best(r, env.Versions, rw, nil),
		})
	}
	if len(t.rewards) > 0 {
		r.Winner = best(r, env.Versions, t.rewards[0], func(v string) bool { return meetsSLOs(r, v) })
	}
	return nil
}

func verdict(r *experiment.Result, s SLO, version string) experiment.SLOVerdict {
	out := experiment.SLOVerdict{Metric: s.Metric, Version: version, Upper: s.Upper, Lower: s.Lower}
	val, ok := r.Value(version, s.Metric)
	if !ok {
		out.Reason = "no value: no task measured it for this version"
		return out
	}
	out.Value = &val
	out.Satisfied = (s.Upper == nil || val <= *s.Upper) && (s.Lower == nil || val >= *s.Lower)
	return out
}

func meetsSLOs(r *experiment.Result, version string) bool {
	for _, v := range r.SLOs {
		if v.Version == version && !v.Satisfied {
			return false
		}
	}
	return true
}

// best returns the version with the best value of the reward metric among
// those that pass keep (nil keeps all); ties go to the earlier version.
func best(r *experiment.Result, versions []string, rw reward, keep func(string) bool) string {
	winner, found := "", false
	var bestVal float64
	for _, v := range versions {
		if keep != nil && !keep(v) {
			continue
		}
		val, ok := r.Value(v, rw.metric)
		if !ok {
			continue
		}
		if !found || (rw.direction == "max" && val > bestVal) || (rw.direction == "min" && val < bestVal) {
			winner, bestVal, found = v, val, true
		}
	}
	return winner
}
