package action

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	helmaction "helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/iter8-tools/iter8/pkg/kube"
	"github.com/iter8-tools/iter8/pkg/route"
	"github.com/iter8-tools/iter8/pkg/store"
)

// ErrNoRoute matches (errors.Is) the error of a release command whose app
// has neither an HTTPRoute nor a VirtualService.
var ErrNoRoute = errors.New("no route")

// NoRouteError says that an app has no route in a namespace.
type NoRouteError struct {
	App, Namespace string
}

func (e *NoRouteError) Error() string {
	return fmt.Sprintf("no HTTPRoute or VirtualService named %s in namespace %s", e.App, e.Namespace)
}

// Is makes a NoRouteError match ErrNoRoute.
func (e *NoRouteError) Is(target error) bool { return target == ErrNoRoute }

// ErrUnknownVersion is wrapped by the error of a promote whose version is
// not one of the release's versions.
var ErrUnknownVersion = errors.New("unknown version")

// The route kinds charts/release renders, in the order they are looked for.
var routeResources = []struct {
	kind string
	gvr  schema.GroupVersionResource
}{
	{route.KindHTTPRoute, schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}},
	{route.KindVirtualService, schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}},
}

// The release chart's gates, whose results live in the Secrets
// <release>-<gate>-result.
const (
	GateReady = "ready"
	GateSLO   = "slo"
)

// Readiness says whether a version can take traffic.
type Readiness string

// The readiness of a version.
const (
	Ready    Readiness = "ready"
	NotReady Readiness = "not ready"
	// Unknown is the readiness of a version with neither a Deployment nor
	// a Service.
	Unknown Readiness = "unknown"
)

// SLOsVerdict is a gate's verdict on its SLOs.
type SLOsVerdict string

// The verdicts of a gate on its SLOs.
const (
	SLOsMet    SLOsVerdict = "met"
	SLOsNotMet SLOsVerdict = "not met"
	// NoSLOs is the verdict of a gate that has no SLOs.
	NoSLOs SLOsVerdict = "none"
)

// findRoute reads and parses app's route in the cluster's namespace: the
// HTTPRoute, else the VirtualService. The error wraps ErrNoRoute when there
// is neither.
func findRoute(ctx context.Context, cl *Cluster, app string) (*route.Route, error) {
	for _, rr := range routeResources {
		u, err := cl.Dynamic.Resource(rr.gvr).Namespace(cl.Namespace).Get(ctx, app, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			// No such object, or the kind is not installed.
			continue
		case err != nil:
			return nil, fmt.Errorf("get %s %s in namespace %s: %w", rr.kind, app, cl.Namespace, err)
		}
		return route.Parse(u)
	}
	return nil, &NoRouteError{App: app, Namespace: cl.Namespace}
}

// releaseOf names the Helm release of app: the route's
// app.kubernetes.io/instance label, else (no route, or no label) app
// itself, since app.name defaults to the release's name.
func releaseOf(ctx context.Context, cl *Cluster, app string) (string, error) {
	r, err := findRoute(ctx, cl, app)
	switch {
	case errors.Is(err, ErrNoRoute):
		return app, nil
	case err != nil:
		return "", err
	case r.Release != "":
		return r.Release, nil
	}
	return app, nil
}

// ReleaseStatus reads what an app's release routes where and how ready
// its versions are.
type ReleaseStatus struct {
	cfg *Configuration
	// App names the route (the chart's app.name).
	App string
}

// NewReleaseStatus returns a ReleaseStatus action.
func NewReleaseStatus(cfg *Configuration) *ReleaseStatus {
	return &ReleaseStatus{cfg: cfg}
}

// AppStatus is the state of an app's release.
type AppStatus struct {
	App       string `json:"app"`
	Namespace string `json:"namespace"`
	// Release is the Helm release that owns the route ("" if unlabelled).
	Release string `json:"release,omitempty"`
	// Kind and Route name the route object.
	Kind     string         `json:"kind"`
	Route    string         `json:"route"`
	Strategy route.Strategy `json:"strategy,omitempty"`
	// Receiving lists the versions that get traffic, per the route's
	// annotation.
	Receiving []string        `json:"receiving"`
	Versions  []VersionStatus `json:"versions"`
	Gates     []GateVerdict   `json:"gates"`
	// Conditions are those a controller set on the route; empty when no
	// controller has reported.
	Conditions []route.Condition `json:"conditions"`
}

