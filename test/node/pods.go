package node

// With Config.RunDeploymentPods the harness is the kubelet of the chosen
// Deployments' Pods for real: for each such Pod a runner
//
//   - makes a network namespace of its own (netns.go) whose address
//     10.78.N.2 is the Pod's podIP, reachable from the host and listed in
//     EndpointSlices, so that replicas listen on the same port;
//   - mounts its emptyDir volumes (a directory per Pod, mode 0777, kept
//     across container restarts, removed with the Pod) and its
//     persistentVolumeClaim volumes (a directory per namespace/claim, kept
//     until the harness stops, shared by the Pods that use the claim, owned
//     by the first Pod's user and its fsGroup; the claim is marked Bound),
//     subPath included; the ServiceAccount token's projected volume is the
//     token mount of the Job path; any other volume leaves the container
//     waiting with reason CreateContainerConfigError and a message saying so;
//   - runs its first container's command as the Job path does (same mount
//     namespace, token, env, user, read-only root), in that network namespace;
//   - polls its readinessProbe (httpGet, tcpSocket; exec and grpc leave the
//     container waiting with a message) at periodSeconds (Config.ProbePeriod
//     when set) with timeoutSeconds, successThreshold and failureThreshold,
//     and writes the Ready and ContainersReady conditions and the container's
//     ready field, which the ReplicaSet and Deployment status and the
//     EndpointSlices follow; without a probe the container is ready once it
//     runs;
//   - restarts the container when it exits or is killed (restartPolicy
//     Always, the only one of Deployments): not ready, restartCount + 1,
//     lastState terminated with the exit code (128+signal and the signal when
//     killed), waiting CrashLoopBackOff for Config.RestartBackoff, doubled
//     for quick consecutive exits;
//   - binds the Pod to NodeName when creating it, so that the API server
//     deletes it gracefully; when it is Terminating (scaled down, deleted,
//     its Deployment deleted): SIGTERM to the process group (the readiness
//     probe goes on), SIGKILL after deletionGracePeriodSeconds (capped by
//     Config.StopGrace), then the container's terminated status (the Pod
//     Succeeded or Failed), the namespace, the veth pair and the emptyDirs
//     removed, and the Pod deleted with grace period 0, as a kubelet does;
//     when the Pod is gone at once (force deleted) or the harness stops,
//     the same but for the status and the deletion.
//
// It does not run init containers or other containers than the first (they
// are reported running and ready), liveness or startup probes, lifecycle
// hooks, resource limits, or configMap, secret, hostPath and other volumes;
// Pods cannot reach one another (the host does not forward between them).

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
)

// podRunner runs one Pod's container until its context ends.
type podRunner struct {
	h          *Harness
	pod        *corev1.Pod // as first seen; a Pod's spec does not change
	deployment string
	parent     context.Context // the harness's: status writes outlive ctx
	ctx        context.Context // ends when the container is to stop
	cancel     context.CancelFunc
	done       chan struct{}
	writeMu    sync.Mutex // orders status writes
	final      bool       // the terminated status is written: no more writes (writeMu)

	mu        sync.Mutex
	stopped   bool
	deleting  bool          // stopped because the Pod is Terminating: delete it once stopped
	grace     time.Duration // from SIGTERM to SIGKILL
	net       *podNet
	proc      *os.Process
	running   bool
	startedAt metav1.Time
	ready     bool // the probe's verdict on the running process
	waiting   *corev1.ContainerStateWaiting
	restarts  int32
	last      *corev1.ContainerStateTerminated
	out, prev *lockedBuffer
}

func (h *Harness) runsPod(pod *corev1.Pod) bool {
	return h.cfg.RunDeploymentPods != nil && h.cfg.RunDeploymentPods(pod)
}

