package node

// With Config.Deployments the harness also plays, for the namespaces it
// watches:
//
//   - the Deployment controller: for each Deployment the ReplicaSet
//     <deployment>-<pod-template-hash>, owned by it, with the
//     pod-template-hash label on the ReplicaSet, its selector and template;
//     a rolling update scales the new ReplicaSet to the full count at once
//     (a 100% surge) and the old ones down as far as maxUnavailable allows
//     given the new ReplicaSet's available Pods; Recreate scales the old ones
//     to 0 first; then the status Helm's --wait and kstatus read
//     (observedGeneration, replicas, updated, ready, available, unavailable,
//     conditions Available and Progressing);
//   - the ReplicaSet controller: creates Pods from the template (named
//     <replicaset>-<5 random characters> by the API server, so admission and
//     Pod Security are real), deletes extra ones (unready and newest first),
//     records FailedCreate and the ReplicaFailure condition when the API
//     server refuses a Pod, and writes the ReplicaSet's status;
//   - the kubelet of those Pods, without running their containers (except
//     for the Pods that Config.RunDeploymentPods chooses: see pods.go): it marks
//     them Running and Ready with a podIP from 10.244.0.0/16 (or
//     Config.PodAddress) and hostIP NodeIP, or Running and not Ready while
//     HoldUnready holds their Deployment; it finishes the deletion of a Pod
//     marked for deletion, as there is no kubelet to confirm it (a Pod that
//     it runs is bound to NodeName, so that its deletion waits for its
//     container to stop: see pods.go); Terminating Pods count as
//     terminatingReplicas only, and Recreate waits for them to go;
//   - the EndpointSlice controller: for every Service with a selector, slices
//     (managed-by ManagedBy, owned by the Service) listing the matching Pods
//     that have an address (loopback ones, such as Job Pods', are left out),
//     ready as the Pod is (Terminating ones serving as the Pod is ready,
//     terminating and not ready), with the Service's ports resolved against each
//     Pod's containers (one slice per distinct port set, as upstream);
//   - the garbage collector, which the test bed lacks: ReplicaSets whose
//     Deployment, Pods whose ReplicaSet and slices whose Service are gone are
//     deleted, whatever propagation policy the owner was deleted with;
//   - the pvc-protection controller: a deleted PersistentVolumeClaim that no
//     Pod uses loses its PVCProtection finalizer (releaseClaims).
//
// It does not: honour minReadySeconds, progressDeadlineSeconds, paused,
// revisionHistoryLimit (old ReplicaSets stay, at 0), hash collisions
// (collisionCount), orphan or foreground deletion, IPv6, or the 100
// endpoints per slice limit; it binds only the Pods it runs, to a node
// NodeName of which there is no Node object (the faked Pods' spec.nodeName
// stays empty, so that they go at once when deleted), and adopts no
// orphaned Pod or ReplicaSet.
//
// Every change of a watched object queues its namespace, and one worker
// brings the whole namespace to the wanted state from fresh reads of the API
// server (not from the informers' caches, which lag behind the harness's own
// writes); a failure, such as a conflict on a status write, queues the
// namespace again with backoff, so that it is retried from fresh reads.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
)

const (
	// ManagedBy is the endpointslice.kubernetes.io/managed-by label of the
	// EndpointSlices that the harness writes.
	ManagedBy = "node-harness"
	// NodeIP is the hostIP of the Pods whose kubelet the harness plays.
	NodeIP = "10.244.0.1"
	// NodeName is the spec.nodeName of the Pods that the harness runs
	// (Config.RunDeploymentPods), so that the API server deletes them
	// gracefully: they stay Terminating until their container has stopped.
	// No Node object exists; the API server does not require one.
	NodeName = "node-harness"
	// PVCProtection is the finalizer that the API server's admission puts
	// on every PersistentVolumeClaim; the harness removes it from a deleted
	// claim that no Pod uses, as the pvc-protection controller does.
	PVCProtection = "kubernetes.io/pvc-protection"

	hashLabel          = appsv1.DefaultDeploymentUniqueLabelKey // pod-template-hash
	revisionAnnotation = "deployment.kubernetes.io/revision"
)

// HoldUnready keeps the Pods of Deployment namespace/deployment (of all its
// ReplicaSets, old ones too) Running but not Ready while hold is true, so that the Deployment is not Available and
// its Services list no ready endpoint; false makes them Ready again. It may
// be called before the Deployment exists, and has effect only with
// Config.Deployments.
func (h *Harness) HoldUnready(namespace, deployment string, hold bool) {
	h.mu.Lock()
	if hold {
		h.held[namespace+"/"+deployment] = true
	} else {
		delete(h.held, namespace+"/"+deployment)
	}
	h.mu.Unlock()
	h.logf("node: Deployment %s/%s: hold unready %v", namespace, deployment, hold)
	if h.deploy != nil {
		h.deploy.queue.Add(namespace)
	}
}

func (h *Harness) isHeld(namespace, deployment string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held[namespace+"/"+deployment]
}

// deployController is the state of the controllers behind Config.Deployments.
type deployController struct {
	informers informers.SharedInformerFactory
	queue     workqueue.TypedRateLimitingInterface[string] // namespaces to sync
	lastIP    int                                          // only the worker uses it
}