// VersionStatus is one version of an app: one backend of its route.
type VersionStatus struct {
	// Version is the version's name (its Service's iter8.tools/version
	// label, else the backend's name without the "<app>-" prefix).
	Version string `json:"version"`
	Backend string `json:"backend"`
	Port    int    `json:"port"`
	// Weight is the route's weight; Percent the share of traffic it gives
	// (for a VirtualService the weight itself).
	Weight    int                 `json:"weight"`
	Percent   int                 `json:"percent"`
	Matches   []map[string]string `json:"matches,omitempty"`
	Mirror    int                 `json:"mirror,omitempty"`
	Readiness Readiness           `json:"readiness"`
	// Deployment, with ReadyReplicas and Replicas, is the version's
	// Deployment, if there is one.
	Deployment    string `json:"deployment,omitempty"`
	ReadyReplicas int32  `json:"readyReplicas"`
	Replicas      int32  `json:"replicas"`
	// ReadyEndpoints counts the ready endpoints of the backend Service;
	// -1 when there is no such Service.
	ReadyEndpoints int `json:"readyEndpoints"`
	// Reason says why the version is not ready, or unknown.
	Reason string `json:"reason,omitempty"`
}

// GateVerdict is the last verdict of one of the release's gates.
type GateVerdict struct {
	Gate string `json:"gate"`
	// Found is false when the gate has no result (it never ran, or is not
	// enabled); Error then says why, if it is not just missing.
	Found     bool `json:"found"`
	Revision  int  `json:"revision,omitempty"`
	Completed bool `json:"completed"`
	Failed    bool `json:"failed"`
	// SLOs is set when Found.
	SLOs  SLOsVerdict `json:"slos,omitempty"`
	Error string      `json:"error,omitempty"`
}

// Run reads the route, the versions' Deployments, Services and
// EndpointSlices, and the gates' results. The error wraps ErrNoRoute when
// the app has no route.
func (a *ReleaseStatus) Run(ctx context.Context) (*AppStatus, error) {
	cl, err := a.cfg.cluster()
	if err != nil {
		return nil, err
	}
	r, err := findRoute(ctx, cl, a.App)
	if err != nil {
		return nil, err
	}
	st := &AppStatus{
		App: a.App, Namespace: cl.Namespace, Release: r.Release, Kind: r.Kind, Route: r.Name,
		Strategy: r.Strategy, Receiving: r.Receiving, Versions: []VersionStatus{}, Conditions: r.Conditions,
	}
	if st.Conditions == nil {
		st.Conditions = []route.Condition{}
	}
	w, err := readWorkloads(ctx, cl, a.App)
	if err != nil {
		return nil, fmt.Errorf("app %s in namespace %s: %w", a.App, cl.Namespace, err)
	}
	percents, perr := route.Percentages(r.Weights())
	for i, b := range r.Backends {
		v := VersionStatus{Backend: b.Name, Port: b.Port, Weight: b.Weight, Matches: b.Matches, Mirror: b.Mirror, ReadyEndpoints: -1}
		if perr == nil {
			v.Percent = percents[i]
		}
		v.Version = w.versionOf(a.App, b.Name)
		if err := w.readiness(ctx, cl, &v); err != nil {
			return nil, fmt.Errorf("app %s in namespace %s: version %s: %w", a.App, cl.Namespace, v.Version, err)
		}
		st.Versions = append(st.Versions, v)
	}
	st.Gates = gateVerdicts(ctx, cl, r.Release)
	return st, nil
}

// workloads are the Deployments and Services of an app, by version.
type workloads struct {
	deployments map[string]*appsv1.Deployment
	// serviceVersion maps a Service's name to its version.
	serviceVersion map[string]string
}

func readWorkloads(ctx context.Context, cl *Cluster, app string) (*workloads, error) {
	sel := metav1.ListOptions{LabelSelector: route.LabelApp + "=" + app}
	w := &workloads{deployments: map[string]*appsv1.Deployment{}, serviceVersion: map[string]string{}}
	deps, err := cl.Client.AppsV1().Deployments(cl.Namespace).List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("list deployments: %w", err)
	}
	for i := range deps.Items {
		if v := deps.Items[i].Labels[route.LabelVersion]; v != "" {
			w.deployments[v] = &deps.Items[i]
		}
	}
	svcs, err := cl.Client.CoreV1().Services(cl.Namespace).List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	for _, s := range svcs.Items {
		if v := s.Labels[route.LabelVersion]; v != "" {
			w.serviceVersion[s.Name] = v
		}
	}
	return w, nil
}