// ensureRunner starts the Pod's runner unless it runs, and makes it write the
// Pod's status again when the readiness that status shows is stale (after
// HoldUnready).
func (h *Harness) ensureRunner(ctx context.Context, pod *corev1.Pod, deployment string) {
	h.mu.Lock()
	r, ok := h.runners[pod.UID]
	h.mu.Unlock()
	if ok {
		if pod.Status.PodIP != "" && r.wantReady() != podReady(pod) {
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				r.writeStatus()
			}()
		}
		return
	}
	if ctx.Err() != nil {
		return
	}
	r = &podRunner{h: h, pod: pod.DeepCopy(), deployment: deployment, done: make(chan struct{}),
		waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}, out: &lockedBuffer{},
		parent: ctx, grace: h.podGrace(pod, nil)}
	r.ctx, r.cancel = context.WithCancel(ctx)
	h.mu.Lock()
	h.runners[pod.UID] = r
	h.mu.Unlock()
	h.logf("node: Pod %s/%s: running its container", pod.Namespace, pod.Name)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer close(r.done)
		r.run()
	}()
}

// reapRunners stops the runners of namespace ns whose Pods are not in pods
// or are Terminating (deletionTimestamp set): as a kubelet, SIGTERM, then
// SIGKILL after the Pod's deletionGracePeriodSeconds (capped by
// Config.StopGrace); a Terminating Pod's status then shows its container
// terminated, and the Pod is deleted with grace period 0.
func (h *Harness) reapRunners(ns string, pods map[string]*corev1.Pod) {
	byUID := map[types.UID]*corev1.Pod{}
	for _, p := range pods {
		byUID[p.UID] = p
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for uid, r := range h.runners {
		if r.pod.Namespace != ns || r.isStopped() {
			continue
		}
		switch p := byUID[uid]; {
		case p == nil:
			h.logf("node: Pod %s/%s is gone: stopping its container", ns, r.pod.Name)
			r.stop(h.podGrace(r.pod, nil), false)
		case p.DeletionTimestamp != nil:
			grace := h.podGrace(p, p.DeletionGracePeriodSeconds)
			h.logf("node: Pod %s/%s is Terminating: stopping its container (grace %v)", ns, r.pod.Name, grace)
			r.stop(grace, true)
		}
	}
}

// podGrace is the time between SIGTERM and SIGKILL when the Pod stops: its
// deletion's grace period if given, else its terminationGracePeriodSeconds
// (default 30s), capped by Config.StopGrace.
func (h *Harness) podGrace(pod *corev1.Pod, deletionGrace *int64) time.Duration {
	grace := 30 * time.Second
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	if deletionGrace != nil {
		grace = time.Duration(*deletionGrace) * time.Second
	}
	return max(0, min(grace, h.stopGrace()))
}

func (h *Harness) stopGrace() time.Duration {
	if h.cfg.StopGrace > 0 {
		return h.cfg.StopGrace
	}
	return 10 * time.Second
}

// stopping says whether the harness runs, or is still stopping, a container
// for the Pod with this UID: the Pod is not to be deleted at once.
func (h *Harness) stopping(uid types.UID) bool {
	h.mu.Lock()
	r, ok := h.runners[uid]
	h.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

func (r *podRunner) isStopped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopped
}

// stop ends the container: SIGTERM now, SIGKILL after grace; deleting
// makes the runner write the terminated status and delete the Pod after.
func (r *podRunner) stop(grace time.Duration, deleting bool) {
	r.mu.Lock()
	r.stopped = true
	r.deleting = deleting
	r.grace = min(r.grace, grace)
	r.mu.Unlock()
	r.cancel()
}

func (r *podRunner) killDelay() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.grace
}

// runnerLocked returns the running runner of Pod namespace/name, else its
// last one; h.mu is held.
func (h *Harness) runnerLocked(namespace, name string) *podRunner {
	var found *podRunner
	for _, r := range h.runners {
		if r.pod.Namespace != namespace || r.pod.Name != name {
			continue
		}
		if !r.isStopped() {
			return r
		}
		found = r
	}
	return found
}

// liveRunner returns the runner of Pod namespace/name that runs.
func (h *Harness) liveRunner(namespace, name string) (*podRunner, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.runnerLocked(namespace, name)
	if r == nil || r.isStopped() {
		return nil, fmt.Errorf("the harness runs no Pod %s/%s", namespace, name)
	}
	return r, nil
}

