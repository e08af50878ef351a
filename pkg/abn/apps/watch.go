package apps

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	discoveryinformers "k8s.io/client-go/informers/discovery/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/iter8-tools/iter8/pkg/kube"
	"github.com/iter8-tools/iter8/pkg/route"
)

// AnnotationHeader on a release's route names the request header of its
// per-version match rules (each matches the header equal to the version's
// name); it becomes App.Header.
const AnnotationHeader = "iter8.tools/abn-header"

// routeKinds are the route resources a release may render, in the order
// `release status` looks for an app's route: an HTTPRoute wins over a
// VirtualService of the same name.
var routeKinds = []struct {
	kind string
	gvr  schema.GroupVersionResource
}{
	{route.KindHTTPRoute, schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}},
	{route.KindVirtualService, schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}},
}

// Index names of the informers' indexers.
const (
	// byApp indexes an object by "<namespace>/<iter8.tools/app label>".
	byApp = "iter8.tools/app"
	// byService indexes an EndpointSlice by "<namespace>/<its Service>".
	byService = discoveryv1.LabelServiceName
)

// Watcher is a Source that watches the cluster: each app's route (HTTPRoute,
// or VirtualService where Istio's CRD is installed) and its versions'
// Deployments, Services and EndpointSlices, through shared informers. On any
// change it recomputes the apps concerned into a new immutable map and swaps
// it in atomically, so that App is a lock-free map read.
//
// An app is the route labelled iter8.tools/app=<app> and named <app> (as the
// release chart renders it; `release status` finds it by that name). Its
// versions are the route's backends, in order, with their weights; a
// version's name is its Service's iter8.tools/version label, else the
// Service's name without the "<app>-" prefix, else the Service's name. A
// version is Ready when kube.Readiness says ready; unknown counts as not
// ready. A route that fails to parse leaves its app out, logged once per
// change of the route.
//
// Objects are attributed to an app by their iter8.tools/app label, which the
// chart sets on the route, the Deployments and the Services, and which the
// EndpointSlice controller copies from a Service to its slices. A backend
// Service without the label counts as missing.
//
// RBAC: in each watched namespace (a ClusterRole when Namespaces is empty),
// list and watch on
//   - httproutes in API group gateway.networking.k8s.io,
//   - virtualservices in API group networking.istio.io (when its CRD exists),
//   - deployments in API group apps,
//   - services in the core API group,
//   - endpointslices in API group discovery.k8s.io;
//
// and the discovery endpoints (/api, /apis/*), which the default
// system:discovery ClusterRole grants every authenticated user.
type Watcher struct {
	// Logger receives a line per route kind skipped because its CRD is not
	// installed, per route that fails to parse and per failed watch; nil
	// means slog.Default().
	Logger *slog.Logger

	client     kubernetes.Interface
	dynamic    dynamic.Interface
	namespaces []string

	apps    atomic.Pointer[map[appKey]App]
	started atomic.Bool
	synced  atomic.Bool

	// sets holds one set of informers per watched namespace, keyed by it
	// ("" for all namespaces); written by Start only.
	sets map[string]*informerSet

	mu sync.Mutex
	// dirty are the apps to recompute; syncedAll is set once every
	// informer's initial list has reached the handlers, so that the batch
	// that takes it makes the map complete.
	dirty     map[appKey]struct{}
	syncedAll bool
	wake      chan struct{}

	// logged holds, per app, the route version whose parse failure was
	// logged; only the worker goroutine touches it.
	logged map[appKey]string
	// computes counts recomputations of an app, for tests to see that one
	// happened.
	computes atomic.Int64
}

// appKey names an app. A struct rather than "namespace/name" so that a
// lookup builds no string.
type appKey struct{ namespace, name string }

// informerSet are the informers of one namespace (or of all).
type informerSet struct {
	routes                        []routeInformer
	deployments, services, slices cache.SharedIndexInformer
}

