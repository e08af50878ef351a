package action

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/report"
	"github.com/iter8-tools/iter8/pkg/store"
)

// Condition is something assert checks about a result.
type Condition string

// The conditions.
const (
	// Completed: the experiment has finished. An interrupted run (a signal
	// stopped it) has not: a long-running experiment's retried Job resumes
	// it, so assert waits on for it like a running one.
	Completed Condition = "completed"
	// NoFailure: no task has failed.
	NoFailure Condition = "nofailure"
	// SLOs: there are SLO verdicts and all are satisfied.
	SLOs Condition = "slos"
)

// Conditions lists every condition.
var Conditions = []Condition{Completed, NoFailure, SLOs}

// ParseConditions checks condition names; each entry may hold several,
// separated by commas.
func ParseConditions(raw []string) ([]Condition, error) {
	var out []Condition
	for _, r := range raw {
		for _, s := range strings.Split(r, ",") {
			c := Condition(strings.ToLower(strings.TrimSpace(s)))
			if !slices.Contains(Conditions, c) {
				return nil, fmt.Errorf("unknown condition %q: want completed, nofailure or slos", s)
			}
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	if len(out) == 0 {
		return nil, errNoCondition
	}
	return out, nil
}

// Assert checks conditions on an experiment's result, waiting up to
// Timeout for them to hold.
type Assert struct {
	// Experiment is the experiment whose result to check.
	Experiment store.Experiment
	Conditions []Condition
	// Timeout is how long to wait for the conditions; 0 checks once.
	Timeout time.Duration
	// Interval is the time between checks while waiting when the
	// experiment's watch reports no change (it ended, or was refused).
	Interval time.Duration
}

// NewAssert returns an Assert action.
func NewAssert(*Configuration) *Assert {
	return &Assert{Interval: time.Second}
}

// Validate checks the fields.
func (a *Assert) Validate() error {
	switch {
	case a.Experiment == nil:
		return errors.New("no experiment given")
	case len(a.Conditions) == 0:
		return errNoCondition
	case a.Timeout < 0:
		return fmt.Errorf("timeout must not be negative, got %v", a.Timeout)
	}
	for _, c := range a.Conditions {
		if !slices.Contains(Conditions, c) {
			return fmt.Errorf("unknown condition %q: want completed, nofailure or slos", c)
		}
	}
	return nil
}

var errNoCondition = errors.New("no condition given: use -c completed, -c nofailure and/or -c slos")

// Verdict is the outcome of one condition.
type Verdict struct {
	Condition Condition
	Holds     bool
	// Why explains a condition that does not hold.
	Why string
}

// AssertResult lists the verdicts of the last check.
type AssertResult struct {
	Verdicts []Verdict
}

// Holds reports whether every condition holds.
func (r *AssertResult) Holds() bool {
	for _, v := range r.Verdicts {
		if !v.Holds {
			return false
		}
	}
	return true
}

// Run checks the conditions until they all hold, the experiment has ended
// (so that they cannot change; an interrupted run has not), or Timeout
// passes. The error is for a check that could not be made (no result by
// the deadline, an unreadable result).
func (a *Assert) Run(ctx context.Context) (*AssertResult, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	deadline := time.NewTimer(a.Timeout)
	defer deadline.Stop()
	var changes <-chan struct{}
	if a.Timeout > 0 {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		// Without a watch (refused by RBAC, say), polling still answers.
		changes, _ = a.Experiment.Watch(ctx)
	}
	for {
		res, err := a.Experiment.ReadResult(ctx)
		var out *AssertResult
		switch {
		case err == nil:
			out = a.check(res)
			if out.Holds() || res.Completed() {
				return out, nil
			}
		case !errors.Is(err, store.ErrNoResult):
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			if out == nil {
				return nil, fmt.Errorf("waited %v: %w", a.Timeout, err)
			}
			return out, nil
		case _, ok := <-changes:
			if !ok {
				changes = nil
			}
		case <-time.After(max(a.Interval, 10*time.Millisecond)):
		}
	}
}

func (a *Assert) check(r *experiment.Result) *AssertResult {
	out := &AssertResult{}
	for _, c := range a.Conditions {
		v := Verdict{Condition: c}
		switch c {
		case Completed:
			switch v.Holds = r.Completed(); {
			case v.Holds:
			case r.Interrupted:
				v.Why = fmt.Sprintf("the experiment was interrupted in loop %d of %d: a signal stopped its run (a long-running experiment's retried Job resumes it)", max(r.Loop, 1), max(r.Loops, 1))
			default:
				v.Why = "the experiment is still running"
			}
		case NoFailure:
			v.Holds = !r.Failed()
			for i, t := range r.Tasks {
				if t.State == experiment.TaskFailed {
					v.Why = fmt.Sprintf("task %d (%s) failed: %s", i, t.Task, t.Error)
					break
				}
			}
		case SLOs:
			v.Holds, v.Why = slosHold(r)
		}
		out.Verdicts = append(out.Verdicts, v)
	}
	return out
}

func slosHold(r *experiment.Result) (bool, string) {
	if len(r.SLOs) == 0 {
		return false, "the result has no SLO verdicts (no assess task with slos has run)"
	}
	var unmet []string
	for _, v := range r.SLOs {
		if v.Satisfied {
			continue
		}
		detail := v.Reason
		if v.Value != nil {
			detail = fmt.Sprintf("value %v", *v.Value)
		}
		unmet = append(unmet, fmt.Sprintf("%s for version %s (%s)", report.SLOLabel(v), experiment.VersionName(v.Version), detail))
	}
	if len(unmet) > 0 {
		return false, "not satisfied: " + strings.Join(unmet, "; ")
	}
	return true, ""
}
