package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/store"
)

// LogTailLines is how many lines of a run's log are kept with its result.
const LogTailLines = 100

// Run runs an experiment's spec and stores its result.
type Run struct {
	cfg *Configuration
	// Experiment is the experiment to run: its spec is read from it (unless
	// Spec is set) and its result written to it.
	Experiment store.Experiment
	// Revision is recorded in the result (a Helm release's revision in a
	// cluster); 0 means 1.
	Revision int
	// Job, when set, is the Job running this; it is first made owned by the
	// experiment's result (see store.Secrets.AdoptJob), so that deleting the
	// experiment removes it. Only an experiment in a cluster has Jobs.
	Job string
	// Spec, when set, is the spec to run instead of the experiment's own (a
	// gate of the release chart passes its spec in the Job, so that no hook
	// object outlives the release).
	Spec []byte
	// Loops and Interval, when set, replace the spec's loops and interval.
	Loops    *int
	Interval *time.Duration
	// Resume goes on with the stored result of Revision, if there is one,
	// from where its run stopped: the chart's long-running Job sets it, so
	// that a retried pod neither starts over nor runs an ended run again.
	Resume bool
}

// NewRun returns a Run action.
func NewRun(cfg *Configuration) *Run {
	return &Run{cfg: cfg}
}

// jobAdopter is an experiment whose result can own the Job that runs it.
type jobAdopter interface {
	AdoptJob(ctx context.Context, job string) error
}

// Validate checks the fields.
func (a *Run) Validate() error {
	switch {
	case a.Experiment == nil:
		return errors.New("no experiment to run")
	case a.Revision < 0:
		return fmt.Errorf("revision must be at least 1, got %d", a.Revision)
	case a.Loops != nil && (*a.Loops < 1 || *a.Loops > experiment.MaxLoops):
		return fmt.Errorf("loops must be from 1 to %d, got %d", experiment.MaxLoops, *a.Loops)
	case a.Interval != nil && *a.Interval < 0:
		return fmt.Errorf("interval must not be negative, got %v", *a.Interval)
	}
	if _, ok := a.Experiment.(jobAdopter); a.Job != "" && !ok {
		return fmt.Errorf("job %s: %s is not in a cluster, so no Job runs it", a.Job, a.Experiment)
	}
	return nil
}

// Run validates the whole spec, then runs it. A spec that fails validation
// returns an error wrapping ErrInvalidSpec, having sent nothing and written no
// result.
func (a *Run) Run(ctx context.Context) (*experiment.Result, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if a.Job != "" {
		if err := a.Experiment.(jobAdopter).AdoptJob(ctx, a.Job); err != nil {
			return nil, err
		}
	}
	data := a.Spec
	if data == nil {
		var err error
		if data, err = a.Experiment.ReadSpec(ctx); err != nil {
			return nil, err
		}
	}
	plan, err := decodeSpec(data, a.cfg, a.Experiment.SpecDir(), a.Loops, a.Interval)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Experiment, err)
	}
	var stored *experiment.Result
	if a.Resume {
		stored, err = a.Experiment.ReadRevision(ctx, max(a.Revision, 1))
		if errors.Is(err, store.ErrNoResult) {
			stored, err = nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: read the result to resume: %w", a.Experiment, err)
		}
	}
	return runPlan(ctx, a.cfg, plan, a.Experiment, a.Revision, stored)
}

// decodeSpec validates a spec, with loops and interval (when not nil) in
// place of its own; files it names are read relative to dir.
func decodeSpec(data []byte, cfg *Configuration, dir string, loops *int, interval *time.Duration) (*experiment.Plan, error) {
	plan, err := experiment.Decode(data, experiment.DecodeOptions{
		Registry: cfg.Registry, Loops: loops, Interval: interval,
		ReadFile: func(name string) ([]byte, error) {
			if !filepath.IsAbs(name) {
				name = filepath.Join(dir, name)
			}
			return experiment.ReadRegularFile(name, experiment.MaxFileSize)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSpec, err)
	}
	return plan, nil
}

// runPlan runs plan, resuming stored when it is not nil.
func runPlan(ctx context.Context, cfg *Configuration, plan *experiment.Plan, w experiment.ResultWriter, revision int, stored *experiment.Result) (*experiment.Result, error) {
	tail := experiment.NewLogTail(LogTailLines)
	// The log goes on where the earlier process's ended, when the runner
	// takes its result up: a run that starts over (the stored result is of
	// another spec) starts a log of its own.
	if stored != nil && stored.Resumable(plan, revision) {
		for _, line := range stored.Log {
			fmt.Fprintln(tail, line)
		}
	}
	r := &experiment.Runner{
		Store:    w,
		Log:      cfg.logger(io.MultiWriter(cfg.Log, tail)),
		LogTail:  tail,
		Progress: cfg.Progress,
		Secret:   cfg.Secret,
		Now:      cfg.Now,
		Revision: revision,
		Kube:     cfg.kube,
		Releases: cfg.releases,
		Resume:   stored,
	}
	return r.Run(ctx, plan)
}
