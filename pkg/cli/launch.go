package cli

import (
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
before any task runs. --dry writes the spec and runs nothing.

Without --local, launch will install the experiment as a Helm release in a
cluster; that is not built yet, so use plain helm: helm install NAME
charts/iter8 -f values.yaml.

Examples:
  %[1]s launch --local --set tasks={ready,http,assess} \
      --set ready.url=http://127.0.0.1:8080/healthz \
      --set http.url=http://127.0.0.1:8080/ --set http.duration=10s \
      --set assess.slos[0].metric=http/error-rate --set assess.slos[0].upper=0.01
  %[1]s launch --local -f values.yaml --dry`

type launchOptions struct {
	launch  *action.Launch
	local   bool
	release string
	format  string
}

func newLaunchCmd(e *cmdEnv) *cobra.Command {
	o := &launchOptions{launch: action.NewLaunch(e.cfg)}
	cmd := &cobra.Command{
		Use:   "launch [RELEASE]",
		Short: "Launch an experiment from a chart, locally or in a cluster",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				o.release = args[0]
			}
			if err := o.validate(); err != nil {
				return err
			}
			if o.release != "" {
				o.launch.Name = o.release
			}
			res, err := o.launch.Run(cmd.Context())
			if res != nil && res.Result != nil {
				if werr := report.Write(e.streams.Out, res.Result, report.Text); werr != nil && err == nil {
					err = werr
				}
			}
			if res != nil && o.launch.Dry {
				fmt.Fprintf(e.streams.ErrOut, "wrote %s\n", res.SpecPath)
			}
			return runExit(err)
		},
	}
	cmd.Long = fmt.Sprintf(launchDesc, e.name)
	f := cmd.Flags()
	f.BoolVar(&o.local, "local", false, "run the experiment here instead of installing it in a cluster")
	f.BoolVar(&o.launch.Dry, "dry", false, "with --local: write the spec, run nothing")
	f.StringVar(&o.launch.SpecPath, "spec", store.DefaultSpecFile, "with --local: where to write the experiment spec (the result goes beside it)")
	f.StringVarP(&o.launch.ChartPath, "chart", "c", "", "chart folder or archive (default: the iter8 chart built into this binary)")
	f.StringSliceVarP(&o.launch.Values.ValueFiles, "values", "f", nil, "values file (can repeat)")
	f.StringArrayVar(&o.launch.Values.Values, "set", nil, "set values: key1=val1,key2=val2 (can repeat)")
	f.StringArrayVar(&o.launch.Values.StringValues, "set-string", nil, "set STRING values: key1=val1 (can repeat)")
	f.StringArrayVar(&o.launch.Values.FileValues, "set-file", nil, "set values from files: key1=path1 (can repeat)")
	f.StringArrayVar(&o.launch.Values.JSONValues, "set-json", nil, "set JSON values: key1=jsonval1 (can repeat)")
	return cmd
}

func (o *launchOptions) validate() error {
	if !o.local {
		name := o.release
		if name == "" {
			return errors.New("launch: give --local to run here, or a release name to install in a cluster")
		}
		return fmt.Errorf("launch %s: %w", name, action.ErrNotYet)
	}
	if o.release != "" && !validReleaseName(o.release) {
		return fmt.Errorf("launch: release name %q: must be at most 53 lowercase letters, digits and '-', starting and ending with a letter or digit", o.release)
	}
	return nil
}

func validReleaseName(s string) bool {
	if s == "" || len(s) > 53 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
