package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/iter8-tools/iter8/pkg/action"
)

const releaseDesc = `Show, promote and roll back an app's release of the release chart
(charts/release), which routes the app's versions through a Gateway API
HTTPRoute or an Istio VirtualService named after the app.

Examples:
  %[1]s release status app -n team-a
  %[1]s release promote app v2 --wait
  %[1]s release rollback app --wait`

const releaseStatusDesc = `Show what an app's route sends where, and how ready each version is.

For each version (each backend of the HTTPRoute, else the VirtualService,
named APP) it shows the backend, weight and share of traffic, header
matches, mirror percent, and readiness: its Deployment Available at its
current generation with ready/desired replicas, and its Service's ready
endpoints. Then the last verdict of each gate of the release, and the
conditions a controller set on the route.

Exits 2 when APP has no route in the namespace.

Examples:
  %[1]s release status app
  %[1]s release status app -n team-a -o json`

const releasePromoteDesc = `Send all of an app's traffic to VERSION: the equivalent of

  helm upgrade RELEASE CHART --reuse-values   (with VERSION's weight 100
                                               and every other version's 0)

with the release's own chart from its last revision. RELEASE is the one that
owns the route named APP. The release's gates run as in any upgrade; with
--atomic a failed gate rolls the weights back. Prints what changed.

Examples:
  %[1]s release promote app v2 --wait
  %[1]s release promote app v2 --atomic --timeout 3m`

const releaseRollbackDesc = `Roll the release of an app back, as helm rollback does: to REVISION, or
by default to the revision before the newest.

Examples:
  %[1]s release rollback app --wait
  %[1]s release rollback app 3`

func newReleaseCmd(e *cmdEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Show, promote and roll back an app's release (charts/release)",
		Long:  fmt.Sprintf(releaseDesc, e.name),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newReleaseStatusCmd(e), newReleasePromoteCmd(e), newReleaseRollbackCmd(e))
	return cmd
}

// validateApp checks an app name as the route's name: a DNS subdomain.
func validateApp(verb, app string) error {
	if errs := validation.IsDNS1123Subdomain(app); len(errs) > 0 {
		return fmt.Errorf("%s: app name %q: %s", verb, app, strings.Join(errs, "; "))
	}
	return nil
}

// releaseStatusOptions are the options of release status.
type releaseStatusOptions struct {
	App    string
	Output string
}

func newReleaseStatusCmd(e *cmdEnv) *cobra.Command {
	o := &releaseStatusOptions{}
	a := action.NewReleaseStatus(e.cfg)
	cmd := &cobra.Command{
		Use:   "status APP",
		Short: "Show an app's routing, its versions' readiness and gate verdicts",
		Long:  fmt.Sprintf(releaseStatusDesc, e.name),
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Complete(args)
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context(), a, e.streams.Out)
		},
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "text", "output format: text, json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"text", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// Complete reads the arguments.
func (o *releaseStatusOptions) Complete(args []string) {
	o.App = args[0]
}

// Validate checks the options before any cluster I/O.
func (o *releaseStatusOptions) Validate() error {
	switch o.Output {
	case "text", "json", "yaml":
	default:
		return fmt.Errorf("release status: -o: unknown output format %q: want text, json or yaml", o.Output)
	}
	return validateApp("release status", o.App)
}

// Run reads the status and prints it.
func (o *releaseStatusOptions) Run(ctx context.Context, a *action.ReleaseStatus, out io.Writer) error {
	a.App = o.App
	st, err := a.Run(ctx)
	if err != nil {
		return fmt.Errorf("release status %s: %w", o.App, err)
	}
	return printData(out, o.Output, st, func(w io.Writer) error { return printStatus(w, st) })
}