// versionOf names the version that a backend Service serves.
func (w *workloads) versionOf(app, service string) string {
	if v, ok := w.serviceVersion[service]; ok {
		return v
	}
	if v, ok := strings.CutPrefix(service, app+"-"); ok && v != "" {
		return v
	}
	return service
}

// readiness fills in v's readiness: its Deployment Available at its
// current generation, and its Service with ready endpoints.
func (w *workloads) readiness(ctx context.Context, cl *Cluster, v *VersionStatus) error {
	var reasons []string
	known := false
	if d, ok := w.deployments[v.Version]; ok {
		known = true
		v.Deployment = d.Name
		v.ReadyReplicas = d.Status.ReadyReplicas
		v.Replicas = 1
		if d.Spec.Replicas != nil {
			v.Replicas = *d.Spec.Replicas
		}
		available := false
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
				available = true
			}
		}
		switch {
		case d.Status.ObservedGeneration < d.Generation:
			reasons = append(reasons, fmt.Sprintf("deployment %s: generation %d not yet observed", d.Name, d.Generation))
		case !available:
			reasons = append(reasons, fmt.Sprintf("deployment %s: not Available", d.Name))
		}
	}
	_, err := cl.Client.CoreV1().Services(cl.Namespace).Get(ctx, v.Backend, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("get service %s: %w", v.Backend, err)
	default:
		known = true
		eps, err := cl.Client.DiscoveryV1().EndpointSlices(cl.Namespace).List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=" + v.Backend,
		})
		if err != nil {
			return fmt.Errorf("list endpointslices of service %s: %w", v.Backend, err)
		}
		v.ReadyEndpoints, _ = kube.ReadyEndpoints(eps.Items)
		if v.ReadyEndpoints == 0 {
			reasons = append(reasons, fmt.Sprintf("service %s: no ready endpoints", v.Backend))
		}
	}
	switch {
	case !known:
		v.Readiness = Unknown
		v.Reason = fmt.Sprintf("no Deployment of version %s and no Service %s", v.Version, v.Backend)
	case len(reasons) > 0:
		v.Readiness = NotReady
		v.Reason = strings.Join(reasons, "; ")
	default:
		v.Readiness = Ready
	}
	return nil
}

// gateVerdicts reads the last result of each gate of rel.
func gateVerdicts(ctx context.Context, cl *Cluster, rel string) []GateVerdict {
	gates := []string{GateReady, GateSLO}
	out := make([]GateVerdict, 0, len(gates))
	for _, g := range gates {
		gv := GateVerdict{Gate: g}
		if rel == "" {
			gv.Error = "the route names no release"
			out = append(out, gv)
			continue
		}
		s := &store.Secrets{Client: cl.Client, Namespace: cl.Namespace, Release: rel + "-" + g}
		rs, err := s.ReadResults(ctx)
		switch {
		case errors.Is(err, store.ErrNoResult):
		case err != nil:
			gv.Error = err.Error()
		default:
			last := rs[len(rs)-1]
			gv.Found, gv.Revision, gv.Completed, gv.Failed = true, last.Revision, last.Completed(), last.Failed()
			switch {
			case len(last.SLOs) == 0:
				gv.SLOs = NoSLOs
			case last.SLOsSatisfied():
				gv.SLOs = SLOsMet
			default:
				gv.SLOs = SLOsNotMet
			}
		}
		out = append(out, gv)
	}
	return out
}

// ReleasePromote sends all of an app's traffic to one version: the
// equivalent of helm upgrade RELEASE CHART --reuse-values with that
// version's weight 100 and every other version's 0.
type ReleasePromote struct {
	cfg *Configuration
	// App names the route; its release is the route's
	// app.kubernetes.io/instance label.
	App string
	// Version is the version to promote.
	Version string
	// Atomic rolls the upgrade back if it fails (it implies Wait).
	Atomic bool
	// Wait waits for the release's objects to be ready.
	Wait bool
	// Timeout bounds the upgrade, hooks included; 0 is DefaultTimeout.
	Timeout time.Duration
}

// NewReleasePromote returns a ReleasePromote action.
func NewReleasePromote(cfg *Configuration) *ReleasePromote {
	return &ReleasePromote{cfg: cfg}
}

