package action

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/getter"

	"github.com/iter8-tools/iter8/charts"
	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/store"
)

// DefaultLocalName names a local experiment launched without a name.
const DefaultLocalName = "local"

// ChartOptions choose a chart and its values, as helm install takes them;
// both launch verbs (Launch here, Install in a cluster) render it.
type ChartOptions struct {
	// Name is the experiment's (release's) name.
	Name string
	// ChartPath is a chart folder or archive (in a cluster also repo/chart,
	// a URL or an oci:// reference); empty means the embedded iter8 chart.
	ChartPath string
	// ChartVersion picks a chart version from a repository or registry.
	ChartVersion string
	// PlainHTTP fetches an oci:// chart over HTTP, for a registry without
	// TLS, as helm install --plain-http does.
	PlainHTTP bool
	// Values are -f/--set/--set-string/--set-file/--set-json, as Helm takes
	// them.
	Values values.Options
}

// validate checks the name as Helm checks a release's name: it names the
// experiment, its Secrets and Jobs too.
func (o *ChartOptions) validate() error {
	if !experiment.ValidName(o.Name) {
		return fmt.Errorf("release name %q: %s", o.Name, experiment.NameRule)
	}
	return nil
}

// Launch renders the experiment chart with values, as `helm install` would,
// and runs the experiment locally.
type Launch struct {
	cfg *Configuration
	ChartOptions
	// SpecPath is where the rendered spec is written; its result goes
	// beside it.
	SpecPath string
	// Dry writes the spec and runs nothing.
	Dry bool
	// Force replaces a spec that Iter8 did not write, and a file where its
	// result goes that is not an Iter8 result; without it, launch replaces
	// only a spec that starts with one of Iter8's header lines
	// (SpecHeader, or release rollout's).
	Force bool
}

// LaunchResult is what a launch did.
type LaunchResult struct {
	SpecPath string
	// RemovedResult is the previous spec's result, removed because it is
	// not the new spec's; "" when there was none.
	RemovedResult string
	// Result is nil for a dry launch.
	Result *experiment.Result
}

// NewLaunch returns a Launch action.
func NewLaunch(cfg *Configuration) *Launch {
	return &Launch{cfg: cfg, ChartOptions: ChartOptions{Name: DefaultLocalName}, SpecPath: store.DefaultSpecFile}
}

// Validate checks the fields.
func (a *Launch) Validate() error {
	switch {
	case a.ChartVersion != "":
		return errors.New("a chart version is for charts from a repository or registry, which a local launch does not fetch")
	case a.PlainHTTP:
		return errors.New("plain HTTP is for charts from a registry, which a local launch does not fetch")
	case a.SpecPath == "":
		return errors.New("no spec path given")
	}
	return a.ChartOptions.validate()
}

// Run renders and validates the spec, writes it, and unless Dry runs it. Bad
// values or a bad spec wrap ErrInvalidSpec and leave no file behind. It
// replaces only a spec that it wrote itself (see Force), and removes that
// spec's result, which is not the new spec's.
func (a *Launch) Run(ctx context.Context) (*LaunchResult, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	spec, err := a.Render()
	if err != nil {
		return nil, err
	}
	f := &store.File{SpecPath: a.SpecPath}
	plan, err := decodeSpec(spec, a.cfg, f.SpecDir(), nil, nil)
	if err != nil {
		return nil, fmt.Errorf("experiment rendered from the chart: %w", err)
	}
	if err := checkReplace(f, a.Force, "launch"); err != nil {
		return nil, err
	}
	out := &LaunchResult{SpecPath: a.SpecPath}
	if out.RemovedResult, err = writeSpecDroppingResult(f, append([]byte(SpecHeader), spec...)); err != nil {
		return nil, err
	}
	if a.Dry {
		return out, nil
	}
	out.Result, err = runPlan(ctx, a.cfg, plan, f, 1, nil, nil)
	return out, err
}

// experimentTemplate is added to the chart for local rendering: it renders
// only the spec, not the cluster objects. (Helm drops the output of templates
// whose names start with "_", so this one must not.)
const experimentTemplate = "templates/local-experiment.yaml"

// Render returns the experiment spec that the chart renders from the values.
func (a *Launch) Render() ([]byte, error) {
	if err := a.checkValueFiles(); err != nil {
		return nil, err
	}
	ch, err := a.load(nil)
	if err != nil {
		return nil, err
	}
	vals, err := a.Values.MergeValues(getter.Providers{})
	if err != nil {
		return nil, fmt.Errorf("%w: values: %w", ErrInvalidSpec, err)
	}
	opts := chartutil.ReleaseOptions{Name: a.Name, Revision: 1, IsInstall: true}
	renderVals, err := chartutil.ToRenderValues(ch, vals, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, fmt.Errorf("%w: values of chart %s: %s", ErrInvalidSpec, ch.Name(), strings.TrimSpace(err.Error()))
	}
	ch.Templates = append(ch.Templates, &chart.File{
		Name: experimentTemplate,
		Data: []byte(`{{ include "iter8.experiment" . }}`),
	})
	out, err := engine.Render(ch, renderVals)
	if err != nil {
		return nil, fmt.Errorf("%w: render chart %s: %w", ErrInvalidSpec, ch.Name(), err)
	}
	spec, ok := out[path.Join(ch.Name(), experimentTemplate)]
	if !ok {
		return nil, fmt.Errorf("render chart %s: it defines no iter8.experiment template", ch.Name())
	}
	return []byte(strings.TrimSpace(spec) + "\n"), nil
}

// checkValueFiles refuses a values file that is an experiment spec: -f
// means values here, as in Helm, but a spec in the other commands, and
// Helm's own error (the chart's schema refusing apiVersion) would not say so.
func (a *Launch) checkValueFiles() error {
	for _, p := range a.Values.ValueFiles {
		data, err := os.ReadFile(p)
		if err != nil {
			continue // a URL or a missing file: Helm says what is wrong
		}
		if store.IsSpec(data) {
			return fmt.Errorf("%w: values file %s is an experiment spec, but launch's -f takes values for the chart; to run a spec, use run -f %s", ErrInvalidSpec, p, p)
		}
	}
	return nil
}

// load loads the embedded iter8 chart, or ChartPath: a folder or archive,
// or what locate (when not nil) finds for it.
func (o *ChartOptions) load(locate func(string) (string, error)) (*chart.Chart, error) {
	if o.ChartPath == "" {
		return LoadEmbeddedChart("iter8")
	}
	path, err := o.ChartPath, error(nil)
	if locate != nil {
		if path, err = locate(o.ChartPath); err != nil {
			return nil, fmt.Errorf("chart %s: %w", o.ChartPath, err)
		}
	}
	ch, err := loader.Load(path)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", o.ChartPath, err)
	}
	return ch, nil
}

// LoadEmbeddedChart loads one of the charts built into the binary.
func LoadEmbeddedChart(name string) (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(charts.FS, name, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(charts.FS, p)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: strings.TrimPrefix(p, name+"/"), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read embedded chart %s: %w", name, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("load embedded chart %s: %w", name, err)
	}
	return ch, nil
}