type routeInformer struct {
	kind     string
	informer cache.SharedIndexInformer
}

// NewWatcher returns a Watcher of the given namespaces (none: all
// namespaces). Start starts it.
func NewWatcher(client kubernetes.Interface, dyn dynamic.Interface, namespaces ...string) *Watcher {
	w := &Watcher{
		client:     client,
		dynamic:    dyn,
		namespaces: slices.Clone(namespaces),
		dirty:      map[appKey]struct{}{},
		wake:       make(chan struct{}, 1),
		logged:     map[appKey]string{},
	}
	w.apps.Store(&map[appKey]App{})
	return w
}

// App implements Source. The returned App shares its Versions with the
// watcher's map: callers must not modify them.
func (w *Watcher) App(namespace, name string) (App, bool) {
	a, ok := (*w.apps.Load())[appKey{namespace, name}]
	return a, ok
}

// Synced implements Source: true once every informer has listed its objects
// and the apps they make are in the map; false again after ctx of Start is
// done, since the map then goes stale.
func (w *Watcher) Synced() bool { return w.synced.Load() }

// Start checks once which route kinds the cluster serves, starts the
// informers and returns; they run until ctx is done. Synced says when the
// first lists are in.
func (w *Watcher) Start(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("start watcher: already started")
	}
	if w.Logger == nil {
		w.Logger = slog.Default()
	}
	kinds, err := w.servedRouteKinds()
	if err != nil {
		return fmt.Errorf("start watcher: %w", err)
	}
	namespaces := w.namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	w.sets = map[string]*informerSet{}
	var all []cache.SharedIndexInformer
	var regs []cache.InformerSynced
	for _, ns := range namespaces {
		if _, dup := w.sets[ns]; dup {
			continue
		}
		set, infs := w.newInformerSet(ns, kinds)
		w.sets[ns] = set
		for _, inf := range infs {
			reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
				AddFunc:    func(obj any) { w.touch(obj) },
				UpdateFunc: func(oldObj, newObj any) { w.touch(oldObj, newObj) },
				DeleteFunc: func(obj any) { w.touch(obj) },
			})
			if err != nil {
				return fmt.Errorf("start watcher: add event handler: %w", err)
			}
			regs = append(regs, reg.HasSynced)
			all = append(all, inf)
		}
	}
	go w.run(ctx)
	for _, inf := range all {
		go inf.RunWithContext(ctx)
	}
	go func() {
		// A registration has synced once the initial list's events have
		// been delivered to its handler, so every app then is dirty.
		if cache.WaitForCacheSync(ctx.Done(), regs...) {
			w.mu.Lock()
			w.syncedAll = true
			w.mu.Unlock()
			w.signal()
		}
	}()
	return nil
}

// servedRouteKinds returns the route kinds whose resources the API server
// serves, logging each that it does not: Istio's CRD, in particular, is
// often not installed, and a watch on it would fail for ever.
func (w *Watcher) servedRouteKinds() ([]int, error) {
	var out []int
	for i, rk := range routeKinds {
		gv := rk.gvr.GroupVersion().String()
		list, err := w.client.Discovery().ServerResourcesForGroupVersion(gv)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("discover %s: %w", gv, err)
		default:
			if slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == rk.gvr.Resource }) {
				out = append(out, i)
				continue
			}
		}
		w.Logger.Info("abn apps: not watching "+rk.kind+"s: the API server does not serve them (CRD not installed)",
			"resource", rk.gvr.Resource+"."+rk.gvr.Group, "version", rk.gvr.Version)
	}
	return out, nil
}

