package action

import (
	"context"

	"github.com/iter8-tools/iter8/pkg/store"
)

// Log reads the log lines kept with an experiment's result (a run in a
// cluster that stored none is read from its Pod).
type Log struct {
	// Experiment is the experiment whose log to read.
	Experiment store.Experiment
	// Revision picks the run of that revision; 0 is the newest.
	Revision int
}

// NewLog returns a Log action.
func NewLog(*Configuration) *Log { return &Log{} }

// Validate checks the fields.
func (a *Log) Validate() error {
	return validateTarget(a.Experiment, a.Revision)
}

// Run returns the log lines.
func (a *Log) Run(ctx context.Context) ([]string, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return a.Experiment.ReadLog(ctx, a.Revision)
}