// Promoted is what a promote did.
type Promoted struct {
	Release   string `json:"release"`
	Namespace string `json:"namespace"`
	Version   string `json:"version"`
	// From is the revision that was upgraded; Revision the new one (From
	// when nothing changed).
	From     int `json:"from"`
	Revision int `json:"revision"`
	// Changes are the values that changed; none when the version already
	// had all traffic, and then there was no upgrade.
	Changes []Change `json:"changes"`
}

// Change is one value that a promote changed.
type Change struct {
	Version string `json:"version"`
	// Field is "weight" or "mirror".
	Field string `json:"field"`
	From  int    `json:"from"`
	To    int    `json:"to"`
}

// Run upgrades the release with its own chart of its last revision. The
// error wraps ErrUnknownVersion, naming the versions, when Version is not
// one of them.
func (a *ReleasePromote) Run(ctx context.Context) (*Promoted, error) {
	cl, helm, rel, last, err := a.cfg.appRelease(ctx, a.App)
	if err != nil {
		return nil, err
	}
	versions, strategy, err := releaseVersions(last)
	if err != nil {
		return nil, fmt.Errorf("release %s in namespace %s: %w", rel, cl.Namespace, err)
	}
	out := &Promoted{Release: rel, Namespace: cl.Namespace, Version: a.Version, From: last.Version, Revision: last.Version, Changes: []Change{}}
	next, changes, err := promoteValues(versions, a.Version)
	if err != nil {
		return nil, fmt.Errorf("release %s in namespace %s: %w", rel, cl.Namespace, err)
	}
	weights := make([]int, len(next))
	for i, v := range next {
		weights[i], _ = intValue(v["weight"])
	}
	if err := route.CheckWeights(strategy, weights); err != nil {
		return nil, fmt.Errorf("release %s in namespace %s: promote %s: %w", rel, cl.Namespace, a.Version, err)
	}
	if len(changes) == 0 {
		return out, nil
	}
	up := helmaction.NewUpgrade(helm)
	up.Namespace = cl.Namespace
	up.ReuseValues = true
	up.Atomic, up.Wait = a.Atomic, a.Wait
	up.Timeout = a.Timeout
	if up.Timeout <= 0 {
		up.Timeout = DefaultTimeout
	}
	list := make([]any, len(next))
	for i, v := range next {
		list[i] = v
	}
	res, err := up.RunWithContext(ctx, rel, last.Chart, map[string]any{"versions": list})
	if res != nil {
		out.Revision = res.Version
	}
	if err != nil {
		return out, fmt.Errorf("upgrade release %s in namespace %s: %w", rel, cl.Namespace, err)
	}
	out.Changes = changes
	return out, nil
}

// appRelease finds the Helm release that routes app and reads its newest
// revision, with the cluster and Helm configuration to act on it.
func (c *Configuration) appRelease(ctx context.Context, app string) (*Cluster, *helmaction.Configuration, string, *release.Release, error) {
	cl, helm, err := c.helmAction()
	if err != nil {
		return nil, nil, "", nil, err
	}
	rel, err := releaseOf(ctx, cl, app)
	if err != nil {
		return nil, nil, "", nil, err
	}
	last, err := lastRelease(helm, rel, cl.Namespace)
	if err != nil {
		return nil, nil, "", nil, err
	}
	return cl, helm, rel, last, nil
}

// lastRelease reads the newest revision of rel.
func lastRelease(helm *helmaction.Configuration, rel, ns string) (*release.Release, error) {
	last, err := helmaction.NewGet(helm).Run(rel)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, fmt.Errorf("release %s not found in namespace %s", rel, ns)
	}
	if err != nil {
		return nil, fmt.Errorf("release %s in namespace %s: %w", rel, ns, err)
	}
	if last.Chart == nil {
		return nil, fmt.Errorf("release %s in namespace %s: revision %d holds no chart", rel, ns, last.Version)
	}
	return last, nil
}

