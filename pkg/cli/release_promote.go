package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/iter8-tools/iter8/pkg/action"
)

// releasePromoteOptions are the options of release promote.
type releasePromoteOptions struct {
	promote *action.ReleasePromote
	output  string
	out     io.Writer
}

func newReleasePromoteCmd(e *cmdEnv) *cobra.Command {
	o := &releasePromoteOptions{promote: action.NewReleasePromote(e.cfg), out: e.streams.Out}
	cmd := &cobra.Command{
		Use:   "promote APP VERSION",
		Short: "Send all of an app's traffic to one version",
		Long:  fmt.Sprintf(releasePromoteDesc, e.name),
		Args:  cobra.ExactArgs(2),
		RunE:  runE(o),
	}
	f := cmd.Flags()
	f.BoolVar(&o.promote.Atomic, "atomic", false, "roll the upgrade back if it fails (implies --wait)")
	f.BoolVar(&o.promote.Wait, "wait", false, "wait until the release's Deployments and Services are ready")
	f.DurationVar(&o.promote.Timeout, "timeout", action.DefaultTimeout, "how long the upgrade may take, gates included")
	addOutputFlag(cmd, &o.output)
	return cmd
}

// Complete reads the arguments.
func (o *releasePromoteOptions) Complete(_ *cobra.Command, args []string) error {
	o.promote.App, o.promote.Version = args[0], args[1]
	return nil
}

// Validate checks the options before any cluster I/O.
func (o *releasePromoteOptions) Validate() error {
	if o.promote.Timeout <= 0 {
		return fmt.Errorf("release promote: --timeout must be above 0, not %v", o.promote.Timeout)
	}
	if err := o.promote.Validate(); err != nil {
		return fmt.Errorf("release promote: %w", err)
	}
	return checkOutput("release promote", o.output, "text", "json", "yaml")
}

// Run promotes and prints what changed.
func (o *releasePromoteOptions) Run(ctx context.Context) error {
	p, err := o.promote.Run(ctx)
	if err != nil {
		return fmt.Errorf("release promote %s %s: %w", o.promote.App, o.promote.Version, err)
	}
	return printData(o.out, o.output, p, func(w io.Writer) error {
		if len(p.Changes) == 0 {
			_, err := fmt.Fprintf(w, "release %s in namespace %s: version %s already has all traffic (revision %d); nothing changed\n",
				p.Release, p.Namespace, p.Version, p.Revision)
			return err
		}
		fmt.Fprintf(w, "release %s in namespace %s: promoted %s (revision %d -> %d)\n", p.Release, p.Namespace, p.Version, p.From, p.Revision)
		for _, c := range p.Changes {
			fmt.Fprintf(w, "  %s %s: %d -> %d\n", c.Version, c.Field, c.From, c.To)
		}
		return nil
	})
}
