package store

import (
	"context"
	"fmt"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// Experiment is where one experiment lives: its spec and its results. A
// local experiment is a File; one in a cluster is its release's Secrets,
// with Helm's uninstall as Delete (pkg/action adds it, since Helm's actions
// are there). The front-end chooses one and the actions use only this
// interface, so that no action asks where an experiment lives.
type Experiment interface {
	// String names the experiment in errors and messages.
	fmt.Stringer
	// SpecDir is the folder that files named in the spec are read from.
	SpecDir() string
	// ReadSpec reads the spec.
	ReadSpec(ctx context.Context) ([]byte, error)
	// ReadResult reads the newest result; ReadRevision the result of one
	// revision (0: the newest). Both wrap ErrNoResult when there is none.
	ReadResult(ctx context.Context) (*experiment.Result, error)
	ReadRevision(ctx context.Context, revision int) (*experiment.Result, error)
	// WriteResult stores a run's result, replacing the one of its revision.
	WriteResult(ctx context.Context, r *experiment.Result) error
	// Update reads the result of the writer's revision (a zero Result when
	// there is none), lets change modify it and stores it. In a cluster it
	// calls change again on what is stored after a conflict, so that a
	// concurrent writer's change is never lost.
	Update(ctx context.Context, change func(*experiment.Result) error) error
	// Watch signals changes of the result until ctx ends; the channel
	// closes when watching stops, after which callers poll.
	Watch(ctx context.Context) (<-chan struct{}, error)
	// ReadLog reads the log lines of a run (revision 0: the newest).
	ReadLog(ctx context.Context, revision int) ([]string, error)
	// Delete removes the experiment and reports what it removed.
	Delete(ctx context.Context) ([]string, error)
}

var _ Experiment = (*File)(nil)

// signal sends on a channel with room for one pending signal, never
// blocking: a watcher needs to know that something changed, not how often.
func signal(changes chan<- struct{}) {
	select {
	case changes <- struct{}{}:
	default:
	}
}
