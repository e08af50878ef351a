package action

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/kube"
	"github.com/iter8-tools/iter8/pkg/route"
	"github.com/iter8-tools/iter8/pkg/store"
	banditask "github.com/iter8-tools/iter8/pkg/task/bandit"
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
	// Bandits are the bandit experiments that move this release's
	// weights, newest first, at most MaxBandits of them; BanditsOmitted
	// counts the older ones left out.
	Bandits        []BanditStatus `json:"bandits"`
	BanditsOmitted int            `json:"banditsOmitted,omitempty"`
	// BanditsError says why the experiments, or the spec of one that
	// may target the release, could not be read (listing or getting
	// Secrets may be forbidden); the rest of the status, and the bandits
	// that were read, stand.
	BanditsError string `json:"banditsError,omitempty"`
	// Rollouts are the rollout experiments that step this release's
	// weights, newest first, at most MaxBandits of them; RolloutsOmitted
	// counts the older ones left out, and RolloutsError says why the
	// experiments could not be read. A rollout whose task
	// has not run yet names no release and is not shown.
	Rollouts        []RolloutStatus `json:"rollouts"`
	RolloutsOmitted int             `json:"rolloutsOmitted,omitempty"`
	RolloutsError   string          `json:"rolloutsError,omitempty"`
}

// RolloutStatus is where a rollout experiment has taken the release.
type RolloutStatus struct {
	// Experiment is the experiment's release; Revision its run.
	Experiment string           `json:"experiment"`
	Revision   int              `json:"revision"`
	State      experiment.State `json:"state"`
	// Loop is the loop in progress or last finished, of Loops.
	Loop    int                 `json:"loop"`
	Loops   int                 `json:"loops"`
	Rollout *experiment.Rollout `json:"rollout"`
	// Stopped says why the run ended, once it has.
	Stopped   string    `json:"stopped,omitempty"`
	StartTime time.Time `json:"startTime"`
}

// MaxBandits bounds the bandit experiments that a status shows.
const MaxBandits = 3

// BanditStatus is what a bandit experiment last did to the release: the
// newest result of an experiment whose bandit task targets it. Before the
// bandit task first ran (the run's first loop) its Versions are empty and
// its Reason says that no bandit loop ran yet.
type BanditStatus struct {
	// Experiment is the experiment's release; Revision its run.
	Experiment string           `json:"experiment"`
	Revision   int              `json:"revision"`
	State      experiment.State `json:"state"`
	// Loop is the loop in progress or last finished, of Loops.
	Loop  int `json:"loop"`
	Loops int `json:"loops"`
	// Versions has the last loop's weight and P(best) of each version, in
	// the experiment's order.
	Versions []BanditVersion `json:"versions"`
	// Reason says what the last loop did and why (NoBanditLoop before
	// the bandit task first ran).
	Reason string `json:"reason,omitempty"`
	// Promoted is the version given all traffic, once one is.
	Promoted string `json:"promoted,omitempty"`
	// Stopped says why the run ended, once it has: the run's own reason
	// for ending early, else the failed task, else that every loop ran.
	Stopped string `json:"stopped,omitempty"`
	// StartTime is when the run began.
	StartTime time.Time `json:"startTime"`
}

// NoBanditLoop is the Reason of a bandit experiment whose bandit task has
// not run yet.
const NoBanditLoop = "no bandit loop yet: the bandit task has not run"

