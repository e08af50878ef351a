package bandit

import (
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/bandit"
	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/upgrade"
)

// Name is the task's name in a spec.
const Name = "bandit"

// WeightMetric is each version's weight after the task, in percent: the
// loop history keeps it, so reports plot the weights over the loops.
const WeightMetric = "bandit/weight"

// Defaults of the task.
const (
	DefaultPromoteAt = 0.95
	DefaultTimeout   = 5 * time.Minute
)

// What the last loop does without a promotion (atBudget), and what a failed
// upgrade does (onUpgradeFailure).
const (
	AtBudgetKeep      = "keep"
	AtBudgetBaseline  = "baseline"
	OnFailureStop     = "stop"
	OnFailureContinue = "continue"
)

// inputs is the `with` block as written.
type inputs struct {
	// Release is the app's release (charts/release) as NAME, in the
	// experiment's namespace, or NAMESPACE/NAME.
	Release string `json:"release"`
	// Reward is the metric that assess ranks versions by (one of its
	// rewards), with samples: P(best) and the comparisons come from it.
	Reward string `json:"reward"`
	// Baseline is the version that keeps BaselineFloor; the first
	// version when unset.
	Baseline         *string  `json:"baseline,omitempty"`
	Floor            *int     `json:"floor,omitempty"`
	BaselineFloor    *int     `json:"baselineFloor,omitempty"`
	MaxStep          *int     `json:"maxStep,omitempty"`
	MinSample        *int64   `json:"minSample,omitempty"`
	Beta             *float64 `json:"beta,omitempty"`
	PromoteAt        *float64 `json:"promoteAt,omitempty"`
	AtBudget         string   `json:"atBudget,omitempty"`
	OnUpgradeFailure string   `json:"onUpgradeFailure,omitempty"`
	// Timeout bounds each helm upgrade, its gates included.
	Timeout string `json:"timeout,omitempty"`
}

// Task is the decoded bandit task.
type Task struct {
	namespace, release string // namespace "" is the experiment's
	reward             string
	baseline           int
	versions           []string
	policy             bandit.Policy
	beta, promoteAt    float64
	atBudget           string
	onFailure          string
	timeout            time.Duration
}

