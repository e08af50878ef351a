package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/iter8-tools/iter8/pkg/action"
)

const assertDesc = `Check conditions on an experiment's result, for CI gates.

Conditions (repeat -c or separate with commas):
  completed   the experiment has finished (a run a signal interrupted has not: a retried Job resumes it)
  nofailure   no task failed
  slos        every SLO is satisfied for every version

With --timeout, assert waits until the conditions hold or the experiment
ends: it watches a release's result Secret (polling every second if the
watch is not allowed) and checks a local result ten times a second.

Exit status: 0 all hold; 1 a condition is false (each is named with the
reason); 2 the conditions could not be checked (no result, bad flags).

Examples:
  %[1]s assert -c completed,nofailure,slos
  %[1]s assert -c completed -c slos --timeout 60s`

type assertOptions struct {
	targetOptions
	conditions []string
	assert     *action.Assert
	out        io.Writer
}

func newAssertCmd(e *cmdEnv) *cobra.Command {
	o := &assertOptions{targetOptions: e.target("assert"), assert: action.NewAssert(e.cfg), out: e.streams.Out}
	cmd := &cobra.Command{
		Use:   "assert [RELEASE]",
		Short: "Check conditions on an experiment's result (exit codes for CI)",
		Args:  cobra.MaximumNArgs(1),
		RunE:  runE(o),
	}
	cmd.Long = fmt.Sprintf(assertDesc, e.name)
	o.addFlags(cmd.Flags(), "f")
	cmd.Flags().StringSliceVarP(&o.conditions, "condition", "c", nil, "condition: completed, nofailure or slos (can repeat)")
	cmd.Flags().DurationVar(&o.assert.Timeout, "timeout", 0, "how long to wait for the conditions to hold (0: check once)")
	_ = cmd.RegisterFlagCompletionFunc("condition", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"completed", "nofailure", "slos"}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// Complete reads the arguments and the condition names.
func (o *assertOptions) Complete(cmd *cobra.Command, args []string) error {
	if err := o.targetOptions.Complete(cmd, args); err != nil {
		return err
	}
	conds, err := action.ParseConditions(o.conditions)
	if err != nil {
		return fmt.Errorf("assert: -c: %w", err)
	}
	o.assert.Conditions = conds
	return nil
}

// Validate checks the options before any I/O.
func (o *assertOptions) Validate() error {
	if o.assert.Timeout < 0 {
		return fmt.Errorf("assert: --timeout must not be negative")
	}
	return o.targetOptions.Validate()
}

// Run checks the conditions and prints a line for each; exit status 1 when
// one does not hold.
func (o *assertOptions) Run(ctx context.Context) error {
	exp, err := o.experiment(0)
	if err != nil {
		return err
	}
	o.assert.Experiment = exp
	res, err := o.assert.Run(ctx)
	if err != nil {
		return o.wrap(err)
	}
	for _, v := range res.Verdicts {
		if v.Holds {
			fmt.Fprintf(o.out, "✔ %s\n", v.Condition)
		} else {
			fmt.Fprintf(o.out, "✗ %s: %s\n", v.Condition, v.Why)
		}
	}
	if !res.Holds() {
		return &ExitError{Code: 1, Err: errConditionsFalse}
	}
	return nil
}
