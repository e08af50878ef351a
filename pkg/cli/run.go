package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/iter8-tools/iter8/pkg/action"
	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/podworkers"
	"github.com/iter8-tools/iter8/pkg/store"
)

const runDesc = `Run an experiment spec.

The whole spec is validated before any task runs; every problem is listed
with its field path. Tasks run in order and the result is written beside the
spec (experiment.yaml → experiment.result.json) after every task, so an
interrupt (Ctrl-C) keeps everything that finished.

With loops (spec.loops, or --loops here) the tasks run again and again in
one run, a loop starting every interval; the result keeps a summary of each
loop for the report's trend. With --resume, a run whose process died
(a retried pod of the chart's long-running Job) goes on from the first task
that had not finished.

Exit status: 0 when every task succeeded; 1 when SLOs are not met and the
spec sets failOnSLOs; 2 when the spec is invalid or a task failed.

Examples:
  %[1]s run -f experiment.yaml
  %[1]s run -f experiment.yaml --loops 10 --interval 30s
  %[1]s run --namespace test --experiment perf   # in a cluster, by the chart's Job`

type runOptions struct {
	run        *action.Run
	cfg        *action.Configuration
	specPath   string
	experiment string
	revision   int
	loops      int
	interval   time.Duration
	specEnv    string
	// specSet records that -f was given.
	specSet bool
	// workerTask is --worker-task; -1 when this is not a worker.
	workerTask  int
	workerStart string
	workerOwner string
}

func newRunCmd(e *cmdEnv) *cobra.Command {
	o := &runOptions{run: action.NewRun(e.cfg), cfg: e.cfg}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run an experiment spec and store its result",
		Args:  cobra.NoArgs,
		RunE:  runE(o),
	}
	cmd.Long = fmt.Sprintf(runDesc, e.name)
	f := cmd.Flags()
	f.StringVarP(&o.specPath, "file", "f", store.DefaultSpecFile, "experiment spec to run")
	f.StringVar(&o.experiment, "experiment", "", "in a cluster: the experiment (release) whose spec Secret to run")
	f.StringVar(&o.run.Job, "job", "", "in a cluster: the Job running this, to be owned by the result Secret so that uninstall removes it")
	f.StringVar(&o.specEnv, "spec-env", "", "in a cluster: read the spec from this environment variable instead of the experiment's spec Secret")
	f.IntVar(&o.loops, "loops", 0, "run the tasks this many times, replacing the spec's loops")
	f.DurationVar(&o.interval, "interval", 0, "time from the start of one loop to the next, replacing the spec's interval")
	f.IntVar(&o.revision, "revision", 1, "revision recorded in the result (the chart's Job passes the release's revision)")
	f.BoolVar(&o.run.Resume, "resume", false, "go on with this revision's stored result from where its run stopped, if there is one (a retried Job's pod); an ended run is not run again")
	f.StringVar(&o.run.WorkersAccount, "workers-account", "", "in a cluster, with --job: run load tasks that have workers as the Pods of an Indexed Job under this ServiceAccount (the chart sets it)")
	f.IntVar(&o.workerTask, "worker-task", -1, "in a worker Pod (made by the experiment's run): send this task's share of worker $JOB_COMPLETION_INDEX and store its part")
	f.StringVar(&o.workerStart, "worker-start", "", "in a worker Pod: when the load's clock started (RFC 3339)")
	f.StringVar(&o.workerOwner, "worker-owner", "", "in a worker Pod: the UID of the result Secret that owns the parts")
	// Set by the run on the Pods it makes, never by a person.
	for _, name := range []string{"worker-task", "worker-start", "worker-owner"} {
		_ = f.MarkHidden(name)
	}
	return cmd
}

// Complete reads the flags and the spec's environment variable.
func (o *runOptions) Complete(cmd *cobra.Command, _ []string) error {
	flags := cmd.Flags()
	o.specSet = flags.Changed("file")
	o.run.Revision = o.revision
	if flags.Changed("loops") {
		o.run.Loops = &o.loops
	}
	if flags.Changed("interval") {
		o.run.Interval = &o.interval
	}
	if spec, ok := os.LookupEnv(o.specEnv); o.specEnv != "" && ok {
		o.run.Spec = []byte(spec)
	}
	if !flags.Changed("worker-task") {
		return nil
	}
	index, ok := os.LookupEnv(jobIndexEnv)
	if !ok {
		return fmt.Errorf("run: --worker-task needs the environment variable %s (an Indexed Job's Pod has it)", jobIndexEnv)
	}
	i, err := strconv.Atoi(index)
	if err != nil || i < 0 {
		return fmt.Errorf("run: %s must be a worker index (a whole number from 0), got %q", jobIndexEnv, index)
	}
	start, err := podworkers.ParseStart(o.workerStart)
	if err != nil {
		return fmt.Errorf("run: --worker-start: %w", err)
	}
	o.run.Worker = &action.Worker{Task: o.workerTask, Index: i, Start: start, Owner: o.workerOwner}
	return nil
}

// jobIndexEnv holds an Indexed Job's Pod's completion index.
const jobIndexEnv = "JOB_COMPLETION_INDEX"

// Validate checks the flags before any I/O, naming them; the action checks
// its fields again for library callers.
func (o *runOptions) Validate() error {
	switch {
	case o.revision < 1:
		return fmt.Errorf("run: --revision must be at least 1, got %d", o.revision)
	case o.run.Loops != nil && (o.loops < 1 || o.loops > experiment.MaxLoops):
		return fmt.Errorf("run: --loops must be from 1 to %d, got %d", experiment.MaxLoops, o.loops)
	case o.interval < 0:
		return fmt.Errorf("run: --interval must not be negative, got %v", o.interval)
	case o.specEnv != "" && (o.experiment == "" || len(o.run.Spec) == 0):
		return fmt.Errorf("run: --spec-env %s needs --experiment and a spec in environment variable %s", o.specEnv, o.specEnv)
	case o.run.Job != "" && o.experiment == "":
		return errors.New("run: --job needs --experiment")
	case o.run.WorkersAccount != "" && o.run.Job == "":
		return errors.New("run: --workers-account needs --job")
	case o.run.Worker != nil && (o.experiment == "" || o.run.Job != "" || o.run.Resume || o.run.WorkersAccount != "" || o.specEnv != ""):
		return errors.New("run: --worker-task needs --experiment, and neither --job, --resume, --workers-account nor --spec-env")
	case o.run.Worker != nil && o.workerTask < 0:
		return fmt.Errorf("run: --worker-task must be a task's index (from 0), got %d", o.workerTask)
	case o.run.Worker != nil && o.workerOwner == "":
		return errors.New("run: --worker-task needs --worker-owner")
	case o.run.Worker == nil && (o.workerStart != "" || o.workerOwner != ""):
		return errors.New("run: --worker-start and --worker-owner go with --worker-task")
	case o.experiment == "" && !o.specSet && !exists(o.specPath):
		return fmt.Errorf("run: expected -f SPEC (there is no %s here), or --experiment RELEASE in a cluster", o.specPath)
	}
	return nil
}

// Run runs the experiment; a spec's verdict gives the exit status.
func (o *runOptions) Run(ctx context.Context) error {
	target := targetOptions{command: "run experiment", cfg: o.cfg, Release: o.experiment, SpecPath: o.specPath}
	exp, err := target.experiment(o.revision)
	if err != nil {
		return err
	}
	o.run.Experiment = exp
	_, err = o.run.Run(ctx)
	return runExit(err)
}