// startDeployments starts the informers, whose events queue namespaces, and
// the worker that syncs them; startCtx bounds the informers' first sync.
func (h *Harness) startDeployments(ctx, startCtx context.Context) error {
	dc := &deployController{
		informers: informers.NewSharedInformerFactoryWithOptions(h.client, 0, informers.WithNamespace(h.cfg.Namespace)),
		queue:     workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
	}
	h.deploy = dc
	enqueue := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if m, err := meta.Accessor(obj); err == nil {
			dc.queue.Add(m.GetNamespace())
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}
	for _, inf := range []cache.SharedIndexInformer{
		dc.informers.Apps().V1().Deployments().Informer(),
		dc.informers.Apps().V1().ReplicaSets().Informer(),
		dc.informers.Core().V1().Pods().Informer(),
		dc.informers.Core().V1().Services().Informer(),
		dc.informers.Discovery().V1().EndpointSlices().Informer(),
		dc.informers.Core().V1().PersistentVolumeClaims().Informer(),
	} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("node harness: %w", err)
		}
	}
	dc.informers.Start(ctx.Done())
	for typ, ok := range dc.informers.WaitForCacheSync(startCtx.Done()) {
		if !ok {
			return fmt.Errorf("node harness: the %v informer did not sync", typ)
		}
	}
	h.wg.Add(2)
	go func() {
		defer h.wg.Done()
		<-ctx.Done()
		dc.queue.ShutDown()
	}()
	go func() {
		defer h.wg.Done()
		for {
			ns, quit := dc.queue.Get()
			if quit {
				return
			}
			if err := h.syncNamespace(ctx, ns); err != nil {
				if ctx.Err() == nil {
					h.logf("node: namespace %s: %v (will retry)", ns, err)
				}
				dc.queue.AddRateLimited(ns)
			} else {
				dc.queue.Forget(ns)
			}
			dc.queue.Done(ns)
		}
	}()
	return nil
}

// nsState is what one sync knows of a namespace: read at its start, then
// kept up to date with the sync's own writes.
type nsState struct {
	ns      string
	pods    map[string]*corev1.Pod
	rss     map[string]*appsv1.ReplicaSet
	deploys []*appsv1.Deployment
	svcs    []*corev1.Service
	slices  []*discoveryv1.EndpointSlice
}

// syncNamespace brings the Deployments, ReplicaSets, Pods and EndpointSlices
// of namespace ns to the state the controllers would.
func (h *Harness) syncNamespace(ctx context.Context, ns string) error {
	// Dependents are read before their owners, so that an owner missing from
	// the later read is really gone, not yet to come.
	st := &nsState{ns: ns, pods: map[string]*corev1.Pod{}, rss: map[string]*appsv1.ReplicaSet{}}
	sliceList, err := h.client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelManagedBy + "=" + ManagedBy})
	if err != nil {
		return fmt.Errorf("list EndpointSlices: %w", err)
	}
	pods, err := h.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list Pods: %w", err)
	}
	rss, err := h.client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list ReplicaSets: %w", err)
	}
	deploys, err := h.client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list Deployments: %w", err)
	}
	svcs, err := h.client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list Services: %w", err)
	}
	for i := range sliceList.Items {
		st.slices = append(st.slices, &sliceList.Items[i])
	}
	for i := range pods.Items {
		st.pods[pods.Items[i].Name] = &pods.Items[i]
	}
	for i := range rss.Items {
		st.rss[rss.Items[i].Name] = &rss.Items[i]
	}
	for i := range deploys.Items {
		st.deploys = append(st.deploys, &deploys.Items[i])
	}
	for i := range svcs.Items {
		st.svcs = append(st.svcs, &svcs.Items[i])
	}

	errs := []error{h.collectGarbage(ctx, st)}
	for _, d := range st.deploys {
		if err := h.syncDeployment(ctx, st, d); err != nil {
			errs = append(errs, fmt.Errorf("Deployment %s/%s: %w", ns, d.Name, err))
		}
	}
	for _, name := range sortedKeys(st.rss) {
		if err := h.syncReplicaSet(ctx, st, st.rss[name]); err != nil {
			errs = append(errs, fmt.Errorf("ReplicaSet %s/%s: %w", ns, name, err))
		}
	}
	for _, d := range st.deploys {
		if err := h.writeDeploymentStatus(ctx, st, d); err != nil {
			errs = append(errs, fmt.Errorf("Deployment %s/%s: %w", ns, d.Name, err))
		}
	}
	for _, svc := range st.svcs {
		if err := h.syncService(ctx, st, svc); err != nil {
			errs = append(errs, fmt.Errorf("Service %s/%s: %w", ns, svc.Name, err))
		}
	}
	h.reapRunners(ns, st.pods)
	if err := h.releaseClaims(ctx, st); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// releaseClaims plays the pvc-protection controller: a deleted claim that
// no Pod of the namespace uses (one not Succeeded or Failed, Terminating
// ones included, whether the harness runs it or fakes it, nor one whose
// container the harness is still stopping) loses the PVCProtection
// finalizer, so that it goes.
func (h *Harness) releaseClaims(ctx context.Context, st *nsState) error {
	claims, err := h.client.CoreV1().PersistentVolumeClaims(st.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list PersistentVolumeClaims: %w", err)
	}
	used := map[string]bool{}
	for _, p := range st.pods {
		// A run Pod's volumes are in use until its runner has cleaned up.
		if (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) && !h.stopping(p.UID) {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				used[v.PersistentVolumeClaim.ClaimName] = true
			}
		}
	}
	var errs []error
	for _, c := range claims.Items {
		if c.DeletionTimestamp == nil || !slices.Contains(c.Finalizers, PVCProtection) || used[c.Name] {
			continue
		}
		uid := c.UID
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := h.client.CoreV1().PersistentVolumeClaims(st.ns).Get(ctx, c.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if cur.UID != uid || !slices.Contains(cur.Finalizers, PVCProtection) {
				return nil
			}
			cur.Finalizers = slices.DeleteFunc(cur.Finalizers, func(f string) bool { return f == PVCProtection })
			_, err = h.client.CoreV1().PersistentVolumeClaims(st.ns).Update(ctx, cur, metav1.UpdateOptions{})
			return err
		})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("PersistentVolumeClaim %s/%s: remove finalizer %s: %w", st.ns, c.Name, PVCProtection, err))
			continue
		}
		h.logf("node: PersistentVolumeClaim %s/%s: no Pod uses it: finalizer %s removed", st.ns, c.Name, PVCProtection)
	}
	return errors.Join(errs...)
}

