package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/iter8-tools/iter8/pkg/action"
	"github.com/iter8-tools/iter8/pkg/report"
	"github.com/iter8-tools/iter8/pkg/store"
)

const launchDesc = `Launch an experiment from the iter8 chart (or another chart with -c).

With --local, the chart's experiment is rendered with the values given by
-f/--set/--set-string/--set-file/--set-json, exactly as Helm merges them, and
run here; the spec is written to --spec and its result beside it. Values are
checked against the chart's schema and the whole experiment is validated
before any task runs. --dry writes the spec and runs nothing. Here -f takes
values files, as in Helm; to run a spec you wrote, use run -f SPEC.

launch replaces only a spec that it wrote itself (marked by its first line),
and removes that spec's old result, so that report and assert never show a
previous run as the new spec's; --force replaces any file at --spec.

Given a release name instead, launch installs the chart as that Helm release
in the cluster (or upgrades it, when it exists), exactly as helm upgrade
--install would with the same chart and values; Helm waits up to --timeout
for the release's hook Job, which runs the experiment, and launch then prints
the run's report; exit status as for run. -c takes what helm install takes:
a chart folder or archive, repo/chart, a URL or an oci:// reference
(--version picks one; --plain-http for a registry without TLS; logins from
helm registry login); with --local, a chart folder or archive.

Examples:
  %[1]s launch perf -n test --set 'tasks={http,assess}' \
      --set http.url=http://app.test:8080/ \
      --set 'assess.slos[0].metric=http/latency-p99' --set 'assess.slos[0].upper=50'
  %[1]s launch --local --set 'tasks={ready,http,assess}' \
      --set ready.url=http://127.0.0.1:8080/healthz \
      --set http.url=http://127.0.0.1:8080/ --set http.duration=10s \
      --set 'assess.slos[0].metric=http/error-rate' --set 'assess.slos[0].upper=0.01'
  %[1]s launch --local -f values.yaml --dry`

type launchOptions struct {
	local   *action.Launch
	install *action.Install
	isLocal bool
	release string
	// specSet and forceSet record that --spec and --force were given.
	specSet, forceSet bool
	streams           IOStreams
}

func newLaunchCmd(e *cmdEnv) *cobra.Command {
	o := &launchOptions{local: action.NewLaunch(e.cfg), install: action.NewInstall(e.cfg), streams: e.streams}
	cmd := &cobra.Command{
		Use:   "launch [RELEASE]",
		Short: "Launch an experiment from a chart, locally or in a cluster",
		Args:  cobra.MaximumNArgs(1),
		RunE:  runE(o),
	}
	cmd.Long = fmt.Sprintf(launchDesc, e.name)
	f := cmd.Flags()
	f.BoolVar(&o.isLocal, "local", false, "run the experiment here instead of installing it in a cluster")
	f.BoolVar(&o.local.Dry, "dry", false, "with --local: write the spec, run nothing")
	f.BoolVar(&o.local.Force, "force", false, "with --local: replace the file at --spec (and where its result goes) even if launch did not write it")
	f.StringVar(&o.local.SpecPath, "spec", store.DefaultSpecFile, "with --local: where to write the experiment spec (the result goes beside it)")
	f.StringVarP(&o.local.ChartPath, "chart", "c", "", "chart folder or archive; in a cluster also repo/chart, URL or oci:// reference (default: the iter8 chart built into this binary)")
	f.StringVar(&o.local.ChartVersion, "version", "", "with -c from a repository or registry: the chart version")
	f.BoolVar(&o.local.PlainHTTP, "plain-http", false, "with -c oci://...: fetch the chart over HTTP, for a registry without TLS")
	f.DurationVar(&o.install.Timeout, "timeout", action.DefaultTimeout, "in a cluster: how long the install or upgrade may take, the experiment's run included")
	f.StringSliceVarP(&o.local.Values.ValueFiles, "values", "f", nil, "values file (can repeat)")
	f.StringArrayVar(&o.local.Values.Values, "set", nil, "set values: key1=val1,key2=val2 (can repeat)")
	f.StringArrayVar(&o.local.Values.StringValues, "set-string", nil, "set STRING values: key1=val1 (can repeat)")
	f.StringArrayVar(&o.local.Values.FileValues, "set-file", nil, "set values from files: key1=path1 (can repeat)")
	f.StringArrayVar(&o.local.Values.JSONValues, "set-json", nil, "set JSON values: key1=jsonval1 (can repeat)")
	return cmd
}

