package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// ResultWriter stores a result; it is called after every task.
type ResultWriter interface {
	WriteResult(ctx context.Context, r *Result) error
}

// ErrTaskFailed is wrapped by the error of a run in which a task failed.
var ErrTaskFailed = errors.New("a task failed")

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
}

// Run runs every task of plan and returns the result. The error wraps
// ErrTaskFailed when a task failed, ErrSLOsNotMet when SLOs were not met and
// the spec asks to fail on them, or is the store's error. The result is
// returned (and was written) in every case where the store works.
func (r *Runner) Run(ctx context.Context, plan *Plan) (*Result, error) {
	now := r.Now
	if now == nil {
		now = time.Now
	}
	logger := r.Log
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	progress := r.Progress
	if progress == nil {
		progress = io.Discard
	}
	secret := r.Secret
	if secret == nil {
		secret = func(string) (string, bool) { return "", false }
	}
	rev := max(r.Revision, 1)

	res := NewResult(plan, rev, now())
	env := &Env{
		Result:   res,
		Versions: plan.Experiment.Spec.VersionNames(),
		Log:      logger,
		Progress: progress,
		Secret:   secret,
		Now:      now,
		Kube:     r.Kube,
	}
	// Writes use a context that outlives an interrupt, so that what finished
	// before the interrupt is kept.
	writeCtx := context.WithoutCancel(ctx)
	if err := r.write(writeCtx, res); err != nil {
		return res, err
	}

	var failure error
	for i, t := range plan.Tasks {
		tr := &res.Tasks[i]
		if failure != nil {
			tr.State = TaskSkipped
			continue
		}
		if t.condition != nil {
			ok, err := t.condition.eval(res)
			if err != nil {
				failure = fmt.Errorf("task %d (%s): evaluate if %q: %w", i, t.Spec.Task, t.Spec.If, err)
				tr.State, tr.Error = TaskFailed, failure.Error()
				continue
			}
			if !ok {
				tr.State = TaskSkipped
				logger.Info("task skipped: its condition is false", "task", i, "name", t.Spec.Task, "if", t.Spec.If)
				if err := r.write(writeCtx, res); err != nil {
					return res, err
				}
				continue
			}
		}
		start := now()
		tr.State, tr.StartTime = TaskRunning, &start
		logger.Info("task started", "task", i, "name", t.Spec.Task)
		if err := r.write(writeCtx, res); err != nil {
			return res, err
		}
		err := runTask(ctx, t.Task, env)
		tr.Duration = now().Sub(start)
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("interrupted: %w", err)
			}
			failure = fmt.Errorf("task %d (%s): %w", i, t.Spec.Task, err)
			tr.State, tr.Error = TaskFailed, err.Error()
			logger.Error("task failed", "task", i, "name", t.Spec.Task, "error", err.Error())
		} else {
			tr.State = TaskSucceeded
			logger.Info("task succeeded", "task", i, "name", t.Spec.Task, "duration", tr.Duration.Round(time.Millisecond).String())
		}
		if err := r.write(writeCtx, res); err != nil {
			return res, err
		}
	}
	end := now()
	res.EndTime = &end
	if err := r.write(writeCtx, res); err != nil {
		return res, err
	}
	switch {
	case failure != nil:
		return res, fmt.Errorf("%w: %w", ErrTaskFailed, failure)
	case plan.Experiment.Spec.FailOnSLOs && !res.SLOsSatisfied():
		return res, fmt.Errorf("%w (failOnSLOs is set)", ErrSLOsNotMet)
	}
	return res, nil
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
	if err := r.Store.WriteResult(ctx, res); err != nil {
		return fmt.Errorf("write result of experiment %s: %w", res.Experiment, err)
	}
	return nil
}
