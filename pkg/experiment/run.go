package experiment

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// ResultWriter stores a result; it is called after every task.
type ResultWriter interface {
	WriteResult(ctx context.Context, r *Result) error
}

// ErrTaskFailed is wrapped by the error of a run in which a task failed.
var ErrTaskFailed = errors.New("a task failed")

// ErrInterrupted is wrapped by the error of a run stopped between loops.
var ErrInterrupted = errors.New("interrupted")

// ErrSLOsNotMet is wrapped by the error of a run whose SLOs were not all met
// when the spec sets failOnSLOs.
var ErrSLOsNotMet = errors.New("SLOs not met")

// Runner runs a plan's tasks in order.
type Runner struct {
	// Store receives the result after every task.
	Store ResultWriter
	// Log receives progress lines; nil discards them.
	Log *slog.Logger
	// Progress receives live load progress; nil discards it.
	Progress io.Writer
	// LogTail, when set, is copied into the result's Log after every task.
	LogTail *LogTail
	// Secret looks up named secrets for tasks; nil finds none.
	Secret func(name string) (string, bool)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Revision is recorded in the result; 0 means 1.
	Revision int
	// Kube reaches Kubernetes objects for tasks that read them; nil when
	// there is no cluster.
	Kube func() (ObjectReader, string, error)
	// Wait waits between loops until the clock reaches a time or ctx ends;
	// nil means a timer. Tests give one that follows their clock.
	Wait func(ctx context.Context, until time.Time) error
	// Releases changes app releases' weights for the bandit task; nil
	// when there is no cluster.
	Releases func() (Releases, error)
	// Workers runs load tasks' workers in Pods of their own; nil runs
	// them in this process.
	Workers WorkerPool
	// Resume, when set, is the stored result of this revision's run by an
	// earlier process (a long-running experiment's Job retried its pod):
	// the run continues it from the first task that had not finished, or,
	// when it had ended, returns it with its outcome and runs nothing.
	Resume *Result
}

// Run runs every task of plan, plan.Loops times, and returns the result.
// The error wraps ErrTaskFailed when a task failed (later tasks are
// skipped, and later loops unless the spec's failedLoops is continue,
// when only a failure in the last loop, or one wrapping ErrStopRun, fails
// the run), ErrInterrupted when ctx ended between loops, ErrSLOsNotMet
// when SLOs were not met and the spec asks to fail on them (checked after
// every loop, so that a gate fails at once), or is the store's error. A
// failure that ends the run, but not an interrupt, is told to the tasks
// that are FailureHandlers first. The result is returned (and was
// written) in every case where the store works.
func (r *Runner) Run(ctx context.Context, plan *Plan) (*Result, error) {
	env := r.env(plan)
	from := position{loop: 1}
	if r.Resume != nil {
		at, err := resumePoint(r.Resume, env.Result)
		switch {
		case err != nil:
			env.Log.Warn("the stored result is not resumed: the run starts over", "reason", err.Error())
		case r.Resume.Completed():
			env.Log.Info("the run had ended: its stored result stands", "loop", r.Resume.Loop, "loops", r.Resume.Loops)
			return r.Resume, r.Resume.outcome(plan)
		default:
			env.Result, from = r.Resume, at
			from.since = env.Time()
			env.Log.Info("resuming the stored run", "loop", at.loop, "loops", env.Result.Loops, "task", at.task)
		}
	}
	res := env.Result
	if err := r.write(ctx, res); err != nil {
		return res, err
	}
	failure, err := r.runLoops(ctx, plan, env, from)
	if err != nil {
		return res, err
	}
	end := env.Time()
	res.EndTime, res.Interrupted = &end, interrupted(ctx, failure)
	if err := r.write(ctx, res); err != nil {
		return res, err
	}
	return res, failure
}

// env starts the result of a run of plan and what its tasks are given,
// with the Runner's defaults filled in.
func (r *Runner) env(plan *Plan) *Env {
	env := &Env{
		Versions: plan.Experiment.Spec.VersionNames(),
		Log:      cmp.Or(r.Log, slog.New(slog.DiscardHandler)),
		Progress: cmp.Or[io.Writer](r.Progress, io.Discard),
		Secret:   r.Secret,
		Now:      r.Now,
		Kube:     r.Kube,
		Releases: r.Releases,
		Workers:  r.Workers,
	}
	if env.Secret == nil {
		env.Secret = func(string) (string, bool) { return "", false }
	}
	env.Result = NewResult(plan, max(r.Revision, 1), env.Time())
	env.Result.Loop, env.Result.Loops = 1, max(plan.Loops, 1)
	return env
}

