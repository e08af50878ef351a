package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/iter8-tools/iter8/pkg/action"
)

// releaseRollbackOptions are the options of release rollback.
type releaseRollbackOptions struct {
	rollback *action.ReleaseRollback
	out      io.Writer
}

func newReleaseRollbackCmd(e *cmdEnv) *cobra.Command {
	o := &releaseRollbackOptions{rollback: action.NewReleaseRollback(e.cfg), out: e.streams.Out}
	cmd := &cobra.Command{
		Use:   "rollback APP [REVISION]",
		Short: "Roll an app's release back to an earlier revision",
		Long:  fmt.Sprintf(releaseRollbackDesc, e.name),
		Args:  cobra.RangeArgs(1, 2),
		RunE:  runE(o),
	}
	cmd.Flags().BoolVar(&o.rollback.Wait, "wait", false, "wait until the release's Deployments and Services are ready")
	cmd.Flags().DurationVar(&o.rollback.Timeout, "timeout", action.DefaultTimeout, "how long the rollback may take, hooks included")
	return cmd
}

// Complete reads the arguments.
func (o *releaseRollbackOptions) Complete(_ *cobra.Command, args []string) error {
	o.rollback.App = args[0]
	if len(args) > 1 {
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 {
			return fmt.Errorf("release rollback: revision %q: want a whole number of at least 1", args[1])
		}
		o.rollback.Revision = n
	}
	return nil
}

// Validate checks the options before any cluster I/O.
func (o *releaseRollbackOptions) Validate() error {
	if o.rollback.Timeout <= 0 {
		return fmt.Errorf("release rollback: --timeout must be above 0, not %v", o.rollback.Timeout)
	}
	if err := o.rollback.Validate(); err != nil {
		return fmt.Errorf("release rollback: %w", err)
	}
	return nil
}

// Run rolls back and prints what it did.
func (o *releaseRollbackOptions) Run(ctx context.Context) error {
	r, err := o.rollback.Run(ctx)
	if err != nil {
		return fmt.Errorf("release rollback %s: %w", o.rollback.App, err)
	}
	_, err = fmt.Fprintf(o.out, "release %s in namespace %s: rolled back from revision %d to %d (now revision %d)\n",
		r.Release, r.Namespace, r.From, r.To, r.Revision)
	return err
}