// KillPod sends SIGKILL to the process of Pod namespace/name (kill -9), as
// an out-of-memory kill or a crash would end it; the harness then restarts
// the container. The Pod must be one that Config.RunDeploymentPods chose,
// with its container running.
func (h *Harness) KillPod(namespace, name string) error {
	r, err := h.liveRunner(namespace, name)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return fmt.Errorf("Pod %s/%s: its container is not running", namespace, name)
	}
	h.logf("node: Pod %s/%s: kill -9 %d", namespace, name, r.proc.Pid)
	return syscall.Kill(-r.proc.Pid, syscall.SIGKILL)
}

// PodAddress returns the address of Pod namespace/name (its podIP), which
// the test process reaches, for a Pod that Config.RunDeploymentPods chose.
func (h *Harness) PodAddress(namespace, name string) (string, error) {
	r, err := h.liveRunner(namespace, name)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.net == nil {
		return "", fmt.Errorf("Pod %s/%s has no network namespace yet", namespace, name)
	}
	return r.net.ip, nil
}

// PodPID returns the process id of the container of Pod namespace/name, for
// a Pod that Config.RunDeploymentPods chose, while it runs.
func (h *Harness) PodPID(namespace, name string) (int, error) {
	r, err := h.liveRunner(namespace, name)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return 0, fmt.Errorf("Pod %s/%s: its container is not running", namespace, name)
	}
	return r.proc.Pid, nil
}

// ClaimDir is the directory on this machine that holds the data of the
// PersistentVolumeClaim namespace/claim for the Pods that the harness runs
// (it exists once a Pod has mounted the claim, and lasts until Stop).
func (h *Harness) ClaimDir(namespace, claim string) string {
	return filepath.Join(h.workRoot, "claims", namespace, claim)
}

func (h *Harness) podDir(pod *corev1.Pod) string {
	return filepath.Join(h.workRoot, "pods", string(pod.UID))
}

func (h *Harness) restartBackoff() time.Duration {
	if h.cfg.RestartBackoff > 0 {
		return h.cfg.RestartBackoff
	}
	return time.Second
}

// run sets up the Pod's network and runs its container, again and again,
// until the runner's context ends; then it removes what it made.
func (r *podRunner) run() {
	h, ctx := r.h, r.ctx
	defer r.cleanup()
	if err := unsupported(r.pod); err != nil {
		h.logf("node: Pod %s/%s: %v", r.pod.Namespace, r.pod.Name, err)
		r.setWaiting("CreateContainerConfigError", err.Error())
		r.writeStatus()
		<-ctx.Done()
		return
	}
	for {
		pn, err := h.setupNet(ctx)
		if err == nil {
			r.mu.Lock()
			r.net = pn
			r.mu.Unlock()
			break
		}
		h.logf("node: Pod %s/%s: network: %v", r.pod.Namespace, r.pod.Name, err)
		r.setWaiting("ContainerCreating", "network: "+err.Error())
		r.writeStatus()
		if !sleep(ctx, h.restartBackoff()) {
			return
		}
	}
	failures := 0
	for ctx.Err() == nil {
		ran, err := r.runOnce()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			h.logf("node: Pod %s/%s: %v", r.pod.Namespace, r.pod.Name, err)
		}
		if ran > 10*h.restartBackoff() {
			failures = 0
		}
		delay := h.restartBackoff() << min(failures, 5)
		failures++
		r.writeStatus()
		if !sleep(ctx, delay) {
			return
		}
	}
}

// unsupported says why the harness cannot run the Pod, if it cannot.
func unsupported(pod *corev1.Pod) error {
	c := &pod.Spec.Containers[0]
	if p := c.ReadinessProbe; p != nil && p.HTTPGet == nil && p.TCPSocket == nil {
		return fmt.Errorf("container %s: the node harness runs only httpGet and tcpSocket readiness probes", c.Name)
	}
	if len(pod.Spec.InitContainers) > 0 {
		return errors.New("the node harness does not run init containers")
	}
	for _, v := range pod.Spec.Volumes {
		if v.EmptyDir == nil && v.PersistentVolumeClaim == nil && !isTokenVolume(&v) {
			return fmt.Errorf("volume %q: the node harness mounts only emptyDir and persistentVolumeClaim volumes (and the ServiceAccount token)", v.Name)
		}
	}
	return nil
}