// Decode validates the task's `with` block.
func Decode(d *experiment.Decoding) (experiment.Task, field.ErrorList) {
	var in inputs
	if errs := d.Into(&in); len(errs) > 0 {
		return nil, errs
	}
	p := d.Path
	t := &Task{reward: in.Reward, versions: d.Versions, policy: bandit.DefaultPolicy, beta: bandit.DefaultBeta, promoteAt: DefaultPromoteAt}
	var errs field.ErrorList
	if d.Loops < 2 {
		errs = append(errs, field.Invalid(field.NewPath("spec", "loops"), d.Loops, "the bandit moves weights from loop to loop: give at least 2 loops (and an interval)"))
	}
	if len(d.Versions) < 2 || slices.Contains(d.Versions, "") {
		errs = append(errs, field.Invalid(field.NewPath("spec", "versions"), d.Versions, "the bandit needs at least two versions, named as the release names them"))
	}
	ns, name, rerrs := upgrade.ParseRelease(in.Release, p.Child("release"))
	t.namespace, t.release = ns, name
	errs = append(errs, rerrs...)
	if fe := t.decodeReward(d, p.Child("reward")); fe != nil {
		errs = append(errs, fe)
	}
	if in.Baseline != nil {
		t.baseline = slices.Index(d.Versions, *in.Baseline)
		if t.baseline < 0 {
			errs = append(errs, field.NotSupported(p.Child("baseline"), *in.Baseline, d.Versions))
			t.baseline = 0
		}
	}
	setInt(&t.policy.Floor, in.Floor)
	setInt(&t.policy.BaselineFloor, in.BaselineFloor)
	setInt(&t.policy.MaxStep, in.MaxStep)
	if in.MinSample != nil {
		t.policy.MinSample = *in.MinSample
	}
	if err := t.policy.Check(len(d.Versions)); err != nil {
		errs = append(errs, policyErrors(t.policy, len(d.Versions), p)...)
	}
	if in.Beta != nil {
		if t.beta = *in.Beta; !(t.beta >= 0.5 && t.beta < 1) {
			errs = append(errs, field.Invalid(p.Child("beta"), t.beta, "the leader's share of top-two sampling: from 0.5 (identify the best fastest) to below 1"))
		}
	}
	if in.PromoteAt != nil {
		if t.promoteAt = *in.PromoteAt; !(t.promoteAt >= 0.5 && t.promoteAt < 1) {
			errs = append(errs, field.Invalid(p.Child("promoteAt"), t.promoteAt, "the probability of being best that promotes a version: from 0.5 to below 1, such as 0.95"))
		}
	}
	t.atBudget = pick(in.AtBudget, AtBudgetKeep, []string{AtBudgetKeep, AtBudgetBaseline}, p.Child("atBudget"), &errs)
	t.onFailure = pick(in.OnUpgradeFailure, OnFailureStop, []string{OnFailureStop, OnFailureContinue}, p.Child("onUpgradeFailure"), &errs)
	var fe *field.Error
	if t.timeout, fe = d.PositiveDuration(in.Timeout, DefaultTimeout, p.Child("timeout")); fe != nil {
		errs = append(errs, fe)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	for _, v := range d.Versions {
		d.Metrics.Add(v, WeightMetric)
	}
	return t, nil
}

// decodeReward checks that an earlier task gives the reward a sample for
// every version.
func (t *Task) decodeReward(d *experiment.Decoding, p *field.Path) *field.Error {
	if t.reward == "" {
		return field.Required(p, "the metric assess ranks versions by, with samples, such as abn/purchase-per-user")
	}
	if d.Metrics.Incomplete() {
		return nil
	}
	for _, v := range d.Versions {
		if k, ok := d.Metrics.Evidence(v, t.reward); !ok || (k != experiment.EvidenceMean && k != experiment.EvidenceRate) {
			return field.Invalid(p, t.reward, fmt.Sprintf("no earlier task gives it a sample for version %q: the bandit needs a metric with samples, such as abn/<metric>-per-user or abn/<metric>-conversion", experiment.VersionName(v)))
		}
	}
	return nil
}

// policyErrors names the fields behind a policy that fails its check.
func policyErrors(pol bandit.Policy, n int, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	check := func(child string, ok bool, v any, msg string) {
		if !ok {
			errs = append(errs, field.Invalid(p.Child(child), v, msg))
		}
	}
	check("floor", pol.Floor >= 0 && pol.Floor <= 50, pol.Floor, "the weight every version keeps: 0 to 50 (percent)")
	check("baselineFloor", pol.BaselineFloor >= pol.Floor && pol.BaselineFloor <= 100, pol.BaselineFloor, fmt.Sprintf("the weight the baseline keeps: from floor (%d) to 100", pol.Floor))
	check("baselineFloor", (n-1)*pol.Floor+pol.BaselineFloor <= 100, pol.BaselineFloor,
		fmt.Sprintf("with %d other versions at floor %d, the floors make %d%%: at most 100", n-1, pol.Floor, (n-1)*pol.Floor+pol.BaselineFloor))
	inRange := pol.MaxStep >= 1 && pol.MaxStep <= 100
	check("maxStep", inRange, pol.MaxStep, "the most a weight rises per loop: 1 to 100 (points)")
	check("maxStep", !inRange || pol.MaxStep >= pol.BaselineFloor, pol.MaxStep, fmt.Sprintf("at least the floors (%d, baseline %d), so that a version below its floor reaches it in one step", pol.Floor, pol.BaselineFloor))
	check("minSample", pol.MinSample >= 0, pol.MinSample, "the users every version needs before weights move: 0 or more")
	if len(errs) == 0 {
		errs = append(errs, field.Invalid(p, field.OmitValueType{}, pol.Check(n).Error()))
	}
	return errs
}

func setInt(dst *int, v *int) {
	if v != nil {
		*dst = *v
	}
}

// pick returns s, or def when empty, adding an error unless it is one of
// allowed.
func pick(s, def string, allowed []string, p *field.Path, errs *field.ErrorList) string {
	if s == "" {
		return def
	}
	if !slices.Contains(allowed, s) {
		*errs = append(*errs, field.NotSupported(p, s, allowed))
	}
	return s
}