// collectGarbage deletes, in place of the garbage collector, ReplicaSets of
// deleted Deployments, Pods of deleted ReplicaSets (gracefully: a run Pod
// stays Terminating until its container stops) and EndpointSlices of
// deleted Services; it also finishes the deletion of ReplicaSets' Pods
// marked for deletion whose container the harness does not run or has
// stopped, as their kubelet would.
func (h *Harness) collectGarbage(ctx context.Context, st *nsState) error {
	var errs []error
	uids := map[types.UID]bool{}
	for _, d := range st.deploys {
		uids[d.UID] = true
	}
	for _, name := range sortedKeys(st.rss) {
		rs := st.rss[name]
		if ref := metav1.GetControllerOf(rs); ref != nil && ref.Kind == "Deployment" && !uids[ref.UID] {
			if err := h.deleteObject(ctx, "ReplicaSet", st.ns, rs.Name, rs.UID); err != nil {
				errs = append(errs, err)
				continue
			}
			h.logf("node: ReplicaSet %s/%s deleted: its Deployment %s is gone", st.ns, rs.Name, ref.Name)
			delete(st.rss, name)
		}
	}
	for _, rs := range st.rss {
		uids[rs.UID] = true
	}
	for _, name := range sortedKeys(st.pods) {
		pod := st.pods[name]
		ref := metav1.GetControllerOf(pod)
		if ref == nil || ref.Kind != "ReplicaSet" {
			continue
		}
		switch {
		case pod.DeletionTimestamp != nil:
			if h.stopping(pod.UID) {
				continue // its runner deletes it once the container has stopped
			}
			if err := h.deletePod(ctx, pod, ptr(int64(0))); err != nil {
				errs = append(errs, err)
				continue
			}
			h.logf("node: Pod %s/%s deleted: it was marked for deletion", st.ns, pod.Name)
			delete(st.pods, name)
		case !uids[ref.UID]:
			if err := h.deletePodGracefully(ctx, st, pod); err != nil {
				errs = append(errs, err)
				continue
			}
			h.logf("node: Pod %s/%s deleted: its ReplicaSet %s is gone", st.ns, pod.Name, ref.Name)
		}
	}
	for _, svc := range st.svcs {
		uids[svc.UID] = true
	}
	st.slices = slices.DeleteFunc(st.slices, func(es *discoveryv1.EndpointSlice) bool {
		ref := metav1.GetControllerOf(es)
		if ref == nil || ref.Kind != "Service" || uids[ref.UID] {
			return false
		}
		if err := h.deleteObject(ctx, "EndpointSlice", st.ns, es.Name, es.UID); err != nil {
			errs = append(errs, err)
			return false
		}
		h.logf("node: EndpointSlice %s/%s deleted: its Service %s is gone", st.ns, es.Name, ref.Name)
		return true
	})
	return errors.Join(errs...)
}

// deletePodGracefully deletes the Pod as a controller does, with its own
// grace period: a Pod bound to NodeName (one the harness runs) becomes
// Terminating, and st keeps it so, for its container to be stopped; any
// other goes at once, as the API server deletes unbound Pods.
func (h *Harness) deletePodGracefully(ctx context.Context, st *nsState, pod *corev1.Pod) error {
	if err := h.deletePod(ctx, pod, nil); err != nil {
		return err
	}
	if pod.Spec.NodeName == "" {
		delete(st.pods, pod.Name)
		return nil
	}
	// What the API server has made of it, as the next read will show.
	cp := pod.DeepCopy()
	now := metav1.Now()
	cp.DeletionTimestamp = &now
	cp.DeletionGracePeriodSeconds = pod.Spec.TerminationGracePeriodSeconds
	if cp.DeletionGracePeriodSeconds == nil {
		cp.DeletionGracePeriodSeconds = ptr(int64(corev1.DefaultTerminationGracePeriodSeconds))
	}
	st.pods[pod.Name] = cp
	return nil
}

// deletePod deletes the Pod if it still has its UID, with the given grace
// period (nil: the Pod's own).
func (h *Harness) deletePod(ctx context.Context, pod *corev1.Pod, grace *int64) error {
	err := h.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &pod.UID}, GracePeriodSeconds: grace})
	// Gone already, or replaced by a new object of the same name.
	if err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return fmt.Errorf("delete Pod %s/%s: %w", pod.Namespace, pod.Name, err)
}

// deleteObject deletes the object of kind namespace/name if it still has
// the given UID.
func (h *Harness) deleteObject(ctx context.Context, kind, namespace, name string, uid types.UID) error {
	opts := metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &uid},
		PropagationPolicy: ptr(metav1.DeletePropagationBackground),
	}
	var err error
	switch kind {
	case "ReplicaSet":
		err = h.client.AppsV1().ReplicaSets(namespace).Delete(ctx, name, opts)
	case "EndpointSlice":
		err = h.client.DiscoveryV1().EndpointSlices(namespace).Delete(ctx, name, opts)
	default:
		return fmt.Errorf("delete %s %s/%s: unknown kind", kind, namespace, name)
	}
	// Gone already, or replaced by a new object of the same name.
	if err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return fmt.Errorf("delete %s %s/%s: %w", kind, namespace, name, err)
}

