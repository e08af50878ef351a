package action

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/store"
)

// LogTailLines is how many lines of a run's log are kept with its result.
const LogTailLines = 100

// Run runs a local experiment spec and writes its result beside it.
type Run struct {
	cfg *Configuration
	// SpecPath is the spec file.
	SpecPath string
	// Revision is recorded in the result (a Helm release's revision in a
	// cluster); 0 means 1.
	Revision int
	// Release, when set, runs that experiment in the cluster: its spec and
	// results are in the release's Secrets.
	Release string
	// Job, when set with Release, is the Job running this; it is first made
	// owned by the release's result Secret (see store.Secrets.AdoptJob).
	Job string
	// Spec, when set with Release, is the spec to run instead of the one in
	// the release's spec Secret (a gate of the release chart passes its spec
	// in the Job, so that no hook object outlives the release).
	Spec []byte
	// Loops and Interval, when set (Loops > 0, Interval not nil), replace
	// the spec's loops and interval.
	Loops    int
	Interval *time.Duration
}

// NewRun returns a Run action.
func NewRun(cfg *Configuration) *Run {
	return &Run{cfg: cfg, SpecPath: store.DefaultSpecFile}
}

// Run validates the whole spec, then runs it. A spec that fails validation
// returns an error wrapping ErrInvalidSpec, having sent nothing and written no
// result.
func (a *Run) Run(ctx context.Context) (*experiment.Result, error) {
	if a.Release != "" {
		return a.runRelease(ctx)
	}
	f := &store.File{SpecPath: a.SpecPath}
	data, err := f.ReadSpec()
	if err != nil {
		return nil, err
	}
	plan, err := decodeSpec(data, a.cfg, filepath.Dir(a.SpecPath))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.SpecPath, err)
	}
	return runPlan(ctx, a.cfg, a.loops(plan), f, a.Revision)
}

// loops applies the Loops and Interval overrides.
func (a *Run) loops(plan *experiment.Plan) *experiment.Plan {
	if a.Loops > 0 {
		plan.Loops = a.Loops
	}
	if a.Interval != nil {
		plan.Interval = *a.Interval
	}
	return plan
}

// runRelease runs a release's experiment from its spec Secret, writing its
// result Secret. Files a spec names are read relative to the working folder.
func (a *Run) runRelease(ctx context.Context) (*experiment.Result, error) {
	s, err := a.cfg.secrets(a.Release, max(a.Revision, 1))
	if err != nil {
		return nil, fmt.Errorf("run experiment %s: %w", a.Release, err)
	}
	if a.Job != "" {
		if err := s.AdoptJob(ctx, a.Job); err != nil {
			return nil, err
		}
	}
	data := a.Spec
	if data == nil {
		if data, err = s.ReadSpec(ctx); err != nil {
			return nil, err
		}
	}
	plan, err := decodeSpec(data, a.cfg, ".")
	if err != nil {
		return nil, fmt.Errorf("experiment %s in namespace %s: %w", a.Release, s.Namespace, err)
	}
	return runPlan(ctx, a.cfg, a.loops(plan), s, a.Revision)
}

// decodeSpec validates a spec; files it names are read relative to dir.
func decodeSpec(data []byte, cfg *Configuration, dir string) (*experiment.Plan, error) {
	plan, err := experiment.Decode(data, experiment.DecodeOptions{
		Registry: cfg.Registry,
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

func runPlan(ctx context.Context, cfg *Configuration, plan *experiment.Plan, w experiment.ResultWriter, revision int) (*experiment.Result, error) {
	tail := experiment.NewLogTail(LogTailLines)
	r := &experiment.Runner{
		Store:    w,
		Log:      cfg.logger(io.MultiWriter(cfg.Log, tail)),
		LogTail:  tail,
		Progress: cfg.Progress,
		Secret:   cfg.Secret,
		Now:      cfg.Now,
		Revision: revision,
		Kube:     cfg.kube,
	}
	return r.Run(ctx, plan)
}
