package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/iter8-tools/iter8/pkg/action"
	"github.com/iter8-tools/iter8/pkg/report"
)

const reportDesc = `Show an experiment's result: its state, tasks, SLO verdicts per version and
metrics per version with the best version.

Without arguments it reads the local result of ./experiment.yaml; -f names
another spec; a release name reads an experiment in the cluster.

Examples:
  %[1]s report
  %[1]s report -f perf.yaml -o json
  %[1]s report perf -n team-a --revision 2`

type reportOptions struct {
	targetOptions
	output string
	format report.Format
	report *action.Report
	out    io.Writer
}

func newReportCmd(e *cmdEnv) *cobra.Command {
	o := &reportOptions{targetOptions: e.target("report"), report: action.NewReport(e.cfg), out: e.streams.Out}
	cmd := &cobra.Command{
		Use:   "report [RELEASE]",
		Short: "Show an experiment's result",
		Args:  cobra.MaximumNArgs(1),
		RunE:  runE(o),
	}
	cmd.Long = fmt.Sprintf(reportDesc, e.name)
	o.addFlags(cmd.Flags(), "f")
	o.addRevisionFlag(cmd.Flags())
	cmd.Flags().StringVarP(&o.output, "output", "o", string(report.Text), "output format: "+formatNames())
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return strings.Split(formatNames(), "|"), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// Validate checks the options before any I/O.
func (o *reportOptions) Validate() error {
	f, err := report.ParseFormat(o.output)
	if err != nil {
		return fmt.Errorf("report: -o: %w", err)
	}
	o.format = f
	return o.targetOptions.Validate()
}

// Run reads the result and prints it.
func (o *reportOptions) Run(ctx context.Context) error {
	exp, err := o.experiment(0)
	if err != nil {
		return err
	}
	o.report.Experiment, o.report.Revision = exp, o.Revision
	res, err := o.report.Run(ctx)
	if err != nil {
		return o.wrap(err)
	}
	return report.Write(o.out, res, o.format)
}

func formatNames() string {
	names := make([]string, len(report.Formats))
	for i, f := range report.Formats {
		names[i] = string(f)
	}
	return strings.Join(names, "|")
}
