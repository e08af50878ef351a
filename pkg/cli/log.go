package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/iter8-tools/iter8/pkg/action"
	"github.com/iter8-tools/iter8/pkg/report"
)

type logOptions struct {
	target targetOptions
	log    *action.Log
	cfg    *action.Configuration
	out    io.Writer
}

func newLogCmd(e *cmdEnv) *cobra.Command {
	o := &logOptions{log: action.NewLog(e.cfg), cfg: e.cfg, out: e.streams.Out}
	cmd := &cobra.Command{
		Use:   "log [RELEASE]",
		Short: "Show the log of an experiment's run",
		Long:  "Show the log lines kept with an experiment's result (the last " + fmt.Sprint(action.LogTailLines) + " lines of the run).",
		Args:  cobra.MaximumNArgs(1),
		RunE:  runE(o),
	}
	o.target.addFlags(cmd.Flags(), "f")
	o.target.addRevisionFlag(cmd.Flags())
	return cmd
}

// Complete reads the arguments.
func (o *logOptions) Complete(cmd *cobra.Command, args []string) error {
	o.target.complete(cmd, args)
	return nil
}

// Validate checks the options before any I/O.
func (o *logOptions) Validate() error { return o.target.validate("log") }

// Run reads the log lines and prints them, made safe for a terminal.
func (o *logOptions) Run(ctx context.Context) error {
	verb := o.target.verb("log")
	exp, err := o.target.experiment(o.cfg, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	o.log.Experiment, o.log.Revision = exp, o.target.Revision
	lines, err := o.log.Run(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	for _, l := range lines {
		fmt.Fprintln(o.out, report.Printable(l))
	}
	return nil
}
