package experiment

import (
	"context"
	"log/slog"
	"time"
)

// WorkerPool runs the workers of a load task in processes of their own
// (the Pods of an Indexed Job) and gathers what each one measured, so that
// a load is not bounded by one Pod's cores and network.
type WorkerPool interface {
	// Run runs workers 0 to Workers-1 of the plan's task Task, which all
	// time their load from one start, and waits until each has ended: out[w]
	// is what worker w put (see WorkerRole), or why it has no part. The
	// error is the pool's own failure; it may come with outcomes.
	Run(ctx context.Context, work Work) (out []WorkerOutcome, err error)
}

// WorkerOutcome is one worker's part, or the error that left it none.
type WorkerOutcome struct {
	Part []byte
	Err  error
}

// Work is one load task's share-out to a WorkerPool.
type Work struct {
	// Task is the task's index in the plan; Loop the run's loop (from 1).
	Task, Loop int
	Workers    int
	// Log is the task's logger, for the pool's own lines.
	Log *slog.Logger
}

// WorkerRole is what a process that runs one worker of a load task knows:
// which worker it is, when the load's clock started, and where its part
// goes. A task given a role sends only its worker's share, puts its part
// and records nothing in the result.
type WorkerRole struct {
	Index int
	Start time.Time
	// Put stores the worker's part (a load.Part as JSON), replacing any
	// earlier one of the same worker, so that a retried worker's share is
	// counted once.
	Put func(ctx context.Context, part []byte) error
}

// Spreader is a task that can spread its load over workers: a process
// given a WorkerRole runs only such a task.
type Spreader interface {
	// Workers is how many workers share the task's load (1: none).
	Workers() int
}