// syncDeployment creates or scales the Deployment's new ReplicaSet and
// scales its old ones down.
func (h *Harness) syncDeployment(ctx context.Context, st *nsState, d *appsv1.Deployment) error {
	if d.DeletionTimestamp != nil {
		return nil
	}
	hash, err := TemplateHash(&d.Spec.Template)
	if err != nil {
		return err
	}
	newName := d.Name + "-" + hash
	newRS, olds := st.replicaSetsOf(d)
	if newRS == nil {
		if rs, ok := st.rss[newName]; ok {
			return fmt.Errorf("ReplicaSet %s exists and is not the Deployment's (a hash collision, which the harness does not resolve)", rs.Name)
		}
	}
	maxOldRevision := 0
	oldActive := int32(0)
	for _, rs := range olds {
		maxOldRevision = max(maxOldRevision, revision(rs))
		oldActive += rs.Status.Replicas
	}
	desired := replicas(d.Spec.Replicas)
	recreate := d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType
	newTarget := desired
	if recreate && (oldActive > 0 || st.podsRunning(olds)) {
		// Recreate: the new Pods wait until the old ones are gone, those
		// Terminating included.
		newTarget = 0
	}

	switch {
	case newRS == nil:
		rs := newReplicaSet(d, hash, newTarget, maxOldRevision+1)
		created, err := h.client.AppsV1().ReplicaSets(d.Namespace).Create(ctx, rs, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create ReplicaSet %s: %w", rs.Name, err)
		}
		h.logf("node: Deployment %s/%s: ReplicaSet %s created with %d replicas", d.Namespace, d.Name, created.Name, newTarget)
		st.rss[created.Name] = created
		newRS = created
	case replicas(newRS.Spec.Replicas) != newTarget || revision(newRS) <= maxOldRevision:
		rs := newRS.DeepCopy()
		rs.Spec.Replicas = ptr(newTarget)
		if revision(rs) <= maxOldRevision {
			setAnnotation(&rs.ObjectMeta, revisionAnnotation, strconv.Itoa(maxOldRevision+1))
		}
		updated, err := h.client.AppsV1().ReplicaSets(d.Namespace).Update(ctx, rs, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("scale ReplicaSet %s: %w", rs.Name, err)
		}
		h.logf("node: Deployment %s/%s: ReplicaSet %s scaled to %d", d.Namespace, d.Name, rs.Name, newTarget)
		st.rss[updated.Name] = updated
		newRS = updated
	}

	// The old ReplicaSets keep as many Pods as the Deployment needs to stay
	// available (replicas - maxUnavailable) beyond the new one's available
	// Pods; the newest old ones keep theirs longest.
	keep := int32(0)
	if !recreate {
		keep = max(0, desired-maxUnavailable(d)-newRS.Status.AvailableReplicas)
	}
	slices.SortFunc(olds, func(a, b *appsv1.ReplicaSet) int { return revision(b) - revision(a) })
	for _, rs := range olds {
		target := min(replicas(rs.Spec.Replicas), keep)
		keep -= target
		if target == replicas(rs.Spec.Replicas) {
			continue
		}
		scaled := rs.DeepCopy()
		scaled.Spec.Replicas = ptr(target)
		updated, err := h.client.AppsV1().ReplicaSets(d.Namespace).Update(ctx, scaled, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("scale ReplicaSet %s: %w", rs.Name, err)
		}
		h.logf("node: Deployment %s/%s: old ReplicaSet %s scaled to %d", d.Namespace, d.Name, rs.Name, target)
		st.rss[updated.Name] = updated
	}
	return nil
}

// podsRunning says whether a Pod of the ReplicaSets, Terminating ones
// included, is neither Succeeded nor Failed.
func (st *nsState) podsRunning(rss []*appsv1.ReplicaSet) bool {
	uids := map[types.UID]bool{}
	for _, rs := range rss {
		uids[rs.UID] = true
	}
	for _, p := range st.pods {
		if ref := metav1.GetControllerOf(p); ref != nil && uids[ref.UID] &&
			p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			return true
		}
	}
	return false
}

// replicaSetsOf returns the Deployment's ReplicaSet for its current
// template (nil if none yet) and its others.
func (st *nsState) replicaSetsOf(d *appsv1.Deployment) (current *appsv1.ReplicaSet, olds []*appsv1.ReplicaSet) {
	hash, err := TemplateHash(&d.Spec.Template)
	if err != nil {
		return nil, nil
	}
	for _, name := range sortedKeys(st.rss) {
		rs := st.rss[name]
		if ref := metav1.GetControllerOf(rs); ref == nil || ref.UID != d.UID || rs.DeletionTimestamp != nil {
			continue
		}
		if rs.Name == d.Name+"-"+hash {
			current = rs
		} else {
			olds = append(olds, rs)
		}
	}
	return current, olds
}

// newReplicaSet is the ReplicaSet for the Deployment's template, as the
// Deployment controller makes it.
func newReplicaSet(d *appsv1.Deployment, hash string, n int32, rev int) *appsv1.ReplicaSet {
	tmpl := d.Spec.Template.DeepCopy()
	tmpl.Labels = withLabel(tmpl.Labels, hashLabel, hash)
	sel := d.Spec.Selector.DeepCopy()
	sel.MatchLabels = withLabel(sel.MatchLabels, hashLabel, hash)
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:        d.Name + "-" + hash,
			Namespace:   d.Namespace,
			Labels:      withLabel(d.Spec.Template.Labels, hashLabel, hash),
			Annotations: map[string]string{revisionAnnotation: strconv.Itoa(rev)},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID,
				Controller: ptr(true), BlockOwnerDeletion: ptr(true),
			}},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        ptr(n),
			MinReadySeconds: d.Spec.MinReadySeconds,
			Selector:        sel,
			Template:        *tmpl,
		},
	}
}