func printStatus(w io.Writer, st *action.AppStatus) error {
	rel := st.Release
	if rel == "" {
		rel = "(unlabelled)"
	}
	strategy := string(st.Strategy)
	if strategy == "" {
		strategy = "-"
	}
	fmt.Fprintf(w, "App:        %s (namespace %s)\n", st.App, st.Namespace)
	fmt.Fprintf(w, "Release:    %s\n", rel)
	fmt.Fprintf(w, "Route:      %s %s\n", st.Kind, st.Route)
	fmt.Fprintf(w, "Strategy:   %s\n", strategy)
	fmt.Fprintf(w, "Receiving:  %s\n", dashIfEmpty(strings.Join(st.Receiving, ", ")))
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tBACKEND\tWEIGHT\tSHARE\tMATCHES\tMIRROR\tREADY\tREPLICAS\tENDPOINTS")
	for _, v := range st.Versions {
		mirror := "-"
		if v.Mirror > 0 {
			mirror = fmt.Sprintf("%d%%", v.Mirror)
		}
		replicas := "-"
		if v.Deployment != "" {
			replicas = fmt.Sprintf("%d/%d", v.ReadyReplicas, v.Replicas)
		}
		endpoints := "-"
		if v.ReadyEndpoints >= 0 {
			endpoints = strconv.Itoa(v.ReadyEndpoints)
		}
		fmt.Fprintf(tw, "%s\t%s:%d\t%d\t%d%%\t%s\t%s\t%s\t%s\t%s\n", v.Version, v.Backend, v.Port, v.Weight, v.Percent,
			formatMatches(v.Matches), mirror, v.Readiness, replicas, endpoints)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, v := range st.Versions {
		if v.Reason != "" {
			fmt.Fprintf(w, "  %s: %s\n", v.Version, v.Reason)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Gates:")
	for _, g := range st.Gates {
		switch {
		case g.Error != "":
			fmt.Fprintf(w, "  %-6s unreadable: %s\n", g.Gate, g.Error)
		case !g.Found:
			fmt.Fprintf(w, "  %-6s no result\n", g.Gate)
		default:
			state := "running"
			if g.Completed {
				state = "completed"
			}
			failed := "no task failed"
			if g.Failed {
				failed = "a task failed"
			}
			fmt.Fprintf(w, "  %-6s revision %d: %s, %s, SLOs %s\n", g.Gate, g.Revision, state, failed, g.SLOs)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Conditions:")
	if len(st.Conditions) == 0 {
		fmt.Fprintln(w, "  no controller has reported")
		return nil
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  PARENT\tTYPE\tSTATUS\tREASON\tMESSAGE")
	for _, c := range st.Conditions {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", dashIfEmpty(c.Parent), c.Type, c.Status, dashIfEmpty(c.Reason), dashIfEmpty(c.Message))
	}
	return tw.Flush()
}

// formatMatches prints header sets as "x-user=tester,x-beta=1 | x-user=qa".
func formatMatches(ms []map[string]string) string {
	if len(ms) == 0 {
		return "-"
	}
	sets := make([]string, len(ms))
	for i, m := range ms {
		kv := make([]string, 0, len(m))
		for k, v := range m {
			kv = append(kv, k+"="+v)
		}
		// Map order is random: sort for stable output.
		slices.Sort(kv)
		sets[i] = strings.Join(kv, ",")
	}
	return strings.Join(sets, " | ")
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// releasePromoteOptions are the options of release promote.
type releasePromoteOptions struct {
	App, Version string
	Atomic, Wait bool
	Timeout      time.Duration
	Output       string
}

func newReleasePromoteCmd(e *cmdEnv) *cobra.Command {
	o := &releasePromoteOptions{}
	a := action.NewReleasePromote(e.cfg)
	cmd := &cobra.Command{
		Use:   "promote APP VERSION",
		Short: "Send all of an app's traffic to one version",
		Long:  fmt.Sprintf(releasePromoteDesc, e.name),
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Complete(args)
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context(), a, e.streams.Out)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Atomic, "atomic", false, "roll the upgrade back if it fails (implies --wait)")
	f.BoolVar(&o.Wait, "wait", false, "wait until the release's Deployments and Services are ready")
	f.DurationVar(&o.Timeout, "timeout", action.DefaultTimeout, "how long the upgrade may take, gates included")
	f.StringVarP(&o.Output, "output", "o", "text", "output format: text, json or yaml")
	return cmd
}

// Complete reads the arguments.
func (o *releasePromoteOptions) Complete(args []string) {
	o.App, o.Version = args[0], args[1]
}

// Validate checks the options before any cluster I/O.
func (o *releasePromoteOptions) Validate() error {
	if err := validateApp("release promote", o.App); err != nil {
		return err
	}
	if errs := validation.IsDNS1123Label(o.Version); len(errs) > 0 {
		return fmt.Errorf("release promote: version %q: %s", o.Version, strings.Join(errs, "; "))
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("release promote: --timeout must be above 0, not %v", o.Timeout)
	}
	switch o.Output {
	case "text", "json", "yaml":
	default:
		return fmt.Errorf("release promote: -o: unknown output format %q: want text, json or yaml", o.Output)
	}
	return nil
}

// Run promotes and prints what changed.
func (o *releasePromoteOptions) Run(ctx context.Context, a *action.ReleasePromote, out io.Writer) error {
	a.App, a.Version, a.Atomic, a.Wait, a.Timeout = o.App, o.Version, o.Atomic, o.Wait, o.Timeout
	p, err := a.Run(ctx)
	if err != nil {
		return fmt.Errorf("release promote %s %s: %w", o.App, o.Version, err)
	}
	return printData(out, o.Output, p, func(w io.Writer) error {
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

// releaseRollbackOptions are the options of release rollback.
type releaseRollbackOptions struct {
	App      string
	Revision int
	Wait     bool
	Timeout  time.Duration
}

func newReleaseRollbackCmd(e *cmdEnv) *cobra.Command {
	o := &releaseRollbackOptions{}
	a := action.NewReleaseRollback(e.cfg)
	cmd := &cobra.Command{
		Use:   "rollback APP [REVISION]",
		Short: "Roll an app's release back to an earlier revision",
		Long:  fmt.Sprintf(releaseRollbackDesc, e.name),
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context(), a, e.streams.Out)
		},
	}
	cmd.Flags().BoolVar(&o.Wait, "wait", false, "wait until the release's Deployments and Services are ready")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", action.DefaultTimeout, "how long the rollback may take, hooks included")
	return cmd
}

// Complete reads the arguments.
func (o *releaseRollbackOptions) Complete(args []string) error {
	o.App = args[0]
	if len(args) > 1 {
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 {
			return fmt.Errorf("release rollback: revision %q: want a whole number of at least 1", args[1])
		}
		o.Revision = n
	}
	return nil
}

// Validate checks the options before any cluster I/O.
func (o *releaseRollbackOptions) Validate() error {
	if err := validateApp("release rollback", o.App); err != nil {
		return err
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("release rollback: --timeout must be above 0, not %v", o.Timeout)
	}
	return nil
}

// Run rolls back and prints what it did.
func (o *releaseRollbackOptions) Run(ctx context.Context, a *action.ReleaseRollback, out io.Writer) error {
	a.App, a.Revision, a.Wait, a.Timeout = o.App, o.Revision, o.Wait, o.Timeout
	r, err := a.Run(ctx)
	if err != nil {
		return fmt.Errorf("release rollback %s: %w", o.App, err)
	}
	_, err = fmt.Fprintf(out, "release %s in namespace %s: rolled back from revision %d to %d (now revision %d)\n",
		r.Release, r.Namespace, r.From, r.To, r.Revision)
	return err
}