// BanditVersion is one version's weight and P(best) after a bandit's loop.
type BanditVersion struct {
	Version string `json:"version"`
	Weight  int    `json:"weight"`
	// ProbabilityBest is nil when the loop had too little evidence to
	// compute it.
	ProbabilityBest *float64 `json:"probabilityBest,omitempty"`
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
	// Interrupted tells that a signal stopped the gate's run before its
	// end (it is neither completed nor running).
	Interrupted bool `json:"interrupted,omitempty"`
	Failed      bool `json:"failed"`
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
	st.Bandits = []BanditStatus{}
	if r.Release != "" {
		bs, err := bandits(ctx, cl, r.Release)
		if err != nil { // bs holds those that could be read
			st.BanditsError = err.Error()
		}
		if len(bs) > MaxBandits {
			st.BanditsOmitted = len(bs) - MaxBandits
			bs = bs[:MaxBandits]
		}
		st.Bandits = append(st.Bandits, bs...)
	}
	st.Rollouts = []RolloutStatus{}
	if r.Release != "" {
		rs, err := rollouts(ctx, cl, r.Release)
		if err != nil {
			st.RolloutsError = err.Error()
		}
		if len(rs) > MaxBandits {
			st.RolloutsOmitted = len(rs) - MaxBandits
			rs = rs[:MaxBandits]
		}
		st.Rollouts = append(st.Rollouts, rs...)
	}
	return st, nil
}

// rollouts reads the experiments in the release's namespace whose newest
// result has a rollout targeting <namespace>/<rel>, newest run first.
func rollouts(ctx context.Context, cl *Cluster, rel string) ([]RolloutStatus, error) {
	sums, err := store.ListExperiments(ctx, cl.Client, cl.Namespace)
	if err != nil {
		return nil, fmt.Errorf("read rollouts: %w", err)
	}
	var out []RolloutStatus
	for _, s := range sums {
		r := s.Result
		if r == nil || r.Rollout == nil || r.Rollout.Release != cl.Namespace+"/"+rel {
			continue
		}
		out = append(out, RolloutStatus{Experiment: s.Release, Revision: r.Revision, State: r.State(), Loop: r.Loop, Loops: r.Loops,
			Rollout: r.Rollout, Stopped: runStopped(r, ""), StartTime: r.StartTime})
	}
	slices.SortStableFunc(out, func(a, b RolloutStatus) int {
		if c := b.StartTime.Compare(a.StartTime); c != 0 {
			return c
		}
		return cmp.Compare(a.Experiment, b.Experiment)
	})
	return out, nil
}

// bandits reads the experiments in the release's namespace whose newest
// result has a bandit targeting <namespace>/<rel>, newest run first. A
// result with a bandit task that has not run yet names no release: the
// experiment's spec (its spec Secret) tells whether the task targets rel.
// Only that namespace is listed: a bandit in another namespace that
// targets this release is not found, since listing every namespace's
// Secrets needs cluster-wide rights the user of release status seldom
// has, and reads every experiment in the cluster. Experiments whose
// results cannot be decoded are skipped (list shows them with their
// error). The error says what could not be read; the bandits returned
// with it are those that could.
func bandits(ctx context.Context, cl *Cluster, rel string) ([]BanditStatus, error) {
	sums, err := store.ListExperiments(ctx, cl.Client, cl.Namespace)
	if err != nil {
		return nil, fmt.Errorf("read bandits: %w", err)
	}
	target := cl.Namespace + "/" + rel
	var out []BanditStatus
	var unread []error
	for _, s := range sums {
		r := s.Result
		switch {
		case r == nil:
			continue
		case r.Bandit != nil:
			if r.Bandit.Release != target {
				continue
			}
		case !slices.ContainsFunc(r.Tasks, func(t experiment.TaskResult) bool { return t.Task == banditask.Name }):
			continue
		default:
			sec := &store.Secrets{Client: cl.Client, Namespace: cl.Namespace, Release: s.Release}
			targets, err := specBanditTargets(ctx, sec)
			if err != nil {
				unread = append(unread, err)
				continue
			}
			if !slices.Contains(targets, target) {
				continue
			}
		}
		out = append(out, banditStatus(s.Release, r))
	}
	slices.SortStableFunc(out, func(a, b BanditStatus) int {
		if c := b.StartTime.Compare(a.StartTime); c != 0 {
			return c
		}
		return cmp.Compare(a.Experiment, b.Experiment)
	})
	switch len(unread) {
	case 0:
		return out, nil
	case 1:
		return out, fmt.Errorf("read bandits: %w", unread[0])
	}
	return out, fmt.Errorf("read bandits: %w (and %d more experiments' specs)", unread[0], len(unread)-1)
}