// TemplateHash is the pod-template-hash of a Deployment's template: the
// FNV-1a hash of its JSON, written in the alphabet of Kubernetes' own hashes
// (digits and consonants, so that it never spells a word). It is stable for
// a template but not the value kube-controller-manager would compute, which
// hashes Go's printed form of the structure.
func TemplateHash(tmpl *corev1.PodTemplateSpec) (string, error) {
	data, err := json.Marshal(tmpl)
	if err != nil {
		return "", fmt.Errorf("hash pod template: %w", err)
	}
	f := fnv.New32a()
	_, _ = f.Write(data)
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	var b []byte
	for v := f.Sum32(); ; v /= uint32(len(alphabet)) {
		b = append(b, alphabet[v%uint32(len(alphabet))])
		if v < uint32(len(alphabet)) {
			break
		}
	}
	return string(b), nil
}

// syncReplicaSet creates or deletes Pods until the ReplicaSet has its
// replicas, plays their kubelet and writes the ReplicaSet's status.
func (h *Harness) syncReplicaSet(ctx context.Context, st *nsState, rs *appsv1.ReplicaSet) error {
	if rs.DeletionTimestamp != nil {
		return nil
	}
	deployment := ""
	if ref := metav1.GetControllerOf(rs); ref != nil && ref.Kind == "Deployment" {
		deployment = ref.Name
	}
	ready := !h.isHeld(rs.Namespace, deployment)
	var active []*corev1.Pod
	for _, name := range sortedKeys(st.pods) {
		pod := st.pods[name]
		if ref := metav1.GetControllerOf(pod); ref != nil && ref.UID == rs.UID && pod.DeletionTimestamp == nil &&
			pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			active = append(active, pod)
		}
	}
	var errs []error
	desired := int(replicas(rs.Spec.Replicas))
	var createErr error
	for len(active) < desired {
		pod, err := h.createReplicaSetPod(ctx, rs)
		if err != nil {
			createErr = err
			h.replicaSetEvent(ctx, rs, corev1.EventTypeWarning, "FailedCreate", fmt.Sprintf("Error creating: %v", err))
			errs = append(errs, err)
			break
		}
		h.logf("node: ReplicaSet %s/%s: Pod %s created", rs.Namespace, rs.Name, pod.Name)
		st.pods[pod.Name] = pod
		active = append(active, pod)
	}
	if len(active) > desired {
		// As the ReplicaSet controller: unready Pods first, then the newest.
		slices.SortStableFunc(active, func(a, b *corev1.Pod) int {
			if ra, rb := podReady(a), podReady(b); ra != rb {
				if rb {
					return -1
				}
				return 1
			}
			return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
		})
		deleted := map[types.UID]bool{}
		for _, pod := range active[:len(active)-desired] {
			if err := h.deletePodGracefully(ctx, st, pod); err != nil {
				errs = append(errs, err)
				continue
			}
			h.logf("node: ReplicaSet %s/%s: Pod %s deleted", rs.Namespace, rs.Name, pod.Name)
			deleted[pod.UID] = true
		}
		active = slices.DeleteFunc(active, func(p *corev1.Pod) bool { return deleted[p.UID] })
	}
	for i, pod := range active {
		if h.runsPod(pod) {
			h.ensureRunner(ctx, pod, deployment)
			continue
		}
		updated, err := h.playKubelet(ctx, st, pod, ready)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		active[i] = updated
		st.pods[updated.Name] = updated
	}

	// As the ReplicaSet controller, Terminating Pods count only as such.
	status := appsv1.ReplicaSetStatus{
		Replicas:            int32(len(active)),
		ObservedGeneration:  rs.Generation,
		TerminatingReplicas: ptr(int32(0)),
	}
	for _, pod := range st.pods {
		if ref := metav1.GetControllerOf(pod); ref != nil && ref.UID == rs.UID && pod.DeletionTimestamp != nil &&
			pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			*status.TerminatingReplicas++
		}
	}
	tmplLabels := labels.SelectorFromSet(rs.Spec.Template.Labels)
	for _, pod := range active {
		if tmplLabels.Matches(labels.Set(pod.Labels)) {
			status.FullyLabeledReplicas++
		}
		if podReady(pod) {
			status.ReadyReplicas++
			status.AvailableReplicas++ // minReadySeconds is not honoured
		}
	}
	if createErr != nil {
		status.Conditions = []appsv1.ReplicaSetCondition{{
			Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate",
			Message: createErr.Error(), LastTransitionTime: metav1.Now(),
		}}
		for _, c := range rs.Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue && c.Message == createErr.Error() {
				status.Conditions[0].LastTransitionTime = c.LastTransitionTime
			}
		}
	}
	if !apiequality.Semantic.DeepEqual(rs.Status, status) {
		cp := rs.DeepCopy()
		cp.Status = status
		updated, err := h.client.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("update status: %w", err))
		} else {
			st.rss[updated.Name] = updated
		}
	}
	return errors.Join(errs...)
}

func (h *Harness) createReplicaSetPod(ctx context.Context, rs *appsv1.ReplicaSet) (*corev1.Pod, error) {
	tmpl := rs.Spec.Template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: rs.Name + "-",
			Namespace:    rs.Namespace,
			Labels:       tmpl.Labels,
			Annotations:  tmpl.Annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID,
				Controller: ptr(true), BlockOwnerDeletion: ptr(true),
			}},
		},
		Spec: tmpl.Spec,
	}
	if h.runsPod(pod) {
		// Bound, so that its deletion waits for its container to stop.
		pod.Spec.NodeName = NodeName
	}
	created, err := h.client.CoreV1().Pods(rs.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create Pod: %w", err)
	}
	return created, nil
}