// isTokenVolume is the projected ServiceAccount token volume that the
// ServiceAccount admission plugin adds, which the token mount stands for.
func isTokenVolume(v *corev1.Volume) bool {
	if v.Projected == nil {
		return false
	}
	for _, s := range v.Projected.Sources {
		if s.ServiceAccountToken != nil {
			return true
		}
	}
	return false
}

// runOnce runs the container once: it returns how long it ran, and an error
// when it could not start it (after recording the reason in the status).
func (r *podRunner) runOnce() (time.Duration, error) {
	h, ctx := r.h, r.ctx
	pod := r.pod.DeepCopy()
	pod.Status.PodIP = r.net.ip
	c := &pod.Spec.Containers[0]
	mounts, err := h.volumeMounts(ctx, pod, c)
	if err != nil {
		r.setWaiting("CreateContainerConfigError", err.Error())
		return 0, err
	}
	proc, err := h.prepare(ctx, pod, c, &runExtras{netns: r.net.path(), mounts: mounts})
	if err != nil {
		r.setWaiting("CreateContainerConfigError", err.Error())
		return 0, err
	}
	defer func() { _ = os.RemoveAll(proc.dir) }()
	// The context's end sends SIGTERM (prepare); the group is killed after
	// the grace period below, WaitDelay being a backstop.
	proc.cmd.WaitDelay = min(proc.cmd.WaitDelay, h.stopGrace()) + time.Second
	out := &lockedBuffer{}
	proc.cmd.Stdout, proc.cmd.Stderr = out, out
	if err := proc.cmd.Start(); err != nil {
		r.setWaiting("RunContainerError", err.Error())
		return 0, err
	}
	startedAt := metav1.Now()
	r.mu.Lock()
	r.proc, r.running, r.startedAt, r.ready, r.waiting = proc.cmd.Process, true, startedAt, false, nil
	r.prev, r.out = r.out, out
	r.mu.Unlock()
	h.logf("node: Pod %s/%s: container started at %s (pid %d)", pod.Namespace, pod.Name, r.net.ip, proc.cmd.Process.Pid)
	r.writeStatus()

	// As a kubelet's, the readiness probe goes on while the container
	// handles SIGTERM.
	probeCtx, stopProbe := context.WithCancel(r.parent)
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		r.probe(probeCtx, c)
	}()
	exited, killed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(killed)
		select {
		case <-exited:
			return
		case <-ctx.Done():
		}
		grace := r.killDelay()
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-exited:
		case <-t.C:
			h.logf("node: Pod %s/%s: still running %v after SIGTERM: kill -9", pod.Namespace, pod.Name, grace)
			_ = syscall.Kill(-proc.cmd.Process.Pid, syscall.SIGKILL)
		}
	}()
	_ = proc.cmd.Wait()
	close(exited)
	<-killed
	_ = syscall.Kill(-proc.cmd.Process.Pid, syscall.SIGKILL) // what it left behind
	stopProbe()
	<-probed
	ran := time.Since(startedAt.Time)

	term := terminated(proc.cmd.ProcessState, startedAt)
	h.logf("node: Pod %s/%s: container exited %d after %v", pod.Namespace, pod.Name, term.ExitCode, ran.Round(time.Millisecond))
	r.mu.Lock()
	r.proc, r.running, r.ready, r.last = nil, false, false, term
	if ctx.Err() == nil {
		r.restarts++
		r.waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off restarting failed container %s in pod %s", c.Name, pod.Name)}
	}
	r.mu.Unlock()
	return ran, nil
}

// terminated is the state of a container whose process ended: exit code
// 128+signal, and the signal, when it was killed.
func terminated(state *os.ProcessState, startedAt metav1.Time) *corev1.ContainerStateTerminated {
	term := &corev1.ContainerStateTerminated{ExitCode: int32(state.ExitCode()), Reason: "Completed",
		StartedAt: startedAt, FinishedAt: metav1.Now(), ContainerID: "harness://" + strconv.Itoa(state.Pid())}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		term.Signal = int32(ws.Signal())
		term.ExitCode = 128 + term.Signal
	}
	if term.ExitCode != 0 {
		term.Reason = "Error"
	}
	return term
}

