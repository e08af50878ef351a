package cli

import (
	"fmt"
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
	target targetOptions
	output string
	format report.Format
}

func newReportCmd(e *cmdEnv) *cobra.Command {
	o := &reportOptions{}
	a := action.NewReport(e.cfg)
	cmd := &cobra.Command{
		Use:   "report [RELEASE]",
		Short: "Show an experiment's result",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.target.complete(cmd, args)
			if err := o.validate(); err != nil {
				return err
			}
			a.SpecPath, a.Release, a.Revision = o.target.SpecPath, o.target.Release, o.target.Revision
			res, err := a.Run(cmd.Context())
			if err != nil {
				return fmt.Errorf("report%s: %w", releaseSuffix(o.target.Release), err)
			}
			return report.Write(e.streams.Out, res, o.format)
		},
	}
	cmd.Long = fmt.Sprintf(reportDesc, e.name)
	o.target.addFlags(cmd.Flags(), "f")
	o.target.addRevisionFlag(cmd.Flags())
	cmd.Flags().StringVarP(&o.output, "output", "o", string(report.Text), "output format: "+formatNames())
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return strings.Split(formatNames(), "|"), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func (o *reportOptions) validate() error {
	f, err := report.ParseFormat(o.output)
	if err != nil {
		return fmt.Errorf("report: -o: %w", err)
	}
	o.format = f
	return o.target.validate("report")
}

func formatNames() string {
	names := make([]string, len(report.Formats))
	for i, f := range report.Formats {
		names[i] = string(f)
	}
	return strings.Join(names, "|")
}
