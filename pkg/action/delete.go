package action

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/iter8-tools/iter8/pkg/store"
)

// Delete removes an experiment: a local one's spec and result (only when
// they are an Iter8 spec and result), or a release (Helm's uninstall) and
// the Jobs and Pods its runs left.
type Delete struct {
	// Experiment is the experiment to delete.
	Experiment store.Experiment
	// Timeout bounds the deletion (a release's uninstall); 0 is
	// DefaultTimeout.
	Timeout time.Duration
}

// NewDelete returns a Delete action.
func NewDelete(*Configuration) *Delete { return &Delete{} }

// Validate checks the fields.
func (a *Delete) Validate() error {
	switch {
	case a.Experiment == nil:
		return errors.New("no experiment to delete")
	case a.Timeout < 0:
		return fmt.Errorf("timeout must not be negative, got %v", a.Timeout)
	}
	return nil
}

// Run returns what it removed: files, or Kind/name of cluster objects.
func (a *Delete) Run(ctx context.Context) ([]string, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(a.Timeout, DefaultTimeout))
	defer cancel()
	return a.Experiment.Delete(ctx)
}