// runLoops runs the tasks of plan once per loop, waiting for each loop's
// start, from a position (the first loop's first task, or where a resumed
// run stopped). It returns what failed the run, a failed task, an
// interrupt or unmet SLOs with failOnSLOs set, and separately the store's
// error, which ends the run.
func (r *Runner) runLoops(ctx context.Context, plan *Plan, env *Env, from position) (failure, storeErr error) {
	res, logger := env.Result, env.Log
	w := &watches{}
	defer w.stopAll()
	wait := r.Wait
	if wait == nil {
		wait = waitUntil
	}
	// Loops start every interval from the run's start; after a resume,
	// from the resume, so that the loops an outage missed do not run back
	// to back on the same evidence.
	base := res.StartTime
	if !from.since.IsZero() {
		base = later(base, from.since.Add(-time.Duration(from.loop-1)*plan.Interval))
	}
	if from.loop > res.Loops { // a resumed run whose last loop had ended
		return res.outcome(plan), nil
	}
	for loop := from.loop; loop <= res.Loops; loop++ {
		resumed := loop == from.loop && from.mid
		if loop > 1 && !resumed {
			next := base.Add(time.Duration(loop-1) * plan.Interval)
			if err := wait(ctx, next); err != nil {
				logger.Error("run interrupted", "loop", loop, "loops", res.Loops)
				return fmt.Errorf("%w before loop %d of %d: %w", ErrInterrupted, loop, res.Loops, err), nil
			}
			for i := range res.Tasks { // every task is pending again
				res.Tasks[i] = TaskResult{Task: res.Tasks[i].Task, State: TaskPending}
			}
			res.Loop = loop
			if err := r.write(ctx, res); err != nil {
				return nil, err
			}
		}
		if res.Loops > 1 {
			logger.Info("loop started", "loop", loop, "loops", res.Loops)
		}
		env.NextLoopAt = time.Time{}
		if loop < res.Loops {
			env.NextLoopAt = base.Add(time.Duration(loop) * plan.Interval)
		}
		loopStart, first := env.Time(), 0
		if resumed {
			loopStart, first = res.loopStart(loopStart), from.task
		}
		var done bool
		if failure, done, storeErr = r.runTasks(ctx, plan, env, first, w); storeErr != nil {
			return failure, storeErr
		}
		if res.Loops > 1 {
			res.addHistory(res.summarize(loop, loopStart, env.Time(), failure != nil))
		}
		if failure != nil && (done || loop == res.Loops || plan.Experiment.Spec.FailedLoops != FailedLoopsContinue) {
			r.runFailed(ctx, plan, env, w, failure)
			return failure, nil
		}
		if failure != nil {
			logger.Warn("loop failed; the next loop runs (failedLoops: continue)", "loop", loop, "loops", res.Loops, "error", failure.Error())
			continue
		}
		if plan.Experiment.Spec.FailOnSLOs && !res.SLOsSatisfied() {
			if loop < res.Loops {
				logger.Info("SLOs not met: later loops are not run (failOnSLOs is set)", "loop", loop, "loops", res.Loops)
			}
			failure = fmt.Errorf("%w (failOnSLOs is set)", ErrSLOsNotMet)
			r.runFailed(ctx, plan, env, w, failure)
			return failure, nil
		}
		if done {
			if loop < res.Loops {
				logger.Info("later loops are not run", "loop", loop, "loops", res.Loops, "reason", res.Stopped)
			}
			return nil, nil
		}
	}
	return nil, nil
}