func (h *Harness) replicaSetEvent(ctx context.Context, rs *appsv1.ReplicaSet, kind, reason, msg string) {
	now := metav1.Now()
	_, err := h.client.CoreV1().Events(rs.Namespace).Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: rs.Name + ".", Namespace: rs.Namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "ReplicaSet", APIVersion: "apps/v1", Namespace: rs.Namespace,
			Name: rs.Name, UID: rs.UID},
		Type: kind, Reason: reason, Message: msg, Source: corev1.EventSource{Component: "replicaset-controller"},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}, metav1.CreateOptions{})
	if err != nil {
		h.logf("node: event for ReplicaSet %s/%s: %v", rs.Namespace, rs.Name, err)
	}
}

// playKubelet marks the Pod Running, with an address, and Ready or not;
// its containers are not run.
func (h *Harness) playKubelet(ctx context.Context, st *nsState, pod *corev1.Pod, ready bool) (*corev1.Pod, error) {
	if pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != "" && podReady(pod) == ready &&
		len(pod.Status.ContainerStatuses) == len(pod.Spec.Containers) {
		return pod, nil
	}
	ip := pod.Status.PodIP
	if ip == "" && h.cfg.PodAddress != nil {
		ip = h.cfg.PodAddress(pod)
	}
	if ip == "" {
		var err error
		if ip, err = h.allocateIP(st); err != nil {
			return nil, err
		}
	}
	cur := pod
	var updated *corev1.Pod
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if cur == nil {
			var err error
			if cur, err = h.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		cp := cur.DeepCopy()
		setRunning(cp, ip, ready)
		var err error
		updated, err = h.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{})
		cur = nil
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("update status of Pod %s: %w", pod.Name, err)
	}
	h.logf("node: Pod %s/%s: Running at %s, ready %v", pod.Namespace, pod.Name, ip, ready)
	return updated, nil
}

// setRunning writes the status a kubelet writes for a Pod whose containers
// all started and are ready or not.
func setRunning(pod *corev1.Pod, ip string, ready bool) {
	now := metav1.Now()
	s := &pod.Status
	s.Phase = corev1.PodRunning
	if s.StartTime == nil {
		s.StartTime = &now
	}
	s.HostIP, s.HostIPs = NodeIP, []corev1.HostIP{{IP: NodeIP}}
	s.PodIP, s.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	msg := ""
	if !ready {
		msg = "containers with unready status (held unready by the node harness)"
	}
	setConditions(s, ready, msg, now)
	started := map[string]metav1.Time{}
	for _, cs := range s.ContainerStatuses {
		if cs.State.Running != nil {
			started[cs.Name] = cs.State.Running.StartedAt
		}
	}
	s.InitContainerStatuses = nil
	for _, c := range pod.Spec.InitContainers {
		s.InitContainerStatuses = append(s.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true, Started: ptr(false),
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", StartedAt: *s.StartTime, FinishedAt: *s.StartTime}},
		})
	}
	s.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		at, ok := started[c.Name]
		if !ok {
			at = now
		}
		s.ContainerStatuses = append(s.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: ready, Started: ptr(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at}},
		})
	}
}

// setConditions writes the conditions of a Pod whose containers all started
// and are ready or not (msg saying why not), keeping the transition times of
// those that did not change.
func setConditions(s *corev1.PodStatus, ready bool, msg string, now metav1.Time) {
	readiness := corev1.ConditionFalse
	if ready {
		readiness = corev1.ConditionTrue
	}
	want := []corev1.PodCondition{
		{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue},
		{Type: corev1.ContainersReady, Status: readiness},
		{Type: corev1.PodReady, Status: readiness},
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
	}
	for i := range want {
		want[i].LastTransitionTime = now
		if !ready && (want[i].Type == corev1.PodReady || want[i].Type == corev1.ContainersReady) {
			want[i].Reason = "ContainersNotReady"
			want[i].Message = msg
		}
		for _, c := range s.Conditions {
			if c.Type == want[i].Type && c.Status == want[i].Status {
				want[i].LastTransitionTime = c.LastTransitionTime
			}
		}
	}
	s.Conditions = want
}

// allocateIP returns the next address of 10.244.1.1-10.244.254.254 that no
// Pod of the namespace has; addresses are unique among the harness's Pods.
func (h *Harness) allocateIP(st *nsState) (string, error) {
	used := map[string]bool{}
	for _, p := range st.pods {
		used[p.Status.PodIP] = true
	}
	dc := h.deploy
	for range 254 * 254 {
		n := dc.lastIP % (254 * 254)
		dc.lastIP++
		ip := fmt.Sprintf("10.244.%d.%d", 1+n/254, 1+n%254)
		if !used[ip] {
			return ip, nil
		}
	}
	return "", errors.New("no free Pod address in 10.244.0.0/16")
}