func (r *podRunner) setWaiting(reason, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
}

func (r *podRunner) setReady(ready bool) {
	r.mu.Lock()
	changed := r.ready != ready && r.running
	if r.running {
		r.ready = ready
	}
	r.mu.Unlock()
	if changed {
		r.h.logf("node: Pod %s/%s: ready %v", r.pod.Namespace, r.pod.Name, ready)
		r.writeStatus()
	}
}

// wantReady is whether the Pod is ready: its container runs, its probe
// passes, and HoldUnready does not hold it.
func (r *podRunner) wantReady() bool {
	r.mu.Lock()
	ready := r.running && r.ready
	r.mu.Unlock()
	return ready && !r.h.isHeld(r.pod.Namespace, r.deployment)
}

func (r *podRunner) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// cleanup kills what is left, removes the network namespace and the Pod's
// emptyDirs, and marks the runner stopped; for a Terminating Pod it first
// writes the container's terminated status and at last deletes the Pod
// with grace period 0, as a kubelet does.
func (r *podRunner) cleanup() {
	r.mu.Lock()
	r.stopped = true
	pn, deleting := r.net, r.deleting
	r.mu.Unlock()
	if deleting {
		r.writeTerminated()
	}
	if pn != nil {
		pn.teardown()
	}
	_ = os.RemoveAll(r.h.podDir(r.pod))
	r.h.logf("node: Pod %s/%s: stopped and cleaned up", r.pod.Namespace, r.pod.Name)
	if deleting && r.parent.Err() == nil {
		err := r.h.deletePod(r.parent, r.pod, ptr(int64(0)))
		if err != nil {
			r.h.logf("node: %v", err)
		} else {
			r.h.logf("node: Pod %s/%s deleted: its container stopped", r.pod.Namespace, r.pod.Name)
		}
		if r.h.deploy != nil {
			r.h.deploy.queue.Add(r.pod.Namespace)
		}
	}
}

// writeTerminated writes the status of a Terminating Pod whose container
// has stopped: terminated (with its exit code, or ContainerStatusUnknown if
// it never ran), not ready, and the Pod's phase Succeeded or Failed.
func (r *podRunner) writeTerminated() {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	if r.parent.Err() != nil || r.final {
		return
	}
	r.final = true
	r.mu.Lock()
	c := r.pod.Spec.Containers[0]
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, Started: ptr(false), RestartCount: r.restarts}
	if r.last != nil {
		cs.State.Terminated = r.last.DeepCopy()
	} else {
		cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "ContainerStatusUnknown",
			Message:    "The container could not be located when the pod was deleted.  The container used to be Running",
			FinishedAt: metav1.Now()}
	}
	ip := ""
	if r.net != nil {
		ip = r.net.ip
	}
	r.mu.Unlock()
	err := r.h.updatePodStatus(r.parent, r.pod, func(s *corev1.PodStatus) {
		setRunStatus(r.pod, s, ip, true, false, cs)
		s.Phase = corev1.PodSucceeded
		for i := range s.ContainerStatuses {
			st := &s.ContainerStatuses[i]
			if i > 0 {
				st.Ready, st.Started = false, ptr(false)
				st.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					Reason: "Completed", StartedAt: *s.StartTime, FinishedAt: metav1.Now()}}
			}
			if st.State.Terminated.ExitCode != 0 {
				s.Phase = corev1.PodFailed
			}
		}
	})
	if err != nil && !apierrors.IsNotFound(err) {
		r.h.logf("node: %v", err)
		return
	}
	r.h.logf("node: Pod %s/%s: container terminated (exit %d)", r.pod.Namespace, r.pod.Name, cs.State.Terminated.ExitCode)
}

