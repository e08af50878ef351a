// Package rollout is the `rollout` task: in each loop of an experiment it
// takes the candidate version of an app's release (charts/release) one
// step further along its weights (such as 10, 25, 50, 100), by a helm
// upgrade, when the loop's analysis passes, and restores the weights from
// before the rollout when it fails.
//
// The analysis is what the tasks before it in the loop left in the
// result: the candidate's SLO verdicts (assess) and the sequential
// comparisons of the candidate with the baseline. It fails when an SLO of
// the candidate is not met or a sequential comparison says worse
// (fixed-sample comparisons, looked at every loop, are not used); a loop
// without any of them is an error. Each loop it:
//
//  1. reads the release's newest revision; one that is pending or not
//     deployed, whose strategy is not canary (or none), or whose versions
//     are not the spec's stops the experiment with nothing changed;
//  2. when the candidate is not ready, takes its weight away (weight 0,
//     which the readiness gate allows) and pauses; paused longer than
//     progressDeadline, it rolls back;
//  3. on a failed analysis, upgrades to the weights from before the
//     rollout and stops the run (rolled back, experiment.ErrStopRun); a
//     candidate without traffic (before its first step, or paused) is
//     judged only on measured values (Prometheus has none for it), and
//     one that fails before its first step never gets traffic;
//  4. ready again after a pause, goes back to the step it was at;
//  5. with the candidate at the last step (100), ends the experiment:
//     promoted (experiment.ErrDone);
//  6. else upgrades to the next step; the other versions share the rest
//     in their ratio from before the rollout.
//
// The last loop never leaves the rollout short of 100: it rolls back.
// Between loops a watch (experiment.Watcher) reads the release every
// second and takes the weight of a candidate that turns unready away at
// once; a failure that ends the run (experiment.FailureHandler) puts the
// weights from before the rollout back. Every change is a helm upgrade of
// the release's own chart (`helm history` tells the story; the release's
// gates apply), marked with its run and loop so that a retried attempt of
// a loop never takes a second step, and a rollout started again (a new
// run) goes on from the step the route is at.
package rollout

import (
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/upgrade"
)

// Name is the task's name in a spec.
const Name = "rollout"

// WeightMetric is the candidate's weight after the task, in percent: the
// loop history keeps it, so reports plot the steps over the loops.
const WeightMetric = "rollout/weight"

// Defaults of the task.
const (
	DefaultTimeout          = 5 * time.Minute
	DefaultProgressDeadline = 10 * time.Minute
)

// DefaultSteps are the candidate's weights when the spec gives none.
var DefaultSteps = []int{10, 25, 50, 100}

// inputs is the `with` block as written.
type inputs struct {
	// Release is the app's release (charts/release) as NAME, in the
	// experiment's namespace, or NAMESPACE/NAME.
	Release string `json:"release"`
	// Candidate is the version rolled out; the last version when unset.
	Candidate *string `json:"candidate,omitempty"`
	// Baseline is the version the candidate is compared with; the first
	// version when unset.
	Baseline *string `json:"baseline,omitempty"`
	// Steps are the candidate's weights, ascending, the last 100.
	Steps []int `json:"steps,omitempty"`
	// Timeout bounds each helm upgrade, its gates included.
	Timeout string `json:"timeout,omitempty"`
	// ProgressDeadline bounds a pause for an unready candidate.
	ProgressDeadline string `json:"progressDeadline,omitempty"`
}

// Task is the decoded rollout task.
type Task struct {
	namespace, release  string // namespace "" is the experiment's
	candidate, baseline string
	versions            []string
	steps               []int
	timeout, deadline   time.Duration
}

// Decode validates the task's `with` block.
func Decode(d *experiment.Decoding) (experiment.Task, field.ErrorList) {
	var in inputs
	if errs := d.Into(&in); len(errs) > 0 {
		return nil, errs
	}
	p := d.Path
	t := &Task{versions: d.Versions, steps: DefaultSteps}
	var errs field.ErrorList
	if len(d.Versions) < 2 || slices.Contains(d.Versions, "") {
		errs = append(errs, field.Invalid(field.NewPath("spec", "versions"), d.Versions, "a rollout needs at least two versions, named as the release names them"))
		return nil, errs
	}
	t.baseline, t.candidate = d.Versions[0], d.Versions[len(d.Versions)-1]
	ns, name, rerrs := upgrade.ParseRelease(in.Release, p.Child("release"))
	t.namespace, t.release = ns, name
	errs = append(errs, rerrs...)
	if in.Candidate != nil {
		if t.candidate = *in.Candidate; !slices.Contains(d.Versions, t.candidate) {
			errs = append(errs, field.NotSupported(p.Child("candidate"), t.candidate, d.Versions))
		}
	}
	if in.Baseline != nil {
		if t.baseline = *in.Baseline; !slices.Contains(d.Versions, t.baseline) {
			errs = append(errs, field.NotSupported(p.Child("baseline"), t.baseline, d.Versions))
		}
	}
	if t.baseline == t.candidate {
		errs = append(errs, field.Invalid(p.Child("candidate"), t.candidate, "the candidate must differ from the baseline "+t.baseline))
	}
	if in.Steps != nil {
		t.steps = in.Steps
		if fe := checkSteps(in.Steps, p.Child("steps")); fe != nil {
			errs = append(errs, fe)
		}
	}
	if d.Interval <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("spec", "interval"), d.Interval.String(),
			"a rollout takes a step per loop, each on its own loop's analysis: give an interval between loops, such as 5m"))
	}
	if d.Loops < len(t.steps)+1 {
		errs = append(errs, field.Invalid(field.NewPath("spec", "loops"), d.Loops,
			"a rollout takes a step per loop and needs a loop to analyse the last: give at least the number of steps + 1 loops (and an interval)"))
	}
	var fe *field.Error
	if t.timeout, fe = d.PositiveDuration(in.Timeout, DefaultTimeout, p.Child("timeout")); fe != nil {
		errs = append(errs, fe)
	}
	if t.deadline, fe = d.PositiveDuration(in.ProgressDeadline, DefaultProgressDeadline, p.Child("progressDeadline")); fe != nil {
		errs = append(errs, fe)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	d.Metrics.Add(t.candidate, WeightMetric)
	return t, nil
}

// checkSteps wants weights from 1 to 100, strictly ascending, ending at
// 100.
func checkSteps(steps []int, p *field.Path) *field.Error {
	const want = "the candidate's weight at each step: from 1 to 100, strictly ascending, the last 100, such as [10, 25, 50, 100]"
	if len(steps) == 0 || steps[len(steps)-1] != 100 {
		return field.Invalid(p, steps, want)
	}
	for i, s := range steps {
		if s < 1 || s > 100 || (i > 0 && s <= steps[i-1]) {
			return field.Invalid(p.Index(i), s, want)
		}
	}
	return nil
}
