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

	"github.com/iter8-tools/iter8/pkg/action"
	"github.com/iter8-tools/iter8/pkg/report"
)

// releaseStatusOptions are the options of release status.
type releaseStatusOptions struct {
	status *action.ReleaseStatus
	output string
	out    io.Writer
}

func newReleaseStatusCmd(e *cmdEnv) *cobra.Command {
	o := &releaseStatusOptions{status: action.NewReleaseStatus(e.cfg), out: e.streams.Out}
	cmd := &cobra.Command{
		Use:   "status APP",
		Short: "Show an app's routing, its versions' readiness, gate verdicts, bandits and rollouts",
		Long:  fmt.Sprintf(releaseStatusDesc, e.name),
		Args:  cobra.ExactArgs(1),
		RunE:  runE(o),
	}
	addOutputFlag(cmd, &o.output)
	return cmd
}

// Complete reads the arguments.
func (o *releaseStatusOptions) Complete(_ *cobra.Command, args []string) error {
	o.status.App = args[0]
	return nil
}

// Validate checks the options before any cluster I/O.
func (o *releaseStatusOptions) Validate() error {
	if err := checkOutput("release status", o.output, "text", "json", "yaml"); err != nil {
		return err
	}
	if err := o.status.Validate(); err != nil {
		return fmt.Errorf("release status: %w", err)
	}
	return nil
}

// Run reads the status and prints it.
func (o *releaseStatusOptions) Run(ctx context.Context) error {
	st, err := o.status.Run(ctx)
	if err != nil {
		return fmt.Errorf("release status %s: %w", o.status.App, err)
	}
	return printData(o.out, o.output, st, func(w io.Writer) error { return printStatus(w, st) })
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
			switch {
			case g.Interrupted:
				state = "interrupted"
			case g.Completed:
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
	printBandits(w, st)
	printRollouts(w, st)
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

// printBandits prints the bandit experiments that move the release's
// weights, each as a line with its state, then its last weights, P(best),
// reason and, once it ended, why; what could not be read comes first.
// Their text comes from the cluster and is made printable.
func printBandits(w io.Writer, st *action.AppStatus) {
	fmt.Fprintln(w, "Bandits:")
	if st.BanditsError != "" {
		fmt.Fprintf(w, "  unreadable: %s\n", report.Printable(st.BanditsError))
	}
	switch {
	case st.BanditsError != "" && len(st.Bandits) == 0:
		return
	case st.Release == "":
		fmt.Fprintln(w, "  none: the route names no release")
		return
	case len(st.Bandits) == 0:
		fmt.Fprintf(w, "  none in namespace %s targets release %s\n", st.Namespace, st.Release)
		return
	}
	for _, b := range st.Bandits {
		fmt.Fprintf(w, "  %s (revision %d): %s, loop %d of %d\n", report.Printable(b.Experiment), b.Revision, b.State, b.Loop, b.Loops)
		weights := make([]string, len(b.Versions))
		pBest := make([]string, len(b.Versions))
		for i, v := range b.Versions {
			name := report.Printable(v.Version)
			weights[i] = fmt.Sprintf("%s %d", name, v.Weight)
			pBest[i] = name + " -"
			if v.ProbabilityBest != nil {
				pBest[i] = fmt.Sprintf("%s %.3f", name, *v.ProbabilityBest)
			}
		}
		fmt.Fprintf(w, "    Weights:  %s\n", dashIfEmpty(strings.Join(weights, ", ")))
		fmt.Fprintf(w, "    P(best):  %s\n", dashIfEmpty(strings.Join(pBest, ", ")))
		fmt.Fprintf(w, "    Reason:   %s\n", dashIfEmpty(report.Printable(b.Reason)))
		if b.Stopped != "" {
			fmt.Fprintf(w, "    Stopped:  %s\n", report.Printable(b.Stopped))
		}
	}
	if st.BanditsOmitted > 0 {
		fmt.Fprintf(w, "  (%d older not shown)\n", st.BanditsOmitted)
	}
}

// printRollouts prints the rollout experiments that step the release's
// weights: state, step, next step, last verdict, pause and reason.
func printRollouts(w io.Writer, st *action.AppStatus) {
	if len(st.Rollouts) == 0 && st.RolloutsError == "" {
		return
	}
	fmt.Fprintln(w, "Rollouts:")
	if st.RolloutsError != "" {
		fmt.Fprintf(w, "  unreadable: %s\n", report.Printable(st.RolloutsError))
	}
	for _, r := range st.Rollouts {
		ro := r.Rollout
		fmt.Fprintf(w, "  %s (revision %d): %s, loop %d of %d\n", report.Printable(r.Experiment), r.Revision, r.State, r.Loop, r.Loops)
		fmt.Fprintf(w, "    Step:     %s\n", report.RolloutStep(ro))
		if ro.NextStepAt != nil {
			fmt.Fprintf(w, "    Next:     %s\n", ro.NextStepAt.Local().Format(time.DateTime))
		}
		fmt.Fprintf(w, "    Verdict:  %s\n", dashIfEmpty(report.Printable(ro.Verdict)))
		if ro.PausedSince != nil {
			fmt.Fprintf(w, "    Paused:   since %s\n", ro.PausedSince.Local().Format(time.DateTime))
		}
		fmt.Fprintf(w, "    Reason:   %s\n", dashIfEmpty(report.Printable(ro.Reason)))
		if r.Stopped != "" {
			fmt.Fprintf(w, "    Stopped:  %s\n", report.Printable(r.Stopped))
		}
	}
	if st.RolloutsOmitted > 0 {
		fmt.Fprintf(w, "  (%d older not shown)\n", st.RolloutsOmitted)
	}
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
