package action

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	helmaction "helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/store"
)

// DefaultTimeout bounds a release's install, upgrade or uninstall, hooks
// included, as Helm's own default does.
const DefaultTimeout = 5 * time.Minute

// Installed is what a cluster launch did.
type Installed struct {
	Release   string
	Namespace string
	Revision  int
	// Status is Helm's status of the release (deployed, failed).
	Status string
	// Result is the run's result from the result Secret; nil when the run
	// wrote none.
	Result *experiment.Result
}

// Install installs the experiment chart as a release in the cluster, or
// upgrades that release when it exists, as `helm upgrade --install` with the
// same chart and values would; Helm waits for the hook Job that runs the
// experiment.
type Install struct {
	cfg *Configuration
	ChartOptions
	// Timeout bounds the install or upgrade, hooks included; 0 is
	// DefaultTimeout.
	Timeout time.Duration
}

// NewInstall returns an Install action.
func NewInstall(cfg *Configuration) *Install {
	return &Install{cfg: cfg}
}

// Validate checks the fields.
func (a *Install) Validate() error {
	if a.Timeout < 0 {
		return fmt.Errorf("timeout must not be negative, got %v", a.Timeout)
	}
	return a.ChartOptions.validate()
}

// Run installs or upgrades the release a.Name. A failed run is returned as
// an error together with what was installed.
func (a *Install) Run(ctx context.Context) (*Installed, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	cl, helm, err := a.cfg.helmAction()
	if err != nil {
		return nil, err
	}
	ch, err := a.locateChart(helm)
	if err != nil {
		return nil, err
	}
	vals, err := a.Values.MergeValues(getter.All(helmSettingsOf(a.cfg)))
	if err != nil {
		return nil, fmt.Errorf("%w: values: %w", ErrInvalidSpec, err)
	}
	timeout := cmp.Or(a.Timeout, DefaultTimeout)

	var rel *release.Release
	_, err = helmaction.NewHistory(helm).Run(a.Name)
	switch {
	case errors.Is(err, driver.ErrReleaseNotFound):
		inst := helmaction.NewInstall(helm)
		inst.ReleaseName, inst.Namespace, inst.Timeout = a.Name, cl.Namespace, timeout
		rel, err = inst.RunWithContext(ctx, ch, vals)
	case err != nil:
		return nil, fmt.Errorf("release %s in namespace %s: %w", a.Name, cl.Namespace, err)
	default:
		up := helmaction.NewUpgrade(helm)
		up.Namespace, up.Timeout = cl.Namespace, timeout
		rel, err = up.RunWithContext(ctx, a.Name, ch, vals)
	}
	if rel == nil {
		return nil, fmt.Errorf("launch %s in namespace %s: %w", a.Name, cl.Namespace, err)
	}
	out := &Installed{Release: rel.Name, Namespace: rel.Namespace, Revision: rel.Version, Status: rel.Info.Status.String()}
	s := &store.Secrets{Client: cl.Client, Namespace: cl.Namespace, Release: a.Name}
	if res, rerr := s.ReadRevision(ctx, rel.Version); rerr == nil {
		out.Result = res
	}
	if err != nil {
		// The hook fails for unmet SLOs only when the spec sets failOnSLOs:
		// a verdict, exit 1, as for run.
		if r := out.Result; r != nil && r.Completed() && !r.Failed() && !r.SLOsSatisfied() {
			err = fmt.Errorf("%w: %w", experiment.ErrSLOsNotMet, err)
		}
		return out, fmt.Errorf("launch %s in namespace %s: revision %d: %w", a.Name, cl.Namespace, rel.Version, err)
	}
	return out, nil
}

// locateChart loads the embedded chart, or ChartPath as Helm finds charts:
// a folder or archive, repo/chart from the repositories Helm knows, a URL
// or an oci:// reference.
func (a *Install) locateChart(helm *helmaction.Configuration) (*chart.Chart, error) {
	if a.cfg.Helm == nil {
		// No repositories or registries without Helm's settings (see
		// Configuration.Helm): ChartPath is a folder or an archive.
		return a.load(nil)
	}
	// NewInstall gives LocateChart helm's registry client, for oci://.
	inst := helmaction.NewInstall(helm)
	inst.Version, inst.PlainHTTP = a.ChartVersion, a.PlainHTTP
	if a.PlainHTTP {
		rc, err := newRegistryClient(a.cfg.Helm, true)
		if err != nil {
			return nil, err
		}
		inst.SetRegistryClient(rc)
	}
	return a.load(func(name string) (string, error) { return inst.LocateChart(name, a.cfg.Helm) })
}