// writeDeploymentStatus writes the Deployment's status from its
// ReplicaSets' as the Deployment controller computes it. The Deployment is
// the one read at the start of the sync, so that a conflict (its spec
// changed since) ends in a new sync rather than a status for a generation
// that was not synced.
func (h *Harness) writeDeploymentStatus(ctx context.Context, st *nsState, d *appsv1.Deployment) error {
	if d.DeletionTimestamp != nil {
		return nil
	}
	newRS, olds := st.replicaSetsOf(d)
	desired := replicas(d.Spec.Replicas)
	s := appsv1.DeploymentStatus{
		ObservedGeneration:  d.Generation,
		CollisionCount:      d.Status.CollisionCount,
		TerminatingReplicas: ptr(int32(0)),
	}
	total := int32(0) // the ReplicaSets' wanted replicas
	for _, rs := range append(olds, newRS) {
		if rs == nil {
			continue
		}
		total += replicas(rs.Spec.Replicas)
		s.Replicas += rs.Status.Replicas
		s.ReadyReplicas += rs.Status.ReadyReplicas
		s.AvailableReplicas += rs.Status.AvailableReplicas
		if rs.Status.TerminatingReplicas != nil {
			*s.TerminatingReplicas += *rs.Status.TerminatingReplicas
		}
	}
	if newRS != nil {
		s.UpdatedReplicas = newRS.Status.Replicas
	}
	s.UnavailableReplicas = max(0, total-s.AvailableReplicas)

	cond := func(t appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason, msg string) {
		now := metav1.Now()
		c := appsv1.DeploymentCondition{Type: t, Status: status, Reason: reason, Message: msg,
			LastUpdateTime: now, LastTransitionTime: now}
		for _, old := range d.Status.Conditions {
			if old.Type != t {
				continue
			}
			if old.Status == status {
				c.LastTransitionTime = old.LastTransitionTime
			}
			if old.Status == status && old.Reason == reason && old.Message == msg {
				c.LastUpdateTime = old.LastUpdateTime
			}
		}
		s.Conditions = append(s.Conditions, c)
	}
	if s.AvailableReplicas >= desired-maxUnavailable(d) {
		cond(appsv1.DeploymentAvailable, corev1.ConditionTrue, "MinimumReplicasAvailable", "Deployment has minimum availability.")
	} else {
		cond(appsv1.DeploymentAvailable, corev1.ConditionFalse, "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
	}
	if newRS != nil {
		if s.UpdatedReplicas == desired && s.Replicas == desired && s.AvailableReplicas == desired {
			cond(appsv1.DeploymentProgressing, corev1.ConditionTrue, "NewReplicaSetAvailable",
				fmt.Sprintf("ReplicaSet %q has successfully progressed.", newRS.Name))
		} else {
			cond(appsv1.DeploymentProgressing, corev1.ConditionTrue, "ReplicaSetUpdated",
				fmt.Sprintf("ReplicaSet %q is progressing.", newRS.Name))
		}
	}
	if apiequality.Semantic.DeepEqual(d.Status, s) {
		return nil
	}
	cp := d.DeepCopy()
	cp.Status = s
	if _, err := h.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	h.logf("node: Deployment %s/%s: generation %d: %d replicas, %d updated, %d ready, %d available",
		d.Namespace, d.Name, d.Generation, s.Replicas, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas)
	return nil
}

// maxUnavailable is how many of the Deployment's Pods may be unavailable
// while it counts as Available, as the Deployment controller resolves it.
func maxUnavailable(d *appsv1.Deployment) int32 {
	desired := replicas(d.Spec.Replicas)
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || desired == 0 {
		return 0
	}
	quarter := intstr.FromString("25%")
	surgeValue, unavailableValue := ru.MaxSurge, ru.MaxUnavailable
	if surgeValue == nil {
		surgeValue = &quarter
	}
	if unavailableValue == nil {
		unavailableValue = &quarter
	}
	surge, err1 := intstr.GetScaledValueFromIntOrPercent(surgeValue, int(desired), true)
	unavailable, err2 := intstr.GetScaledValueFromIntOrPercent(unavailableValue, int(desired), false)
	if err1 != nil || err2 != nil {
		return 0
	}
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return min(int32(unavailable), desired)
}

// syncService writes the EndpointSlices of a Service with a selector, and
// deletes them when it has none.
func (h *Harness) syncService(ctx context.Context, st *nsState, svc *corev1.Service) error {
	var existing []*discoveryv1.EndpointSlice
	for _, es := range st.slices {
		if ref := metav1.GetControllerOf(es); ref != nil && ref.UID == svc.UID {
			existing = append(existing, es)
		}
	}
	var errs []error
	if len(svc.Spec.Selector) == 0 {
		for _, es := range existing {
			errs = append(errs, h.deleteObject(ctx, "EndpointSlice", svc.Namespace, es.Name, es.UID))
		}
		return errors.Join(errs...)
	}

	// Endpoints grouped by their ports, which named target ports make
	// differ from Pod to Pod.
	groups := map[string]*discoveryv1.EndpointSlice{}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	for _, name := range sortedKeys(st.pods) {
		pod := st.pods[name]
		addr, err := netip.ParseAddr(pod.Status.PodIP)
		if !sel.Matches(labels.Set(pod.Labels)) || err != nil || !addr.Is4() ||
			addr.IsLoopback() || addr.IsLinkLocalUnicast() || addr.IsUnspecified() ||
			pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		ports := endpointPorts(svc, pod)
		key := portsKey(ports)
		if groups[key] == nil {
			groups[key] = &discoveryv1.EndpointSlice{Ports: ports, Endpoints: []discoveryv1.Endpoint{}}
		}
		// As the EndpointSlice controller: a Terminating Pod is listed,
		// serving as its readiness says, terminating and never ready
		// (unless the Service publishes unready addresses).
		serving := podReady(pod) || svc.Spec.PublishNotReadyAddresses
		terminating := pod.DeletionTimestamp != nil
		ready := svc.Spec.PublishNotReadyAddresses || (serving && !terminating)
		ep := discoveryv1.Endpoint{
			Addresses:  []string{addr.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(ready), Serving: ptr(serving), Terminating: ptr(terminating)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		}
		if pod.Spec.NodeName != "" {
			ep.NodeName = ptr(pod.Spec.NodeName)
		}
		groups[key].Endpoints = append(groups[key].Endpoints, ep)
	}
	if len(groups) == 0 {
		// As upstream, a Service without endpoints has one empty slice.
		groups[""] = &discoveryv1.EndpointSlice{Endpoints: []discoveryv1.Endpoint{}}
	}

	// Each group takes the existing slice with its ports, else any unused
	// one, else a new one; unused slices go.
	keys := sortedKeys(groups)
	assigned := map[string]*discoveryv1.EndpointSlice{}
	used := map[types.UID]bool{}
	for _, match := range []func(es *discoveryv1.EndpointSlice, key string) bool{
		func(es *discoveryv1.EndpointSlice, key string) bool { return portsKey(es.Ports) == key },
		func(*discoveryv1.EndpointSlice, string) bool { return true },
	} {
		for _, key := range keys {
			for _, es := range existing {
				if assigned[key] == nil && !used[es.UID] && match(es, key) {
					assigned[key], used[es.UID] = es, true
				}
			}
		}
	}
	sliceLabels := map[string]string{}
	for k, v := range svc.Labels {
		sliceLabels[k] = v
	}
	sliceLabels[discoveryv1.LabelServiceName] = svc.Name
	sliceLabels[discoveryv1.LabelManagedBy] = ManagedBy
	for _, key := range keys {
		want := groups[key]
		es := assigned[key]
		if es == nil {
			es = &discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{
					GenerateName: svc.Name + "-", Namespace: svc.Namespace, Labels: sliceLabels,
					OwnerReferences: []metav1.OwnerReference{{
						APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
						Controller: ptr(true), BlockOwnerDeletion: ptr(true),
					}},
				},
				AddressType: discoveryv1.AddressTypeIPv4, Endpoints: want.Endpoints, Ports: want.Ports,
			}
			created, err := h.client.DiscoveryV1().EndpointSlices(svc.Namespace).Create(ctx, es, metav1.CreateOptions{})
			if err != nil {
				errs = append(errs, fmt.Errorf("create EndpointSlice: %w", err))
				continue
			}
			h.logf("node: Service %s/%s: EndpointSlice %s created with %s", svc.Namespace, svc.Name, created.Name, describeEndpoints(want.Endpoints))
			st.slices = append(st.slices, created)
			continue
		}
		if apiequality.Semantic.DeepEqual(es.Endpoints, want.Endpoints) && apiequality.Semantic.DeepEqual(es.Ports, want.Ports) &&
			apiequality.Semantic.DeepEqual(es.Labels, sliceLabels) {
			continue
		}
		cp := es.DeepCopy()
		cp.Labels, cp.Endpoints, cp.Ports = sliceLabels, want.Endpoints, want.Ports
		if _, err := h.client.DiscoveryV1().EndpointSlices(svc.Namespace).Update(ctx, cp, metav1.UpdateOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("update EndpointSlice %s: %w", es.Name, err))
			continue
		}
		h.logf("node: Service %s/%s: EndpointSlice %s updated to %s", svc.Namespace, svc.Name, es.Name, describeEndpoints(want.Endpoints))
	}
	for _, es := range existing {
		if !used[es.UID] {
			errs = append(errs, h.deleteObject(ctx, "EndpointSlice", svc.Namespace, es.Name, es.UID))
		}
	}
	return errors.Join(errs...)
}

