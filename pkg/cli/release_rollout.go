package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/iter8-tools/iter8/pkg/action"
	"github.com/iter8-tools/iter8/pkg/report"
)

const releaseRolloutDesc = `Roll VERSION of an app out step by step from this machine: every
--interval, load is sent to each version's own --url and/or each --query is
read from --prometheus for every version (over the last interval), the
candidate is held to its --slo objectives, and while they are met the
candidate's weight takes the next of --steps by a helm upgrade of the app's
release (its gates included); a missed objective puts the weights from
before the rollout back. With the candidate at 100 and its objectives met,
it is promoted. Before its first step the candidate has no real traffic:
then only the objectives with a value count (a query with no value is no
failure); after it, a query without a value fails, so write each query to
give a value whenever the version has traffic (an error count of a version
that never failed may have no series: add "or vector(0)"), over a window
that spans at least two of Prometheus' scrapes.

A candidate that turns unready loses its weight at once and the rollout
pauses; ready again it goes on; unready past --progress-deadline, it rolls
back. Progress goes to stderr; the rollout's spec and result are written
to --spec and the file beside it (read them with report -f). Ctrl-C leaves
the route at the last step (an upgrade in flight finishes); run the command
again to go on from there. The same rollout runs in the cluster with the
experiment chart's rollout task (see README).

Exit status: 0 promoted, 1 rolled back or stopped short of 100, 2 bad
flags or anything that kept it from running.

Examples:
  %[1]s release rollout app v2 --url v1=http://app-v1.team:8080/ --url v2=http://app-v2.team:8080/ \
      --slo http/error-rate<=0.01 --slo http/latency-p99<=250 --steps 10,25,50,100 --interval 5m

  # On the real traffic's metrics in Prometheus
  %[1]s release rollout app v2 --prometheus http://prometheus.monitoring:9090 \
      --query 'error-rate=(sum(rate(http_requests_total{app="app",version="{{.version}}",code=~"5.."}[{{.window}}])) or vector(0)) / sum(rate(http_requests_total{app="app",version="{{.version}}"}[{{.window}}]))' \
      --slo prometheus/error-rate<=0.01 --steps 10,25,50,100 --interval 5m`

// releaseRolloutOptions are the options of release rollout.
type releaseRolloutOptions struct {
	rollout *action.ReleaseRollout
	urls    []string
	queries []string
	output  string
	out     io.Writer
}

func newReleaseRolloutCmd(e *cmdEnv) *cobra.Command {
	o := &releaseRolloutOptions{rollout: action.NewReleaseRollout(e.cfg), out: e.streams.Out}
	cmd := &cobra.Command{
		Use:   "rollout APP VERSION",
		Short: "Step a version's weight up while its SLOs hold, and roll back when they do not",
		Long:  fmt.Sprintf(releaseRolloutDesc, e.name),
		Args:  cobra.ExactArgs(2),
		RunE:  runE(o),
	}
	r := o.rollout
	f := cmd.Flags()
	f.IntSliceVar(&r.Steps, "steps", r.Steps, "the candidate's weight at each step: ascending, the last 100")
	f.DurationVar(&r.Interval, "interval", r.Interval, "time from one step's start to the next's; each interval's load and SLOs decide the step")
	f.StringArrayVar(&o.urls, "url", nil, "VERSION=URL: a version's own address (its Service), sent --requests requests each interval; the candidate's is required without --prometheus")
	f.StringVar(&r.Prometheus, "prometheus", "", "URL of a Prometheus server (without authentication) to read each --query from, for every version, each interval")
	f.StringArrayVar(&o.queries, "query", nil, "NAME=PROMQL: the metric prometheus/NAME of each version; PROMQL is a template that sees {{.version}} and {{.window}} (the interval) and selects one series")
	f.StringArrayVar(&r.SLOs, "slo", nil, "an objective of the candidate: METRIC<=NUMBER or METRIC>=NUMBER, such as http/error-rate<=0.01 (at least one)")
	f.IntVar(&r.Requests, "requests", r.Requests, "requests to each version per interval")
	f.StringVar(&r.Baseline, "baseline", "", "the version the candidate is compared with (default the release's first)")
	f.DurationVar(&r.Timeout, "timeout", r.Timeout, "how long each upgrade may take, gates included")
	f.DurationVar(&r.ProgressDeadline, "progress-deadline", r.ProgressDeadline, "how long the rollout may pause for an unready candidate before it rolls back")
	f.StringVar(&r.SpecPath, "spec", "", "file to write the rollout's spec to, its result beside it (default iter8-rollout-APP.yaml)")
	f.BoolVar(&r.Force, "force", false, "replace a file at --spec that release rollout did not write")
	addOutputFlag(cmd, &o.output)
	return cmd
}