// sleep waits d, or less if ctx ends first; it reports whether ctx is alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// writeStatus writes the Pod's status from the runner's state; writes are
// serialised, each from a fresh snapshot, so that none undoes a later one.
func (r *podRunner) writeStatus() {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	if r.parent.Err() != nil || r.final {
		return
	}
	ready := r.wantReady()
	r.mu.Lock()
	cs := corev1.ContainerStatus{
		Name: r.pod.Spec.Containers[0].Name, Image: r.pod.Spec.Containers[0].Image,
		ImageID: r.pod.Spec.Containers[0].Image, Ready: ready, Started: ptr(r.running),
		RestartCount: r.restarts,
	}
	switch {
	case r.running:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: r.startedAt}
	case r.waiting != nil:
		cs.State.Waiting = r.waiting.DeepCopy()
	}
	if r.last != nil {
		cs.LastTerminationState.Terminated = r.last.DeepCopy()
	}
	ip, everRan := "", r.running || r.last != nil
	if r.net != nil {
		ip = r.net.ip
	}
	r.mu.Unlock()
	err := r.h.updatePodStatus(r.ctx, r.pod, func(s *corev1.PodStatus) {
		setRunStatus(r.pod, s, ip, everRan, ready, cs)
	})
	if err != nil && !apierrors.IsNotFound(err) && r.parent.Err() == nil {
		r.h.logf("node: %v", err)
	}
}

// setRunStatus writes the status of a Pod whose first container's status is
// cs; the others are reported running and ready, as they are not run.
func setRunStatus(pod *corev1.Pod, s *corev1.PodStatus, ip string, everRan, ready bool, cs corev1.ContainerStatus) {
	now := metav1.Now()
	s.Phase = corev1.PodPending
	if everRan {
		s.Phase = corev1.PodRunning
	}
	if s.StartTime == nil {
		s.StartTime = &now
	}
	s.HostIP, s.HostIPs = NodeIP, []corev1.HostIP{{IP: NodeIP}}
	s.PodIP, s.PodIPs = "", nil
	if ip != "" {
		s.PodIP, s.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	}
	msg := ""
	if !ready {
		msg = fmt.Sprintf("containers with unready status: [%s]", cs.Name)
	}
	setConditions(s, ready, msg, now)
	s.ContainerStatuses = []corev1.ContainerStatus{cs}
	for _, c := range pod.Spec.Containers[1:] {
		s.ContainerStatuses = append(s.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true, Started: ptr(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: *s.StartTime}},
		})
	}
}

// volumeMounts lays out the container's volumes and returns their mounts.
func (h *Harness) volumeMounts(ctx context.Context, pod *corev1.Pod, c *corev1.Container) ([]bindMount, error) {
	uid, gid, _, err := identity(pod, c)
	if err != nil {
		return nil, err
	}
	if psc := pod.Spec.SecurityContext; psc != nil && psc.FSGroup != nil {
		gid = int(*psc.FSGroup)
	}
	var mounts []bindMount
	for _, vm := range c.VolumeMounts {
		var v *corev1.Volume
		for i := range pod.Spec.Volumes {
			if pod.Spec.Volumes[i].Name == vm.Name {
				v = &pod.Spec.Volumes[i]
			}
		}
		var src string
		readOnly := vm.ReadOnly
		switch {
		case v == nil:
			return nil, fmt.Errorf("volumeMount %q names no volume of the Pod", vm.Name)
		case isTokenVolume(v):
			continue // the token mount
		case v.EmptyDir != nil:
			src = filepath.Join(h.podDir(pod), "volumes", v.Name)
			if err := makeDir(src, -1, -1, 0o777); err != nil {
				return nil, err
			}
		case v.PersistentVolumeClaim != nil:
			if err := h.bindClaim(ctx, pod.Namespace, v.PersistentVolumeClaim.ClaimName); err != nil {
				return nil, fmt.Errorf("volume %q: %w", v.Name, err)
			}
			src = h.ClaimDir(pod.Namespace, v.PersistentVolumeClaim.ClaimName)
			if err := makeDir(src, uid, gid, 0o2775); err != nil {
				return nil, err
			}
			readOnly = readOnly || v.PersistentVolumeClaim.ReadOnly
		default:
			return nil, fmt.Errorf("volume %q: the node harness mounts only emptyDir and persistentVolumeClaim volumes", v.Name)
		}
		if vm.SubPath != "" {
			if !filepath.IsLocal(vm.SubPath) {
				return nil, fmt.Errorf("volumeMount %q: subPath %q leaves the volume", vm.Name, vm.SubPath)
			}
			src = filepath.Join(src, vm.SubPath)
			if err := makeDir(src, uid, gid, 0o2775); err != nil {
				return nil, err
			}
		}
		mounts = append(mounts, bindMount{src: src, dst: vm.MountPath, readOnly: readOnly})
	}
	return mounts, nil
}