// specBanditTargets reads the spec of the experiment exp and returns the
// releases, as <namespace>/<name>, that its bandit tasks target; a release
// without a namespace is in the experiment's. Only the bandit tasks'
// release fields are read: the spec was validated when it ran.
func specBanditTargets(ctx context.Context, exp *store.Secrets) ([]string, error) {
	data, err := exp.ReadSpec(ctx)
	if err != nil {
		return nil, err
	}
	var spec experiment.Experiment
	if err := yaml.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("%s: decode spec: %w", exp, err)
	}
	var out []string
	for i, t := range spec.Spec.Tasks {
		if t.Task != banditask.Name {
			continue
		}
		var with struct {
			Release string `json:"release"`
		}
		if err := json.Unmarshal(t.With, &with); err != nil {
			return nil, fmt.Errorf("%s: decode spec.tasks[%d].with: %w", exp, i, err)
		}
		if !strings.Contains(with.Release, "/") {
			with.Release = exp.Namespace + "/" + with.Release
		}
		out = append(out, with.Release)
	}
	return out, nil
}

// banditStatus is the status of the experiment name from its newest
// result r; r.Bandit is nil when the bandit task has not run yet.
func banditStatus(name string, r *experiment.Result) BanditStatus {
	b := r.Bandit
	if b == nil {
		b = &experiment.Bandit{Reason: NoBanditLoop}
	}
	bs := BanditStatus{
		Experiment: name, Revision: r.Revision, State: r.State(), Loop: r.Loop, Loops: r.Loops,
		Versions: []BanditVersion{}, Reason: b.Reason, Promoted: b.Promoted, StartTime: r.StartTime,
	}
	// The experiment's versions in its order, then any other that the
	// bandit names, sorted; none before the bandit ran, when no version
	// has a weight from it.
	var names []string
	for _, v := range r.Versions {
		if r.Bandit != nil {
			names = append(names, v.Name)
		}
	}
	for _, v := range slices.Sorted(maps.Keys(b.Weights)) {
		if !slices.Contains(names, v) {
			names = append(names, v)
		}
	}
	for _, v := range slices.Sorted(maps.Keys(b.ProbabilityBest)) {
		if !slices.Contains(names, v) {
			names = append(names, v)
		}
	}
	for _, v := range names {
		bv := BanditVersion{Version: v, Weight: b.Weights[v]}
		if p, ok := b.ProbabilityBest[v]; ok {
			bv.ProbabilityBest = &p
		}
		bs.Versions = append(bs.Versions, bv)
	}
	bs.Stopped = runStopped(r, b.Promoted)
	return bs
}

// runStopped says why a run ended, "" while it has not: its own reason
// for ending early, else its failed task, else the version promoted (when
// promoted is not empty), else how many loops ran.
func runStopped(r *experiment.Result, promoted string) string {
	if !r.Completed() {
		// A failed run may go on to its end (spec.failedLoops: continue),
		// and an interrupted one is resumed (a retried Job's pod): it has
		// not stopped yet.
		return ""
	}
	switch i := slices.IndexFunc(r.Tasks, func(t experiment.TaskResult) bool { return t.State == experiment.TaskFailed }); {
	case r.Stopped != "":
		return r.Stopped
	case i >= 0:
		stopped := fmt.Sprintf("task %d (%s) failed", i, r.Tasks[i].Task)
		if r.Tasks[i].Error != "" {
			stopped += ": " + r.Tasks[i].Error
		}
		return stopped
	case promoted != "":
		return "promoted " + promoted
	case r.Loops > 0 && r.Loop >= r.Loops:
		return fmt.Sprintf("all %d loops ran", r.Loops)
	}
	return fmt.Sprintf("ended after loop %d of %d", r.Loop, r.Loops)
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
			gv.Interrupted = last.Interrupted
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