// newInformerSet builds the informers of namespace ns. Every one selects
// objects with the iter8.tools/app label, so that a cluster's other objects
// never reach memory.
func (w *Watcher) newInformerSet(ns string, kinds []int) (*informerSet, []cache.SharedIndexInformer) {
	hasApp := func(o *metav1.ListOptions) { o.LabelSelector = route.LabelApp }
	appIndex := cache.Indexers{byApp: indexByApp}
	set := &informerSet{
		deployments: appsinformers.NewFilteredDeploymentInformer(w.client, ns, 0, appIndex, hasApp),
		services:    coreinformers.NewFilteredServiceInformer(w.client, ns, 0, appIndex, hasApp),
		// A slice is keyed by its Service's name label; the app label,
		// which the EndpointSlice controller (and test/node's harness)
		// copies from the Service, keeps other apps' slices out.
		slices: discoveryinformers.NewFilteredEndpointSliceInformer(w.client, ns, 0,
			cache.Indexers{byService: indexByService}, func(o *metav1.ListOptions) {
				o.LabelSelector = route.LabelApp + "," + discoveryv1.LabelServiceName
			}),
	}
	infs := []cache.SharedIndexInformer{set.deployments, set.services, set.slices}
	for _, i := range kinds {
		rk := routeKinds[i]
		inf := dynamicinformer.NewFilteredDynamicInformer(w.dynamic, rk.gvr, ns, 0, appIndex, hasApp).Informer()
		set.routes = append(set.routes, routeInformer{kind: rk.kind, informer: inf})
		infs = append(infs, inf)
	}
	for _, inf := range infs {
		// managedFields are most of an object's size and never read here.
		_ = inf.SetTransform(func(obj any) (any, error) {
			if m, ok := obj.(metav1.Object); ok {
				m.SetManagedFields(nil)
			}
			return obj, nil
		})
		_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, r *cache.Reflector, err error) {
			// Forbidden (missing RBAC) would otherwise only reach klog.
			w.Logger.Warn("abn apps: watch failed", "watch", r.TypeDescription(), "error", err)
		})
	}
	return set, infs
}

func indexByApp(obj any) ([]string, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, nil
	}
	app, ok := m.GetLabels()[route.LabelApp]
	if !ok {
		return nil, nil
	}
	return []string{m.GetNamespace() + "/" + app}, nil
}

func indexByService(obj any) ([]string, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, nil
	}
	svc, ok := m.GetLabels()[discoveryv1.LabelServiceName]
	if !ok {
		return nil, nil
	}
	return []string{m.GetNamespace() + "/" + svc}, nil
}

// touch marks the apps of objs (an object before and after a change, whose
// label may have changed) for recomputation.
func (w *Watcher) touch(objs ...any) {
	w.mu.Lock()
	for _, obj := range objs {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		m, ok := obj.(metav1.Object)
		if !ok {
			continue
		}
		if app, ok := m.GetLabels()[route.LabelApp]; ok {
			w.dirty[appKey{m.GetNamespace(), app}] = struct{}{}
		}
	}
	w.mu.Unlock()
	w.signal()
}

func (w *Watcher) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run recomputes dirty apps until ctx is done. One goroutine writes the map,
// so no swap loses another's; it takes every pending app at once, so that a
// burst of events (the initial lists) copies the map once, not per event.
func (w *Watcher) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			w.synced.Store(false)
			return
		case <-w.wake:
		}
		w.mu.Lock()
		dirty, synced := w.dirty, w.syncedAll
		w.dirty = map[appKey]struct{}{}
		w.mu.Unlock()
		if len(dirty) > 0 {
			next := maps.Clone(*w.apps.Load())
			for k := range dirty {
				if a, ok := w.compute(k); ok {
					next[k] = a
				} else {
					delete(next, k)
				}
			}
			w.apps.Store(&next)
		}
		if synced && ctx.Err() == nil {
			w.synced.Store(true)
		}
	}
}

