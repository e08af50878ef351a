package action

import (
	"context"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iter8-tools/iter8/pkg/kube"
	"github.com/iter8-tools/iter8/pkg/route"
	"github.com/iter8-tools/iter8/pkg/store"
)

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

// Validate checks the fields.
func (a *ReleaseStatus) Validate() error { return validateApp(a.App) }

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
	if err := a.Validate(); err != nil {
		return nil, err
	}
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

// readiness fills in v's readiness by kube.Readiness, the rule the A/B/n
// service's watcher applies too: its Deployment Available at its current
// generation, and its Service with ready endpoints.
func (w *workloads) readiness(ctx context.Context, cl *Cluster, v *VersionStatus) error {
	d := w.deployments[v.Version]
	if d != nil {
		v.Deployment = d.Name
		v.ReadyReplicas = d.Status.ReadyReplicas
		v.Replicas = 1
		if d.Spec.Replicas != nil {
			v.Replicas = *d.Spec.Replicas
		}
	}
	var eps []discoveryv1.EndpointSlice
	serviceExists := false
	_, err := cl.Client.CoreV1().Services(cl.Namespace).Get(ctx, v.Backend, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("get service %s: %w", v.Backend, err)
	default:
		serviceExists = true
		list, err := cl.Client.DiscoveryV1().EndpointSlices(cl.Namespace).List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=" + v.Backend,
		})
		if err != nil {
			return fmt.Errorf("list endpointslices of service %s: %w", v.Backend, err)
		}
		eps = list.Items
	}
	r := kube.Readiness(v.Version, d, v.Backend, serviceExists, eps)
	// The kube package's words are this package's: both are the JSON that
	// scripts read.
	v.Readiness, v.Reason, v.ReadyEndpoints = Readiness(r.State), r.Reason, r.ReadyEndpoints
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
