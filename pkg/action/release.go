package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	helmaction "helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	helmcli "helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

// Install installs the chart as release a.Name, or upgrades that release
// when it exists, as `helm upgrade --install` with the same chart and
// values would; Helm waits for the hook Job that runs the experiment. A
// failed run is returned as an error together with what was installed.
func (a *Launch) Install(ctx context.Context) (*Installed, error) {
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
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}

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

// helmAction connects to the cluster and makes Helm's action
// configuration for it.
func (c *Configuration) helmAction() (*Cluster, *helmaction.Configuration, error) {
	cl, err := c.cluster()
	if err != nil {
		return nil, nil, err
	}
	helm, err := newHelmConfig(c, helmSettingsOf(c), cl)
	if err != nil {
		return nil, nil, err
	}
	return cl, helm, nil
}

// newHelmConfig is Helm's action configuration for the cluster cl.
func newHelmConfig(cfg *Configuration, settings *helmcli.EnvSettings, cl *Cluster) (*helmaction.Configuration, error) {
	helm := new(helmaction.Configuration)
	debug := func(string, ...any) {}
	if settings.Debug {
		debug = func(format string, v ...any) { fmt.Fprintf(cfg.Log, "helm: "+format+"\n", v...) }
	}
	if err := helm.Init(cl.Getter, cl.Namespace, cl.HelmDriver, debug); err != nil {
		return nil, fmt.Errorf("helm: %w", err)
	}
	rc, err := registry.NewClient(
		registry.ClientOptDebug(settings.Debug),
		registry.ClientOptEnableCache(true),
		registry.ClientOptWriter(io.Discard),
		registry.ClientOptCredentialsFile(settings.RegistryConfig),
	)
	if err != nil {
		return nil, fmt.Errorf("helm registry client: %w", err)
	}
	helm.RegistryClient = rc
	return helm, nil
}

// locateChart loads the embedded chart, or ChartPath as Helm finds charts:
// a folder or archive, repo/chart from the repositories Helm knows, a URL
// or an oci:// reference.
func (a *Launch) locateChart(helm *helmaction.Configuration) (*chart.Chart, error) {
	if a.ChartPath == "" {
		return LoadEmbeddedChart("iter8")
	}
	opts := helmaction.ChartPathOptions{Version: a.ChartVersion}
	inst := helmaction.NewInstall(helm)
	inst.ChartPathOptions = opts
	path, err := inst.LocateChart(a.ChartPath, helmSettingsOf(a.cfg))
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", a.ChartPath, err)
	}
	ch, err := loader.Load(path)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", a.ChartPath, err)
	}
	return ch, nil
}

// Delete removes an experiment: a local one's spec and result, or a
// release (Helm's uninstall) and what its runs created, which a garbage
// collector would remove in time: the hook Jobs that Helm keeps after a
// failed run, and their Pods.
type Delete struct {
	cfg      *Configuration
	SpecPath string
	// Release, when set, names an experiment in the cluster instead.
	Release string
	// Timeout bounds the uninstall; 0 is DefaultTimeout.
	Timeout time.Duration
}

// NewDelete returns a Delete action.
func NewDelete(cfg *Configuration) *Delete {
	return &Delete{cfg: cfg, SpecPath: store.DefaultSpecFile}
}

