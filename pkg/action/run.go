package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/podworkers"
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
	// WorkersAccount, when set with Job, runs load tasks with workers as
	// the Pods of an Indexed Job under this ServiceAccount (the chart's
	// worker account), rather than in this process.
	WorkersAccount string
	// Worker, when set, makes this run one worker of a load task: it sends
	// that worker's share only and stores its part; the experiment's own
	// run records the merged result.
	Worker *Worker
}

// Worker is what a worker Pod is told by the experiment's run that made
// it: which task, which worker (the Pod's JOB_COMPLETION_INDEX), when the
// load's clock started, and the UID of the result Secret that owns the
// parts.
type Worker struct {
	Task, Index int
	Start       time.Time
	Owner       string
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
	_, inCluster := clusterSecrets(a.Experiment)
	switch {
	case a.WorkersAccount != "" && (a.Job == "" || !inCluster || a.Spec != nil):
		return errors.New("workers account: workers run as Pods only for an experiment in a cluster whose Job (--job) reads its spec Secret")
	case a.Worker == nil:
	case !inCluster:
		return fmt.Errorf("worker: %s is not in a cluster", a.Experiment)
	case a.Job != "" || a.Resume || a.Spec != nil || a.WorkersAccount != "":
		return errors.New("worker: a worker runs one task's share of the experiment's spec Secret, without a job, resume, spec or workers account")
	case a.Worker.Task < 0 || a.Worker.Index < 0:
		return fmt.Errorf("worker: task %d, index %d: neither may be negative", a.Worker.Task, a.Worker.Index)
	case a.Worker.Start.IsZero() || a.Worker.Owner == "":
		return errors.New("worker: the load's start and the result's UID are needed")
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
	if a.Worker != nil {
		return nil, a.runWorker(ctx)
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
	var pool experiment.WorkerPool
	if a.WorkersAccount != "" {
		sec, _ := clusterSecrets(a.Experiment)
		pool = &podworkers.Pool{
			Client: sec.Client, Namespace: sec.Namespace, Release: sec.Release, Revision: a.Revision,
			Job: a.Job, Account: a.WorkersAccount,
		}
	}
	return runPlan(ctx, a.cfg, plan, a.Experiment, a.Revision, stored, pool)
}

// clusterSecrets is the Secrets of an experiment in a cluster.
func clusterSecrets(e store.Experiment) (*store.Secrets, bool) {
	c, ok := e.(*clusterExperiment)
	if !ok {
		return nil, false
	}
	return c.Secrets, true
}

// runWorker runs the share of one worker of a load task and stores its
// part; nothing else of the experiment runs, and no result is written.
func (a *Run) runWorker(ctx context.Context) error {
	sec, _ := clusterSecrets(a.Experiment)
	data, err := a.Experiment.ReadSpec(ctx)
	if err != nil {
		return err
	}
	plan, err := decodeSpec(data, a.cfg, a.Experiment.SpecDir(), nil, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", a.Experiment, err)
	}
	w := a.Worker
	if w.Task >= len(plan.Tasks) {
		return fmt.Errorf("worker: task %d: the spec has %d tasks", w.Task, len(plan.Tasks))
	}
	t := plan.Tasks[w.Task]
	spread, ok := t.Task.(experiment.Spreader)
	if !ok || spread.Workers() <= w.Index {
		return fmt.Errorf("worker: task %d (%s) has no worker %d", w.Task, t.Spec.Task, w.Index)
	}
	role := (&podworkers.Worker{
		Client: sec.Client, Namespace: sec.Namespace, Release: sec.Release,
		Index: w.Index, Start: w.Start, Owner: types.UID(w.Owner),
	}).Role()
	log := a.cfg.logger(a.cfg.Log).With("worker", w.Index)
	env := &experiment.Env{
		Result:   experiment.NewResult(plan, max(a.Revision, 1), time.Now()),
		Versions: plan.Experiment.Spec.VersionNames(),
		Log:      log,
		Progress: io.Discard,
		Secret:   a.cfg.Secret,
		Kube:     a.cfg.kube,
		Task:     w.Task,
		Worker:   role,
	}
	if env.Secret == nil {
		env.Secret = func(string) (string, bool) { return "", false }
	}
	log.Info("worker started", "task", w.Task, "name", t.Spec.Task, "start", w.Start.Format(time.RFC3339Nano))
	if err := t.Task.Run(ctx, env); err != nil {
		return fmt.Errorf("%w: task %d (%s): %w", experiment.ErrTaskFailed, w.Task, t.Spec.Task, err)
	}
	log.Info("worker's part stored", "task", w.Task)
	return nil
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
func runPlan(ctx context.Context, cfg *Configuration, plan *experiment.Plan, w experiment.ResultWriter, revision int, stored *experiment.Result, pool experiment.WorkerPool) (*experiment.Result, error) {
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
		Workers:  pool,
	}
	return r.Run(ctx, plan)
}