// endpointPorts are the Service's ports as the Pod serves them: a named
// target port is looked up in the Pod's containers, and left out when none
// has it.
func endpointPorts(svc *corev1.Service, pod *corev1.Pod) []discoveryv1.EndpointPort {
	var out []discoveryv1.EndpointPort
	for _, sp := range svc.Spec.Ports {
		protocol := sp.Protocol
		if protocol == "" {
			protocol = corev1.ProtocolTCP
		}
		var port int32
		switch {
		case sp.TargetPort.Type == intstr.String && sp.TargetPort.StrVal != "":
			port = namedPort(pod, sp.TargetPort.StrVal, protocol)
		case sp.TargetPort.IntVal != 0:
			port = sp.TargetPort.IntVal
		default:
			port = sp.Port
		}
		if port == 0 {
			continue
		}
		out = append(out, discoveryv1.EndpointPort{
			Name: ptr(sp.Name), Protocol: ptr(protocol), Port: ptr(port), AppProtocol: sp.AppProtocol,
		})
	}
	return out
}

func namedPort(pod *corev1.Pod, name string, protocol corev1.Protocol) int32 {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			pp := p.Protocol
			if pp == "" {
				pp = corev1.ProtocolTCP
			}
			if p.Name == name && pp == protocol {
				return p.ContainerPort
			}
		}
	}
	return 0
}

func portsKey(ports []discoveryv1.EndpointPort) string {
	var parts []string
	for _, p := range ports {
		part := ""
		if p.Name != nil {
			part += *p.Name
		}
		if p.Protocol != nil {
			part += "/" + string(*p.Protocol)
		}
		if p.Port != nil {
			part += ":" + strconv.Itoa(int(*p.Port))
		}
		parts = append(parts, part)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func describeEndpoints(eps []discoveryv1.Endpoint) string {
	if len(eps) == 0 {
		return "no endpoints"
	}
	var parts []string
	for _, ep := range eps {
		state := "ready"
		if ep.Conditions.Ready == nil || !*ep.Conditions.Ready {
			state = "not ready"
		}
		if ep.Conditions.Terminating != nil && *ep.Conditions.Terminating {
			state += " terminating"
		}
		parts = append(parts, strings.Join(ep.Addresses, "+")+" "+state)
	}
	return strings.Join(parts, ", ")
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func replicas(n *int32) int32 {
	if n == nil {
		return 1
	}
	return *n
}

func revision(rs *appsv1.ReplicaSet) int {
	n, _ := strconv.Atoi(rs.Annotations[revisionAnnotation])
	return n
}

func setAnnotation(m *metav1.ObjectMeta, key, value string) {
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[key] = value
}

// withLabel returns a copy of l with key set to value.
func withLabel(l map[string]string, key, value string) map[string]string {
	out := make(map[string]string, len(l)+1)
	for k, v := range l {
		out[k] = v
	}
	out[key] = value
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
