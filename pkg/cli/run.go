package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/iter8-tools/iter8/pkg/action"
	"github.com/iter8-tools/iter8/pkg/experiment"
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
	return nil
}

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