// Complete reads the arguments and the --url pairs.
func (o *releaseRolloutOptions) Complete(_ *cobra.Command, args []string) error {
	r := o.rollout
	r.App, r.Version = args[0], args[1]
	if r.SpecPath == "" {
		r.SpecPath = "iter8-rollout-" + r.App + ".yaml"
	}
	r.URLs = map[string]string{}
	for _, u := range o.urls {
		v, addr, ok := strings.Cut(u, "=")
		if !ok || v == "" || addr == "" {
			return fmt.Errorf("release rollout: --url %q: want VERSION=URL", u)
		}
		if _, dup := r.URLs[v]; dup {
			return fmt.Errorf("release rollout: --url: version %s given twice", v)
		}
		r.URLs[v] = addr
	}
	r.Queries = map[string]string{}
	for _, q := range o.queries {
		name, promql, ok := strings.Cut(q, "=")
		if !ok || name == "" || promql == "" {
			return fmt.Errorf("release rollout: --query %q: want NAME=PROMQL", q)
		}
		if _, dup := r.Queries[name]; dup {
			return fmt.Errorf("release rollout: --query: metric %s given twice", name)
		}
		r.Queries[name] = promql
	}
	return nil
}

// Validate checks the options before any cluster I/O.
func (o *releaseRolloutOptions) Validate() error {
	if err := o.rollout.Validate(); err != nil {
		return fmt.Errorf("release rollout: %w", err)
	}
	return checkOutput("release rollout", o.output, "text", "json", "yaml")
}

// Run rolls out and prints where the rollout ended.
func (o *releaseRolloutOptions) Run(ctx context.Context) error {
	r := o.rollout
	rolled, err := r.Run(ctx)
	if rolled == nil {
		return fmt.Errorf("release rollout %s %s: %w", r.App, r.Version, err)
	}
	if perr := printData(o.out, o.output, rolled, func(w io.Writer) error {
		fmt.Fprintf(w, "release %s in namespace %s: ", rolled.Release, rolled.Namespace)
		if ro := rolled.Rollout; ro != nil {
			fmt.Fprintf(w, "%s\n", report.RolloutStep(ro))
			if ro.Reason != "" {
				fmt.Fprintf(w, "  %s\n", report.Printable(ro.Reason))
			}
		} else {
			fmt.Fprintln(w, "the rollout did not start")
		}
		if rolled.Failed != "" {
			fmt.Fprintf(w, "  failed: %s\n", report.Printable(rolled.Failed))
		}
		_, err := fmt.Fprintf(w, "  spec %s, result %s\n", rolled.Spec, rolled.Result)
		return err
	}); perr != nil {
		return perr
	}
	if errors.Is(err, action.ErrRolledBack) {
		return &ExitError{Code: 1, Err: fmt.Errorf("release rollout %s %s: %w", r.App, r.Version, err)}
	}
	if err != nil {
		return fmt.Errorf("release rollout %s %s: %w", r.App, r.Version, err)
	}
	return nil
}
