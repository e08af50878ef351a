package action

import (
	"context"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/store"
)

// Report reads the result of a local experiment.
type Report struct {
	cfg *Configuration
	// SpecPath is the experiment's spec; the result is read from beside it.
	SpecPath string
}

// NewReport returns a Report action.
func NewReport(cfg *Configuration) *Report {
	return &Report{cfg: cfg, SpecPath: store.DefaultSpecFile}
}

// Run returns the result; the error wraps store.ErrNoResult when there is
// none yet.
func (a *Report) Run(ctx context.Context) (*experiment.Result, error) {
	return (&store.File{SpecPath: a.SpecPath}).ReadResult(ctx)
}

// Log returns the log lines kept with a local experiment's result.
type Log struct {
	cfg      *Configuration
	SpecPath string
}

// NewLog returns a Log action.
func NewLog(cfg *Configuration) *Log {
	return &Log{cfg: cfg, SpecPath: store.DefaultSpecFile}
}

// Run returns the log lines.
func (a *Log) Run(ctx context.Context) ([]string, error) {
	r, err := (&store.File{SpecPath: a.SpecPath}).ReadResult(ctx)
	if err != nil {
		return nil, err
	}
	return r.Log, nil
}

// Delete removes a local experiment's spec and result.
type Delete struct {
	cfg      *Configuration
	SpecPath string
}

// NewDelete returns a Delete action.
func NewDelete(cfg *Configuration) *Delete {
	return &Delete{cfg: cfg, SpecPath: store.DefaultSpecFile}
}

// Run returns the files it removed.
func (a *Delete) Run(_ context.Context) ([]string, error) {
	return (&store.File{SpecPath: a.SpecPath}).Delete()
}