// Run returns what it removed: files, or Kind/name of cluster objects.
// Locally it removes only an Iter8 spec and its Iter8 result, and nothing
// when either is something else.
func (a *Delete) Run(ctx context.Context) ([]string, error) {
	if a.Release == "" {
		return deleteLocal(a.SpecPath)
	}
	cl, helm, err := a.cfg.helmAction()
	if err != nil {
		return nil, err
	}
	un := helmaction.NewUninstall(helm)
	un.Timeout = a.Timeout
	if un.Timeout <= 0 {
		un.Timeout = DefaultTimeout
	}
	var removed []string
	_, uerr := un.Run(a.Release)
	notFound := uerr != nil && errors.Is(uerr, driver.ErrReleaseNotFound)
	switch {
	case uerr == nil:
		removed = append(removed, "release/"+a.Release)
	case !notFound:
		return nil, fmt.Errorf("uninstall %s in namespace %s: %w", a.Release, cl.Namespace, uerr)
	}
	leftovers, err := deleteRunObjects(ctx, cl, a.Release)
	removed = append(removed, leftovers...)
	if err != nil {
		return removed, fmt.Errorf("delete %s in namespace %s: %w", a.Release, cl.Namespace, err)
	}
	if notFound && len(leftovers) == 0 {
		return nil, fmt.Errorf("delete: release %s not found in namespace %s", a.Release, cl.Namespace)
	}
	return removed, nil
}

// helmSettingsOf are Helm's settings for repositories and registries: the
// front-end's (pkg/cli reads them from Helm's environment), else none, so
// that a library caller's process environment never changes what the
// action does.
func helmSettingsOf(cfg *Configuration) *helmcli.EnvSettings {
	if cfg.Helm != nil {
		return cfg.Helm
	}
	return &helmcli.EnvSettings{}
}

// deleteRunObjects deletes the Jobs and Pods labelled with the experiment.
func deleteRunObjects(ctx context.Context, cl *Cluster, rel string) ([]string, error) {
	sel := metav1.ListOptions{LabelSelector: store.LabelExperiment + "=" + rel}
	var removed []string
	jobs, err := cl.Client.BatchV1().Jobs(cl.Namespace).List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	// Background: a garbage collector, where there is one, takes the Pods;
	// they are deleted below for clusters (and tests) without one.
	bg := metav1.DeletePropagationBackground
	for _, j := range jobs.Items {
		err := cl.Client.BatchV1().Jobs(cl.Namespace).Delete(ctx, j.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
		switch {
		case err == nil:
			removed = append(removed, "Job/"+j.Name)
		case !apierrors.IsNotFound(err): // else gone meanwhile
			return removed, fmt.Errorf("delete job %s: %w", j.Name, err)
		}
	}
	pods, err := cl.Client.CoreV1().Pods(cl.Namespace).List(ctx, sel)
	if err != nil {
		return removed, fmt.Errorf("list pods: %w", err)
	}
	for _, p := range pods.Items {
		err := cl.Client.CoreV1().Pods(cl.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
		switch {
		case err == nil:
			removed = append(removed, "Pod/"+p.Name)
		case !apierrors.IsNotFound(err): // else gone meanwhile
			return removed, fmt.Errorf("delete pod %s: %w", p.Name, err)
		}
	}
	return removed, nil
}

// podLog reads the log of the newest Pod of the experiment's runs (of
// revision, when not 0), for when its result Secret holds no log (the run
// failed before it could write one). It needs a kubelet that serves logs.
func podLog(ctx context.Context, cl *Cluster, rel string, revision int) ([]string, error) {
	sel := store.LabelExperiment + "=" + rel
	if revision != 0 {
		sel += fmt.Sprintf(",%s=%d", store.LabelRevision, revision)
	}
	pods, err := cl.Client.CoreV1().Pods(cl.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	if len(pods.Items) == 0 {
		return nil, fmt.Errorf("no pod of experiment %s in namespace %s", rel, cl.Namespace)
	}
	sort.Slice(pods.Items, func(i, j int) bool {
		return pods.Items[j].CreationTimestamp.Before(&pods.Items[i].CreationTimestamp)
	})
	newest := pods.Items[0]
	data, err := cl.Client.CoreV1().Pods(cl.Namespace).GetLogs(newest.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("log of pod %s: %w", newest.Name, err)
	}
	text := strings.TrimRight(string(data), "\n")
	if text == "" {
		return nil, fmt.Errorf("log of pod %s is empty", newest.Name)
	}
	return strings.Split(text, "\n"), nil
}
