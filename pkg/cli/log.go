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
	targetOptions
	log *action.Log
	out io.Writer
}

func newLogCmd(e *cmdEnv) *cobra.Command {
	o := &logOptions{targetOptions: e.target("log"), log: action.NewLog(e.cfg), out: e.streams.Out}
	cmd := &cobra.Command{
		Use:   "log [RELEASE]",
		Short: "Show the log of an experiment's run",
		Long:  "Show the log lines kept with an experiment's result (the last " + fmt.Sprint(action.LogTailLines) + " lines of the run).",
		Args:  cobra.MaximumNArgs(1),
		RunE:  runE(o),
	}
	o.addFlags(cmd.Flags(), "f")
	o.addRevisionFlag(cmd.Flags())
	return cmd
}

// Run reads the log lines and prints them, made safe for a terminal.
func (o *logOptions) Run(ctx context.Context) error {
	exp, err := o.experiment(0)
	if err != nil {
		return err
	}
	o.log.Experiment, o.log.Revision = exp, o.Revision
	lines, err := o.log.Run(ctx)
	if err != nil {
		return o.wrap(err)
	}
	for _, l := range lines {
		fmt.Fprintln(o.out, report.Printable(l))
	}
	return nil
}
