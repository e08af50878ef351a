package action

import (
	"context"
	"errors"
	"fmt"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/store"
)

// Report reads an experiment's result.
type Report struct {
	// Experiment is the experiment whose result to read.
	Experiment store.Experiment
	// Revision picks the result of that revision; 0 is the newest.
	Revision int
}

// NewReport returns a Report action.
func NewReport(*Configuration) *Report { return &Report{} }

// Validate checks the fields.
func (a *Report) Validate() error {
	return validateTarget(a.Experiment, a.Revision)
}

// Run returns the result; the error wraps store.ErrNoResult when there is
// none yet.
func (a *Report) Run(ctx context.Context) (*experiment.Result, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return a.Experiment.ReadRevision(ctx, a.Revision)
}

// validateTarget checks the experiment and revision that a command reads.
func validateTarget(e store.Experiment, revision int) error {
	switch {
	case e == nil:
		return errors.New("no experiment given")
	case revision < 0:
		return fmt.Errorf("revision must be at least 1 (or 0: the newest), got %d", revision)
	}
	return nil
}