// makeDir makes dir (and its parents, mode 0755) unless it exists, with the
// given mode and, when uid >= 0, owner.
func makeDir(dir string, uid, gid int, mode os.FileMode) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if uid >= 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			return err
		}
	}
	return os.Chmod(dir, mode)
}

// bindClaim checks that the claim exists and marks it Bound, as a
// provisioner and the PersistentVolume controller would.
func (h *Harness) bindClaim(ctx context.Context, ns, name string) error {
	bound := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pvc, err := h.client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pvc.Status.Phase == corev1.ClaimBound {
			return nil
		}
		pvc.Status.Phase = corev1.ClaimBound
		pvc.Status.AccessModes = pvc.Spec.AccessModes
		if q, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
			pvc.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: q}
		}
		_, err = h.client.CoreV1().PersistentVolumeClaims(ns).UpdateStatus(ctx, pvc, metav1.UpdateOptions{})
		bound = err == nil
		return err
	})
	if err != nil {
		return fmt.Errorf("persistentvolumeclaim %q: %w", name, err)
	}
	if bound {
		h.logf("node: PersistentVolumeClaim %s/%s: Bound to %s", ns, name, h.ClaimDir(ns, name))
	}
	return nil
}

// probe runs the container's readiness probe until ctx ends, and sets the
// runner's readiness from it.
func (r *podRunner) probe(ctx context.Context, c *corev1.Container) {
	p := c.ReadinessProbe
	if p == nil {
		r.setReady(true)
		return
	}
	period := time.Duration(max(p.PeriodSeconds, 1)) * time.Second
	if r.h.cfg.ProbePeriod > 0 {
		period = r.h.cfg.ProbePeriod
	}
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	successes, failures := max(p.SuccessThreshold, 1), p.FailureThreshold
	if failures <= 0 {
		failures = 3
	}
	if !sleep(ctx, time.Duration(p.InitialDelaySeconds)*time.Second) {
		return
	}
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{
		Proxy: nil, DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as the kubelet
	}}
	ready, ok, failed := false, int32(0), int32(0)
	var lastErr string
	for {
		err := probeOnce(ctx, client, r.net.ip, c, p, timeout)
		switch {
		case err == nil:
			ok, failed, lastErr = ok+1, 0, ""
			if !ready && ok >= successes {
				ready = true
				r.setReady(true)
			}
		case ctx.Err() != nil:
			return
		default:
			ok, failed = 0, failed+1
			if err.Error() != lastErr {
				lastErr = err.Error()
				r.h.logf("node: Pod %s/%s: readiness probe failed: %v", r.pod.Namespace, r.pod.Name, err)
			}
			if ready && failed >= failures {
				ready = false
				r.setReady(false)
			}
		}
		if !sleep(ctx, period) {
			return
		}
	}
}

// probeOnce runs one httpGet or tcpSocket probe against the Pod's address.
func probeOnce(ctx context.Context, client *http.Client, ip string, c *corev1.Container, p *corev1.Probe, timeout time.Duration) error {
	if g := p.HTTPGet; g != nil {
		port, err := probePort(c, g.Port)
		if err != nil {
			return err
		}
		host := ip
		if g.Host != "" {
			host = g.Host
		}
		scheme := "http"
		if g.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		path := g.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort(host, strconv.Itoa(port))+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", "kube-probe/node-harness")
		for _, hd := range g.HTTPHeaders {
			req.Header.Add(hd.Name, hd.Value)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
		_ = resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
		}
		return nil
	}
	port, err := probePort(c, p.TCPSocket.Port)
	if err != nil {
		return err
	}
	host := ip
	if p.TCPSocket.Host != "" {
		host = p.TCPSocket.Host
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return conn.Close()
}

// probePort resolves a probe's port, by number or by the container's port
// name.
func probePort(c *corev1.Container, port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("probe port %q: no such container port", port.StrVal)
}

// lockedBuffer is a buffer that a process writes while tests read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	if b == nil {
		return ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