// releaseVersions returns the versions value that an upgrade with
// --reuse-values starts from (the release's values, else the chart's
// defaults), and the strategy.
func releaseVersions(rel *release.Release) ([]map[string]any, route.Strategy, error) {
	pick := func(key string) any {
		if v, ok := rel.Config[key]; ok {
			return v
		}
		return rel.Chart.Values[key]
	}
	strategy, _ := pick("strategy").(string)
	raw, ok := pick("versions").([]any)
	if !ok || len(raw) == 0 {
		return nil, "", errors.New("values: no versions")
	}
	out := make([]map[string]any, len(raw))
	for i, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, "", fmt.Errorf("values: versions[%d]: want an object, got %T", i, r)
		}
		if name, _ := m["name"].(string); name == "" {
			return nil, "", fmt.Errorf("values: versions[%d].name: missing", i)
		}
		out[i] = m
	}
	return out, route.Strategy(strategy), nil
}

// promoteValues returns a copy of versions with version's weight 100 (and
// no mirror of its own) and every other version's weight 0, and the
// changes.
func promoteValues(versions []map[string]any, version string) ([]map[string]any, []Change, error) {
	names := make([]string, len(versions))
	for i, v := range versions {
		names[i] = v["name"].(string)
	}
	if !slices.Contains(names, version) {
		return nil, nil, fmt.Errorf("%w %q: the versions are %s", ErrUnknownVersion, version, strings.Join(names, ", "))
	}
	next := make([]map[string]any, len(versions))
	var changes []Change
	for i, v := range versions {
		c := maps.Clone(v)
		want := 0
		if names[i] == version {
			want = 100
			if m, _ := intValue(c["mirror"]); m > 0 {
				// A version that serves traffic gets no mirror.
				c["mirror"] = 0
				changes = append(changes, Change{Version: names[i], Field: "mirror", From: m, To: 0})
			}
		}
		if w, _ := intValue(c["weight"]); w != want || c["weight"] == nil {
			changes = append(changes, Change{Version: names[i], Field: "weight", From: w, To: want})
		}
		c["weight"] = want
		next[i] = c
	}
	return next, changes, nil
}

// intValue reads a whole number from values decoded from JSON or YAML.
func intValue(v any) (int, bool) {
	n, ok := kube.WholeNumber(v)
	return int(n), ok
}

// ReleaseRollback rolls an app's release back to an earlier revision, as
// helm rollback does.
type ReleaseRollback struct {
	cfg *Configuration
	// App names the route; its release is the route's
	// app.kubernetes.io/instance label.
	App string
	// Revision is the revision to go back to; 0 is the one before the
	// newest.
	Revision int
	// Wait waits for the release's objects to be ready.
	Wait bool
	// Timeout bounds the rollback, hooks included; 0 is DefaultTimeout.
	Timeout time.Duration
}

// NewReleaseRollback returns a ReleaseRollback action.
func NewReleaseRollback(cfg *Configuration) *ReleaseRollback {
	return &ReleaseRollback{cfg: cfg}
}

// RolledBack is what a rollback did.
type RolledBack struct {
	Release   string `json:"release"`
	Namespace string `json:"namespace"`
	// From is the newest revision before the rollback, To the revision
	// whose chart and values it restored, and Revision the new revision.
	From     int `json:"from"`
	To       int `json:"to"`
	Revision int `json:"revision"`
}

// Run rolls the release back.
func (a *ReleaseRollback) Run(ctx context.Context) (*RolledBack, error) {
	cl, helm, rel, last, err := a.cfg.appRelease(ctx, a.App)
	if err != nil {
		return nil, err
	}
	out := &RolledBack{Release: rel, Namespace: cl.Namespace, From: last.Version, To: a.Revision}
	if out.To == 0 {
		out.To = last.Version - 1
	}
	if out.To < 1 {
		return nil, fmt.Errorf("release %s in namespace %s: revision %d is the first; there is none to roll back to", rel, cl.Namespace, last.Version)
	}
	if out.To >= last.Version {
		return nil, fmt.Errorf("release %s in namespace %s: revision %d is not before the newest (%d)", rel, cl.Namespace, out.To, last.Version)
	}
	rb := helmaction.NewRollback(helm)
	rb.Version, rb.Wait = out.To, a.Wait
	rb.Timeout = a.Timeout
	if rb.Timeout <= 0 {
		rb.Timeout = DefaultTimeout
	}
	rerr := rb.Run(rel)
	if now, err := helmaction.NewGet(helm).Run(rel); err == nil {
		out.Revision = now.Version
	}
	if rerr != nil {
		return out, fmt.Errorf("roll back release %s in namespace %s to revision %d: %w", rel, cl.Namespace, out.To, rerr)
	}
	return out, nil
}
