package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/iter8-tools/iter8/pkg/action"
)

type deleteOptions struct {
	targetOptions
	delete *action.Delete
	out    io.Writer
}

func newDeleteCmd(e *cmdEnv) *cobra.Command {
	o := &deleteOptions{targetOptions: e.target("delete"), delete: action.NewDelete(e.cfg), out: e.streams.Out}
	cmd := &cobra.Command{
		Use:   "delete [RELEASE]",
		Short: "Delete an experiment and its result",
		Long: `Delete an experiment: locally its spec and result files (-f); in a cluster
its release (as helm uninstall) and the Jobs and Pods its runs left (a failed
run's Job stays for its log until then).`,
		Args: cobra.MaximumNArgs(1),
		RunE: runE(o),
	}
	o.addFlags(cmd.Flags(), "f")
	cmd.Flags().DurationVar(&o.delete.Timeout, "timeout", action.DefaultTimeout, "with a release: how long the uninstall and the removal of its runs' Jobs and Pods may take")
	return cmd
}

// Validate checks the options before any I/O.
func (o *deleteOptions) Validate() error {
	if o.delete.Timeout < 0 {
		return fmt.Errorf("delete: --timeout must not be negative")
	}
	return o.targetOptions.Validate()
}

// Run deletes the experiment and prints what it removed.
func (o *deleteOptions) Run(ctx context.Context) error {
	exp, err := o.experiment(0)
	if err != nil {
		return err
	}
	o.delete.Experiment = exp
	removed, err := o.delete.Run(ctx)
	for _, p := range removed {
		fmt.Fprintf(o.out, "removed %s\n", p)
	}
	return o.wrap(err)
}