// Complete reads the arguments and gives the chart options to both verbs.
func (o *launchOptions) Complete(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		o.release = args[0]
		o.local.Name = o.release
	}
	o.specSet = cmd.Flags().Changed("spec")
	o.forceSet = cmd.Flags().Changed("force")
	o.install.ChartOptions = o.local.ChartOptions
	return nil
}

// Validate checks which flags go with which form, then the chosen action.
func (o *launchOptions) Validate() error {
	if !o.isLocal {
		switch {
		case o.release == "":
			return errors.New("launch: give --local to run here, or a release name to install in a cluster")
		case o.local.Dry:
			return errors.New("launch: --dry needs --local; for a cluster, render with helm template")
		case o.specSet:
			return errors.New("launch: --spec needs --local; a release keeps its spec in the cluster")
		case o.forceSet:
			return errors.New("launch: --force needs --local; a release's spec is replaced by helm upgrade")
		case o.install.Timeout < 0:
			return errors.New("launch: --timeout must not be negative")
		}
	}
	if o.isLocal && o.local.ChartVersion != "" {
		return errors.New("launch: --version is for charts from a repository or registry, which --local does not fetch")
	}
	if o.isLocal && o.local.PlainHTTP {
		return errors.New("launch: --plain-http is for charts from a registry, which --local does not fetch")
	}
	if o.local.ChartPath == "" && (o.local.ChartVersion != "" || o.local.PlainHTTP) {
		return errors.New("launch: --version and --plain-http are for a chart from a repository or registry (-c); without -c launch installs the chart built into this binary")
	}
	if looksLikeFile(o.release) {
		return fmt.Errorf("launch: %s looks like a file, not a release name: launch takes values files with -f, and run -f %s runs a spec", o.release, o.release)
	}
	var err error
	if o.isLocal {
		err = o.local.Validate()
	} else {
		err = o.install.Validate()
	}
	if err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	return nil
}

// Run launches here or in the cluster.
func (o *launchOptions) Run(ctx context.Context) error {
	if o.isLocal {
		return o.runLocal(ctx)
	}
	return o.runInstall(ctx)
}

// runLocal renders and runs the experiment here, then prints its report.
func (o *launchOptions) runLocal(ctx context.Context) error {
	res, err := o.local.Run(ctx)
	if err != nil {
		err = fmt.Errorf("launch: %w", err)
	}
	if res != nil && res.Result != nil {
		if werr := report.Write(o.streams.Out, res.Result, report.Text); werr != nil && err == nil {
			err = werr
		}
	}
	if res != nil && res.RemovedResult != "" {
		fmt.Fprintf(o.streams.ErrOut, "removed %s, the result of the replaced spec\n", res.RemovedResult)
	}
	if res != nil && o.local.Dry {
		fmt.Fprintf(o.streams.ErrOut, "wrote %s\n", res.SpecPath)
	}
	return runExit(err)
}

// runInstall installs or upgrades the release, then shows its run's report.
func (o *launchOptions) runInstall(ctx context.Context) error {
	res, err := o.install.Run(ctx)
	if res != nil {
		fmt.Fprintf(o.streams.Out, "NAME: %s\nNAMESPACE: %s\nREVISION: %d\nSTATUS: %s\n\n", res.Release, res.Namespace, res.Revision, res.Status)
		if res.Result != nil {
			if werr := report.Write(o.streams.Out, res.Result, report.Text); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return runExit(err)
}