// runTasks runs the tasks of plan once, from the task first (the tasks
// before it ran in an earlier process: their states stand). It returns the
// first task's failure (wrapping ErrTaskFailed), after which the other
// tasks are skipped, whether a task ended the experiment (ErrDone: the
// loop's other tasks still run), and separately the store's error, which
// ends the run.
func (r *Runner) runTasks(ctx context.Context, plan *Plan, env *Env, first int, w *watches) (failure error, done bool, storeErr error) {
	res, logger, now := env.Result, env.Log, env.Time
	done = first > 0 && res.Stopped != ""
	for i, t := range plan.Tasks {
		tr := &res.Tasks[i]
		if i < first {
			if tr.State == TaskFailed && failure == nil {
				failure = fmt.Errorf("%w: task %d (%s): %s", ErrTaskFailed, i, t.Spec.Task, tr.Error)
				// The stored error is text: a stop it wrapped still stops.
				done = done || strings.Contains(tr.Error, ErrStopRun.Error())
			}
			continue
		}
		if failure != nil {
			tr.State, tr.Reason = TaskSkipped, skipAfterFailure
			continue
		}
		if t.condition != nil {
			ok, err := t.condition.eval(res)
			if err != nil {
				failure = fmt.Errorf("%w: task %d (%s): evaluate if %q: %w", ErrTaskFailed, i, t.Spec.Task, t.Spec.If, err)
				tr.State, tr.Error = TaskFailed, fmt.Sprintf("evaluate if %q: %v", t.Spec.If, err)
				continue
			}
			if !ok {
				tr.State, tr.Reason = TaskSkipped, SkipReasonIf(t.Spec.If)
				logger.Info("task skipped: its condition is false", "task", i, "name", t.Spec.Task, "if", t.Spec.If)
				if err := r.write(ctx, res); err != nil {
					return failure, done, err
				}
				continue
			}
		}
		w.stop(i)
		start := now()
		tr.State, tr.StartTime = TaskRunning, &start
		logger.Info("task started", "task", i, "name", t.Spec.Task)
		if err := r.write(ctx, res); err != nil {
			return failure, done, err
		}
		env.Task = i
		err := runTask(ctx, t.Task, env)
		tr.Duration = now().Sub(start)
		if errors.Is(err, ErrDone) {
			done, res.Stopped, tr.Reason = true, err.Error(), err.Error()
			logger.Info("the experiment reached its end", "task", i, "name", t.Spec.Task, "reason", err.Error())
			err = nil
		}
		if errors.Is(err, ErrStopRun) {
			done = true // the run stops even with failedLoops continue
		}
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%s%w", interruptedPrefix, err)
			}
			failure = fmt.Errorf("%w: task %d (%s): %w", ErrTaskFailed, i, t.Spec.Task, err)
			tr.State, tr.Error = TaskFailed, err.Error()
			logger.Error("task failed", "task", i, "name", t.Spec.Task, "error", err.Error())
		} else {
			tr.State = TaskSucceeded
			logger.Info("task succeeded", "task", i, "name", t.Spec.Task, "duration", tr.Duration.Round(time.Millisecond).String())
			if wt, ok := t.Task.(Watcher); ok && !done && res.Loop < res.Loops {
				w.start(ctx, i, wt.Watch(env), logger)
			}
		}
		if err := r.write(ctx, res); err != nil {
			return failure, done, err
		}
	}
	return failure, done, nil
}

// interrupted tells whether an interrupt ended the run (between loops, or
// stopping a task), not a verdict or a failure that came first.
func interrupted(ctx context.Context, failure error) bool {
	return ctx.Err() != nil && failure != nil &&
		(errors.Is(failure, ErrInterrupted) || strings.Contains(failure.Error(), interruptedPrefix))
}

// SkipReasonIf is the reason of a task skipped because its `if` was false.
func SkipReasonIf(expr string) string {
	return "if: " + expr + " was false"
}

// waitUntil waits for the clock to reach t, or for ctx to end.
func waitUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runFailed lets the tasks that handle failures act on the failure that
// ends the run, unless it is an interrupt. The run's end writes the
// result after, with its end time (an earlier write would look, to a
// resumed run, like a loop that had ended well).
func (r *Runner) runFailed(ctx context.Context, plan *Plan, env *Env, w *watches, failure error) {
	if ctx.Err() != nil {
		return
	}
	w.stopAll()
	for _, t := range plan.Tasks {
		if h, ok := t.Task.(FailureHandler); ok {
			h.RunFailed(ctx, env, failure)
		}
	}
}

// watches are the Watchers' functions running between their tasks' runs,
// by task index.
type watches struct {
	running map[int]*watch
}

type watch struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (w *watches) start(ctx context.Context, task int, f func(context.Context), logger *slog.Logger) {
	w.stop(task)
	ctx, cancel := context.WithCancel(ctx)
	x := &watch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(x.done)
		defer func() {
			// A watch's panic must not end the run.
			if p := recover(); p != nil {
				logger.Error("internal error (please report it): a task's watch between its runs stopped", "task", task, "panic", fmt.Sprint(p))
			}
		}()
		f(ctx)
	}()
	if w.running == nil {
		w.running = map[int]*watch{}
	}
	w.running[task] = x
}

// stop ends task's watch and waits for it: it may be finishing an
// upgrade, which the task's next run must see.
func (w *watches) stop(task int) {
	if x, ok := w.running[task]; ok {
		x.cancel()
		<-x.done
		delete(w.running, task)
	}
}

func (w *watches) stopAll() {
	for task := range w.running {
		w.stop(task)
	}
}

// runTask turns a panic in a task into a task failure, so that a bug in one
// task cannot lose the result of the others.
func runTask(ctx context.Context, t Task, env *Env) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error (please report it): %v", p)
		}
	}()
	return t.Run(ctx, env)
}

func (r *Runner) write(ctx context.Context, res *Result) error {
	if r.LogTail != nil {
		res.Log = r.LogTail.Lines()
	}
	if r.Store == nil {
		return nil
	}
	// The write outlives an interrupt, so that what finished before it is
	// kept.
	if err := r.Store.WriteResult(context.WithoutCancel(ctx), res); err != nil {
		return fmt.Errorf("write result of experiment %s: %w", res.Experiment, err)
	}
	return nil
}
