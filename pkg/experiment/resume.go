package experiment

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// position is where a run starts: a loop and the first of its tasks to
// run. since is when a resumed run resumed (zero for a new run), and mid
// tells that the loop had started, so that its tasks are not reset and its
// start is not waited for.
type position struct {
	loop, task int
	since      time.Time
	mid        bool
}

// interruptedPrefix starts the error of a task stopped by an interrupt.
const interruptedPrefix = "interrupted: "

// resumePoint checks that stored is an earlier run of the same spec and
// revision as fresh (a new result of the plan) and returns where to go on:
// the first task of its loop that had not finished, after the loop when
// every task had. A task stopped by the interrupt that ended the stored run
// runs again. It marks the tasks after a failed one skipped, as the failed
// run would have.
func resumePoint(stored, fresh *Result) (position, error) {
	switch {
	case stored.Experiment != fresh.Experiment || stored.Revision != fresh.Revision:
		return position{}, fmt.Errorf("it is the result of %s revision %d, not %s revision %d", stored.Experiment, stored.Revision, fresh.Experiment, fresh.Revision)
	case !slices.Equal(taskNames(stored.Tasks), taskNames(fresh.Tasks)):
		return position{}, fmt.Errorf("its tasks (%s) are not the spec's (%s)", strings.Join(taskNames(stored.Tasks), ", "), strings.Join(taskNames(fresh.Tasks), ", "))
	case !slices.Equal(versionNames(stored.Versions), versionNames(fresh.Versions)):
		return position{}, fmt.Errorf("its versions (%s) are not the spec's (%s)", strings.Join(versionNames(stored.Versions), ", "), strings.Join(versionNames(fresh.Versions), ", "))
	case stored.Loops != fresh.Loops:
		return position{}, fmt.Errorf("it has %d loops, the spec %d", stored.Loops, fresh.Loops)
	case stored.Completed() && !stored.Interrupted:
		return position{}, nil
	}
	if stored.Interrupted {
		stored.Interrupted, stored.EndTime = false, nil
		for i, t := range stored.Tasks {
			if t.State == TaskFailed && strings.HasPrefix(t.Error, interruptedPrefix) || t.State == TaskSkipped && t.Reason == skipAfterFailure {
				stored.Tasks[i] = TaskResult{Task: t.Task, State: TaskPending}
			}
		}
	}
	loop := max(stored.Loop, 1)
	all := len(stored.Tasks)
	failed := slices.IndexFunc(stored.Tasks, func(t TaskResult) bool { return t.State == TaskFailed })
	next := slices.IndexFunc(stored.Tasks, func(t TaskResult) bool { return t.State == TaskPending || t.State == TaskRunning })
	if next >= 0 && (failed < 0 || next < failed) {
		// The loop goes on: the summary an interrupt added for it is
		// replaced by the one its end adds.
		if h := stored.History; len(h) > 0 && h[len(h)-1].Loop == loop {
			stored.History = h[:len(h)-1]
		}
	}
	switch {
	case failed >= 0 && (next < 0 || failed < next):
		for i := failed + 1; i < all; i++ {
			if s := stored.Tasks[i].State; s == TaskPending || s == TaskRunning {
				stored.Tasks[i] = TaskResult{Task: stored.Tasks[i].Task, State: TaskSkipped, Reason: skipAfterFailure}
			}
		}
		if h := stored.History; len(h) > 0 && h[len(h)-1].Loop == loop {
			// Its summary is in: an interrupt came while the next loop
			// was awaited (failedLoops: continue).
			return position{loop: loop + 1}, nil
		}
		return position{loop: loop, task: all, mid: true}, nil
	case next >= 0:
		return position{loop: loop, task: next, mid: true}, nil
	case stored.Stopped == "" && len(stored.History) > 0 && stored.History[len(stored.History)-1].Loop == loop:
		return position{loop: loop + 1}, nil // the loop's summary is in: it ended
	}
	return position{loop: loop, task: all, mid: true}, nil
}

// skipAfterFailure is the reason of a task skipped after a failed one.
const skipAfterFailure = "an earlier task failed"

// outcome is the error that the run which stored r ended with: a failed
// task, or unmet SLOs when the spec fails on them.
func (r *Result) outcome(plan *Plan) error {
	for i, t := range r.Tasks {
		if t.State == TaskFailed {
			return fmt.Errorf("%w: task %d (%s): %s", ErrTaskFailed, i, t.Task, t.Error)
		}
	}
	if plan.Experiment.Spec.FailOnSLOs && !r.SLOsSatisfied() {
		return fmt.Errorf("%w (failOnSLOs is set)", ErrSLOsNotMet)
	}
	return nil
}

// loopStart is when the loop in progress started: its first task's start,
// or def when none started.
func (r *Result) loopStart(def time.Time) time.Time {
	for _, t := range r.Tasks {
		if t.StartTime != nil {
			return *t.StartTime
		}
	}
	return def
}

func taskNames(ts []TaskResult) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Task
	}
	return out
}

func versionNames(vs []VersionResult) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Name
	}
	return out
}

// later is the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