// compute builds app k from the informers' stores, or says it has none.
func (w *Watcher) compute(k appKey) (App, bool) {
	w.computes.Add(1)
	set := w.sets[k.namespace]
	if set == nil {
		set = w.sets[metav1.NamespaceAll]
	}
	if set == nil {
		return App{}, false
	}
	index := k.namespace + "/" + k.name
	u := findRoute(set, index, k.name)
	if u == nil {
		delete(w.logged, k)
		return App{}, false
	}
	r, err := route.Parse(u)
	if err != nil {
		// Recomputation follows Deployment and EndpointSlice changes too;
		// log a broken route once per version of it, not per event.
		seen := u.GetKind() + "/" + u.GetName() + "@" + u.GetResourceVersion()
		if w.logged[k] != seen {
			w.logged[k] = seen
			w.Logger.Error("abn apps: app left out: its route does not parse",
				"namespace", k.namespace, "app", k.name, "kind", u.GetKind(), "error", err)
		}
		return App{}, false
	}
	delete(w.logged, k)

	deployments := map[string]*appsv1.Deployment{}
	objs, _ := set.deployments.GetIndexer().ByIndex(byApp, index)
	// In name order, the last Deployment of a version wins, as in
	// `release status` (whose list comes in name order).
	slices.SortFunc(objs, func(a, b any) int {
		return strings.Compare(a.(*appsv1.Deployment).Name, b.(*appsv1.Deployment).Name)
	})
	for _, o := range objs {
		d := o.(*appsv1.Deployment)
		if v := d.Labels[route.LabelVersion]; v != "" {
			deployments[v] = d
		}
	}
	serviceVersion := map[string]string{}
	objs, _ = set.services.GetIndexer().ByIndex(byApp, index)
	for _, o := range objs {
		s := o.(*corev1.Service)
		if v := s.Labels[route.LabelVersion]; v != "" {
			serviceVersion[s.Name] = v
		}
	}

	a := App{Namespace: k.namespace, Name: k.name, Header: u.GetAnnotations()[AnnotationHeader], Versions: make([]Version, 0, len(r.Backends))}
	for _, b := range r.Backends {
		name := versionOf(serviceVersion, k.name, b.Name)
		_, serviceExists, _ := set.services.GetIndexer().GetByKey(k.namespace + "/" + b.Name)
		var eps []discoveryv1.EndpointSlice
		if serviceExists {
			objs, _ := set.slices.GetIndexer().ByIndex(byService, k.namespace+"/"+b.Name)
			for _, o := range objs {
				eps = append(eps, *o.(*discoveryv1.EndpointSlice))
			}
		}
		rd := kube.Readiness(name, deployments[name], b.Name, serviceExists, eps)
		v := Version{Name: name, Weight: b.Weight, Ready: rd.State == kube.StateReady}
		if a.Header != "" {
			v.HeaderValue = headerValue(b.Matches, a.Header)
		}
		a.Versions = append(a.Versions, v)
	}
	return a, true
}

// headerValue returns the value of header in the first match set that has
// it, or "". Header names compare as HTTP's do, case-insensitively, since
// the annotation and the route's matches are written separately.
func headerValue(matches []map[string]string, header string) string {
	for _, m := range matches {
		for h, v := range m {
			if strings.EqualFold(h, header) {
				return v
			}
		}
	}
	return ""
}

// findRoute returns the route of app (index "<namespace>/<app>") named app,
// of the first kind that has one, or nil.
func findRoute(set *informerSet, index, app string) *unstructured.Unstructured {
	for _, ri := range set.routes {
		objs, _ := ri.informer.GetIndexer().ByIndex(byApp, index)
		for _, o := range objs {
			if u, ok := o.(*unstructured.Unstructured); ok && u.GetName() == app {
				return u
			}
		}
	}
	return nil
}

// versionOf names the version a backend Service serves, by the same rule as
// `release status`.
func versionOf(serviceVersion map[string]string, app, service string) string {
	if v, ok := serviceVersion[service]; ok {
		return v
	}
	if v, ok := strings.CutPrefix(service, app+"-"); ok && v != "" {
		return v
	}
	return service
}

var _ Source = (*Watcher)(nil)
