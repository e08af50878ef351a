package node

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
)

// TokenDir is where a container finds its ServiceAccount's credentials.
const TokenDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// DefaultUser is the uid a container runs as when neither the Pod nor the
// container sets runAsUser: the user of the project's image.
const DefaultUser = 65532

// Config says what the harness needs to reach the API server and run
// containers.
type Config struct {
	// Admin is a client with the rights of the kubelet and the Job
	// controller together (the test bed's admin).
	Admin *rest.Config
	// Executables maps a container's command[0] to a program on this
	// machine, which must be readable and executable by the Pod's user.
	Executables map[string]string
	// Namespace limits the harness to one namespace; "" watches all.
	Namespace string
	// Logf, when set, receives a line for every step of every run.
	Logf func(format string, args ...any)

	// Deployments makes the harness also play the Deployment, ReplicaSet
	// and EndpointSlice controllers, the kubelet of the Deployments' Pods
	// (which it marks Running and Ready without running them) and the
	// garbage collector of what those controllers own. Off by default. At
	// most one harness with Deployments may watch a namespace.
	Deployments bool
	// PodAddress, when set, gives the podIP of a Deployment's Pod (and so
	// its EndpointSlice address) when the Pod starts; "" or a nil
	// PodAddress takes the next free address of the fake range 10.244.0.0/16.
	// The API server refuses loopback and link-local addresses in
	// EndpointSlices. It is not called for the Pods that
	// RunDeploymentPods chooses.
	PodAddress func(pod *corev1.Pod) string

	// RunDeploymentPods, with Deployments, chooses the Deployments' Pods
	// whose (first) container the harness really runs, in a network
	// namespace of its own whose address is the Pod's podIP, with its
	// emptyDir and persistentVolumeClaim volumes, its readiness probe and
	// restarts (see pods.go). nil runs none: their Pods are only marked
	// Running and Ready.
	RunDeploymentPods func(pod *corev1.Pod) bool
	// ProbePeriod, when positive, replaces the periodSeconds of the
	// readiness probes of the Pods that the harness runs (tests use a few
	// tens of milliseconds).
	ProbePeriod time.Duration
	// RestartBackoff is the wait before a run Pod's exited container is
	// restarted, doubled for each quick consecutive exit up to 32 times;
	// default 1s.
	RestartBackoff time.Duration
	// StopGrace caps the terminationGracePeriodSeconds between SIGTERM and
	// SIGKILL when a run Pod goes away, or a Job's Pod stops because its
	// Job was deleted, its activeDeadlineSeconds passed or the harness
	// stops; default 10s.
	StopGrace time.Duration
}

// ErrJobDeleted ends the run of a Job that was deleted (see Run.Err).
var ErrJobDeleted = errors.New("the Job was deleted")

// jobRun is the run of one Job: its context and its current Pods.
type jobRun struct {
	namespace, name string
	cancel          context.CancelCauseFunc
	// pods is the current Pod of each completion index (of noIndex for a
	// NonIndexed Job); an index has none before its first.
	pods    map[int]*jobPod
	deleted bool // the Job was deleted: its run is being stopped
}

// jobPod is a Job's current Pod of one completion index.
type jobPod struct {
	name string
	pid  int           // its process while it runs; 0 otherwise or once killed
	out  *lockedBuffer // its log so far
}

// Run records one Pod that the harness ran for a Job.
type Run struct {
	Namespace, Job, Pod string
	// Index is the Pod's completion index for an Indexed Job; 0 otherwise.
	Index int
	// Env is the container's environment, which the process got (the
	// harness's own variables for the mount script are unset before exec).
	Env []string
	// Output is the process's stdout and stderr together: the Pod's log.
	Output string
	// ExitCode is the process's exit status; -1 when it never started.
	ExitCode int
	// Err says why the container could not start, if it did not; it is
	// ErrJobDeleted for the last run, without a Pod, of a Job deleted
	// while no Pod of it ran.
	Err error
	// Last is true for the Job's last run: the Job has finished or was
	// deleted, or its Pod was refused and it stays active.
	Last bool
	// Seen is when the harness saw the Job, Started when the process
	// started, Exited when it ended and Finished when the Job's status was
	// written: Started-Seen plus Finished-Exited is the harness's own latency.
	Seen, Started, Exited, Finished time.Time
}

// Overhead is the time the harness itself added to the run.
func (r Run) Overhead() time.Duration {
	if r.Started.IsZero() || r.Finished.IsZero() {
		return 0
	}
	return r.Started.Sub(r.Seen) + r.Finished.Sub(r.Exited)
}

// Harness runs Jobs until Stop.
type Harness struct {
	cfg      Config
	client   kubernetes.Interface
	apiHost  string
	apiPort  string
	caData   []byte
	workRoot string

	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	started map[string]bool // Job UIDs already handled
	runs    []Run
	changed chan struct{}            // closed and replaced whenever runs or a Job's running Pod change
	jobs    map[types.UID]*jobRun    // the Jobs being run, by UID
	held    map[string]bool          // "namespace/deployment" kept unready (HoldUnready)
	runners map[types.UID]*podRunner // every Pod run for RunDeploymentPods, stopped ones too
	// forwards are host loopback addresses (ForwardLoopback) made
	// reachable in the network namespaces of run Pods.
	forwards []string

	deploy *deployController // nil unless Config.Deployments
}

// Start begins watching Jobs (and Deployments, Services and their Pods
// with Config.Deployments). Stop ends every run it started.
func Start(ctx context.Context, cfg Config) (*Harness, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("node harness: needs root (unshare, mount, setpriv)")
	}
	for _, tool := range []string{"unshare", "setpriv", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("node harness: %w (util-linux)", err)
		}
	}
	u, err := url.Parse(cfg.Admin.Host)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("node harness: API server host %q: want https://HOST:PORT", cfg.Admin.Host)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	ca := cfg.Admin.CAData
	if len(ca) == 0 && cfg.Admin.CAFile != "" {
		if ca, err = os.ReadFile(cfg.Admin.CAFile); err != nil {
			return nil, fmt.Errorf("node harness: %w", err)
		}
	}
	client, err := kubernetes.NewForConfig(cfg.Admin)
	if err != nil {
		return nil, fmt.Errorf("node harness: %w", err)
	}
	// The Pod's user must reach its token through this directory.
	work, err := os.MkdirTemp("", "iter8-node-")
	if err != nil {
		return nil, fmt.Errorf("node harness: %w", err)
	}
	if err := os.Chmod(work, 0o755); err != nil {
		_ = os.RemoveAll(work)
		return nil, fmt.Errorf("node harness: %w", err)
	}
	h := &Harness{
		cfg: cfg, client: client, apiHost: u.Hostname(), apiPort: port, caData: ca, workRoot: work,
		started: map[string]bool{}, changed: make(chan struct{}), held: map[string]bool{},
		runners: map[types.UID]*podRunner{}, jobs: map[types.UID]*jobRun{},
	}
	// The harness outlives Start's ctx, which bounds only the start.
	startCtx := ctx
	ctx, h.cancel = context.WithCancel(context.WithoutCancel(ctx))

	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return client.BatchV1().Jobs(cfg.Namespace).List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return client.BatchV1().Jobs(cfg.Namespace).Watch(ctx, opts)
		},
	}
	_, controller := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &batchv1.Job{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { h.jobSeen(ctx, obj) },
			UpdateFunc: func(_, obj any) { h.jobSeen(ctx, obj) },
			DeleteFunc: func(obj any) {
				if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = t.Obj
				}
				if job, ok := obj.(*batchv1.Job); ok {
					h.jobDeleted(job)
				}
			},
		},
	})
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		controller.RunWithContext(ctx)
	}()
	if !cache.WaitForCacheSync(startCtx.Done(), controller.HasSynced) {
		h.Stop()
		return nil, errors.New("node harness: the Job informer did not sync")
	}
	if cfg.Deployments {
		if err := h.startDeployments(ctx, startCtx); err != nil {
			h.Stop()
			return nil, err
		}
	}
	return h, nil
}

// Stop kills running containers and waits for the harness to end.
func (h *Harness) Stop() {
	h.cancel()
	if h.deploy != nil {
		h.deploy.informers.Shutdown()
	}
	h.wg.Wait()
	_ = os.RemoveAll(h.workRoot)
}

// Runs returns the runs so far, in the order they finished.
func (h *Harness) Runs() []Run {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Run(nil), h.runs...)
}

// WaitRun waits for the last run of the Job namespace/job (see Run.Last).
func (h *Harness) WaitRun(ctx context.Context, namespace, job string) (Run, error) {
	for {
		h.mu.Lock()
		changed := h.changed
		for i := len(h.runs) - 1; i >= 0; i-- {
			if r := h.runs[i]; r.Namespace == namespace && r.Job == job && r.Last {
				h.mu.Unlock()
				return r, nil
			}
		}
		h.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return Run{}, fmt.Errorf("no run of Job %s/%s: %w", namespace, job, ctx.Err())
		}
	}
}

// Log returns the log of Pod namespace/pod: a Job's Pod's output (so far,
// while it runs), or the current (else last) container's output of a Pod
// run for RunDeploymentPods.
func (h *Harness) Log(namespace, pod string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.runs {
		if r.Namespace == namespace && r.Pod == pod {
			return r.Output, true
		}
	}
	for _, jr := range h.jobs {
		for _, p := range jr.pods {
			if jr.namespace == namespace && p.name == pod && p.out != nil {
				return p.out.String(), true
			}
		}
	}
	if r := h.runnerLocked(namespace, pod); r != nil {
		return r.output(), true
	}
	return "", false
}

func (h *Harness) logf(format string, args ...any) {
	if h.cfg.Logf != nil {
		h.cfg.Logf(format, args...)
	}
}

func (h *Harness) record(r Run) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.runs = append(h.runs, r)
	h.notifyLocked()
}

// notifyLocked wakes the waiters on h.changed; h.mu is held.
func (h *Harness) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// KillJobPod sends SIGKILL to the process group of the running Pod of Job
// namespace/job (kill -9), as an out-of-memory kill or a node's crash would
// end it: the Pod fails with exit code 137 and the Job goes on as its
// backoffLimit says (another Pod, or Failed). It is an error when the Job
// has no Pod whose process runs (none yet, between two Pods, or already
// killed). Of an Indexed Job it kills the Pod of the lowest running index.
func (h *Harness) KillJobPod(namespace, job string) error {
	return h.killJobPod(namespace, job, noIndex)
}

// killJobPod kills the running Pod of Job namespace/job of index, or of any
// index for noIndex.
func (h *Harness) killJobPod(namespace, job string, index int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.runningPodLocked(namespace, job, index)
	if p == nil {
		if index != noIndex {
			return fmt.Errorf("Job %s/%s has no running Pod of index %d", namespace, job, index)
		}
		return fmt.Errorf("Job %s/%s has no running Pod", namespace, job)
	}
	h.logf("node: Job %s/%s: Pod %s: kill -9 %d", namespace, job, p.name, p.pid)
	if err := syscall.Kill(-p.pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill Pod %s/%s of Job %s: %w", namespace, p.name, job, err)
	}
	p.pid = 0
	return nil
}

// WaitJobPodRunning waits until a Pod of Job namespace/job runs (its status
// says Running and its process has started) and returns the Pod's name. A
// Pod that KillJobPod killed no longer counts, so after a kill it returns
// the next Pod. Of an Indexed Job it returns the Pod of the lowest running
// index.
func (h *Harness) WaitJobPodRunning(ctx context.Context, namespace, job string) (string, error) {
	return h.waitJobPodRunning(ctx, namespace, job, noIndex)
}

// waitJobPodRunning waits for a running Pod of Job namespace/job of index,
// or of any index for noIndex.
func (h *Harness) waitJobPodRunning(ctx context.Context, namespace, job string, index int) (string, error) {
	for {
		h.mu.Lock()
		changed := h.changed
		p := h.runningPodLocked(namespace, job, index)
		h.mu.Unlock()
		if p != nil {
			return p.name, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if index != noIndex {
				return "", fmt.Errorf("no running Pod of index %d of Job %s/%s: %w", index, namespace, job, ctx.Err())
			}
			return "", fmt.Errorf("no running Pod of Job %s/%s: %w", namespace, job, ctx.Err())
		}
	}
}

// runningPodLocked returns the Pod of Job namespace/job of index (the
// lowest one for noIndex) whose process runs, or nil; h.mu is held.
func (h *Harness) runningPodLocked(namespace, job string, index int) *jobPod {
	for _, jr := range h.jobs {
		if jr.namespace != namespace || jr.name != job {
			continue
		}
		var found *jobPod
		lowest := 0
		for i, p := range jr.pods {
			if p.pid != 0 && (index == noIndex || i == index) && (found == nil || i < lowest) {
				found, lowest = p, i
			}
		}
		if found != nil {
			return found
		}
	}
	return nil
}

// setJobPod records the Job's current Pod of index, its process (0 when it
// is not running) and its log.
func (h *Harness) setJobPod(uid types.UID, index int, pod string, pid int, out *lockedBuffer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if jr := h.jobs[uid]; jr != nil {
		jr.pods[index] = &jobPod{name: pod, pid: pid, out: out}
		h.notifyLocked()
	}
}

// jobSeen starts a Job that no one has started: not suspended, no start
// time. A Job being deleted (deletionTimestamp set) is stopped.
func (h *Harness) jobSeen(ctx context.Context, obj any) {
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return
	}
	if job.DeletionTimestamp != nil {
		h.jobDeleted(job)
		return
	}
	if job.Status.StartTime != nil || (job.Spec.Suspend != nil && *job.Spec.Suspend) {
		return
	}
	h.mu.Lock()
	if h.started[string(job.UID)] {
		h.mu.Unlock()
		return
	}
	h.started[string(job.UID)] = true
	jobCtx, cancel := context.WithCancelCause(ctx)
	h.jobs[job.UID] = &jobRun{namespace: job.Namespace, name: job.Name, cancel: cancel, pods: map[int]*jobPod{}}
	h.mu.Unlock()
	seen := time.Now()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer func() {
			h.mu.Lock()
			delete(h.jobs, job.UID)
			h.notifyLocked()
			h.mu.Unlock()
			cancel(nil)
		}()
		if err := h.runJob(jobCtx, job.DeepCopy(), seen); err != nil && jobCtx.Err() == nil {
			h.logf("node: Job %s/%s: %v", job.Namespace, job.Name, err)
		}
	}()
}

// jobDeleted stops the run of a deleted Job, as the garbage collector and
// the kubelet would: its Pod's process gets SIGTERM, then SIGKILL after the
// Pod's grace period (podGrace), no other Pod is started, the Pod is
// deleted and the Job's status is not written.
func (h *Harness) jobDeleted(job *batchv1.Job) {
	h.mu.Lock()
	jr := h.jobs[job.UID]
	if jr == nil || jr.deleted {
		h.mu.Unlock()
		return
	}
	jr.deleted = true
	h.mu.Unlock()
	h.logf("node: Job %s/%s is deleted: stopping its run", job.Namespace, job.Name)
	jr.cancel(ErrJobDeleted)
}

// jobGone ends the run of a deleted Job: it deletes the Job's last Pods
// (which may be gone already; "" is none) and then removes the
// foregroundDeletion finalizer from the Job if it is still there, as the
// garbage collector does once the dependents are gone.
func (h *Harness) jobGone(ctx context.Context, job *batchv1.Job, pods ...string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, pod := range pods {
		if pod == "" {
			continue
		}
		err := h.client.CoreV1().Pods(job.Namespace).Delete(ctx, pod, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
		if err != nil && !apierrors.IsNotFound(err) {
			h.logf("node: delete Pod %s/%s of deleted Job %s: %v", job.Namespace, pod, job.Name, err)
		}
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := h.client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		if err != nil || cur.UID != job.UID || !slices.Contains(cur.Finalizers, metav1.FinalizerDeleteDependents) {
			return err
		}
		cur.Finalizers = slices.DeleteFunc(cur.Finalizers, func(f string) bool { return f == metav1.FinalizerDeleteDependents })
		_, err = h.client.BatchV1().Jobs(job.Namespace).Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		h.logf("node: remove finalizer %s of deleted Job %s/%s: %v", metav1.FinalizerDeleteDependents, job.Namespace, job.Name, err)
	}
}

// runJob runs Pods for job until one succeeds or backoffLimit failures,
// then writes the Job's final status.
func (h *Harness) runJob(ctx context.Context, job *batchv1.Job, seen time.Time) error {
	if job.Spec.ActiveDeadlineSeconds != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second)
		defer cancel()
	}
	if isIndexed(job) {
		return h.runIndexed(ctx, job, seen)
	}
	// A deleted Job's run ends with no status written and no other Pod;
	// its last Run is r, or one without a Pod when none was started.
	deleted := func() bool { return errors.Is(context.Cause(ctx), ErrJobDeleted) }
	gone := func(r Run) error {
		h.jobGone(ctx, job, r.Pod)
		if r.Pod == "" {
			r.Err = ErrJobDeleted
		}
		r.Last = true
		h.record(r)
		return nil
	}
	start := metav1.NewTime(seen.Truncate(time.Second))
	if err := h.updateJobStatus(ctx, job, func(s *batchv1.JobStatus) {
		s.StartTime = &start
		s.Active = 1
	}); err != nil {
		if deleted() {
			return gone(Run{Namespace: job.Namespace, Job: job.Name, ExitCode: -1, Seen: seen})
		}
		return err
	}
	backoffLimit := int32(6)
	if job.Spec.BackoffLimit != nil {
		backoffLimit = *job.Spec.BackoffLimit
	}
	var failed int32
	for {
		if deleted() {
			return gone(Run{Namespace: job.Namespace, Job: job.Name, ExitCode: -1, Seen: seen})
		}
		r := h.runPod(ctx, job, seen, noIndex, 0)
		if deleted() {
			return gone(r)
		}
		if r.Err != nil && r.Pod == "" {
			// The Pod was refused (admission, validation): a Job controller
			// records an event and tries again later; the Job stays active.
			h.event(ctx, job, corev1.EventTypeWarning, "FailedCreate", fmt.Sprintf("Error creating: %v", r.Err))
			r.Last = true
			h.record(r)
			return r.Err
		}
		succeeded := r.Err == nil && r.ExitCode == 0
		if !succeeded {
			failed++
		}
		if succeeded || failed > backoffLimit || ctx.Err() != nil {
			err := h.finishJob(ctx, job, succeeded, failed)
			r.Finished, r.Last = time.Now(), true
			h.record(r)
			return err
		}
		h.record(r)
		if err := h.updateJobStatus(ctx, job, func(s *batchv1.JobStatus) { s.Failed = failed }); err != nil && !deleted() {
			return err
		}
		seen = time.Now()
	}
}

// finishJob writes a finished Job's status the way the Job controller does:
// SuccessCriteriaMet then Complete, or FailureTarget then Failed.
func (h *Harness) finishJob(ctx context.Context, job *batchv1.Job, succeeded bool, failed int32) error {
	return h.endJob(ctx, job, succeeded, batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit",
		func(s *batchv1.JobStatus) {
			s.Failed = failed
			if succeeded {
				s.Succeeded = 1
			}
		})
}

// endJob writes a finished Job's status: counts sets its final counts;
// reason and msg say why it failed, unless its deadline passed.
func (h *Harness) endJob(ctx context.Context, job *batchv1.Job, succeeded bool, reason, msg string, counts func(*batchv1.JobStatus)) error {
	// A cancelled harness still finishes the Job, so that no helm waits on it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := metav1.Now()
	return h.updateJobStatus(ctx, job, func(s *batchv1.JobStatus) {
		s.Active = 0
		s.Ready = ptr(int32(0))
		s.Terminating = ptr(int32(0))
		counts(s)
		cond := func(t batchv1.JobConditionType, reason, msg string) batchv1.JobCondition {
			return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: msg,
				LastProbeTime: now, LastTransitionTime: now}
		}
		if succeeded {
			s.CompletionTime = &now
			s.Conditions = append(s.Conditions,
				cond(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods"),
				cond(batchv1.JobComplete, batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods"))
			return
		}
		if ctx.Err() != nil || (job.Spec.ActiveDeadlineSeconds != nil && time.Since(s.StartTime.Time) >= time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second) {
			reason, msg = batchv1.JobReasonDeadlineExceeded, "Job was active longer than specified deadline"
		}
		s.Conditions = append(s.Conditions,
			cond(batchv1.JobFailureTarget, reason, msg),
			cond(batchv1.JobFailed, reason, msg))
	})
}

func (h *Harness) updateJobStatus(ctx context.Context, job *batchv1.Job, change func(*batchv1.JobStatus)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := h.client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != job.UID {
			return fmt.Errorf("Job %s/%s was replaced", job.Namespace, job.Name)
		}
		change(&cur.Status)
		_, err = h.client.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("update status of Job %s/%s: %w", job.Namespace, job.Name, err)
		}
		return nil
	})
}

func (h *Harness) event(ctx context.Context, job *batchv1.Job, kind, reason, msg string) {
	now := metav1.Now()
	_, err := h.client.CoreV1().Events(job.Namespace).Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: job.Name + ".", Namespace: job.Namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "Job", APIVersion: "batch/v1", Namespace: job.Namespace,
			Name: job.Name, UID: job.UID},
		Type: kind, Reason: reason, Message: msg, Source: corev1.EventSource{Component: "job-controller"},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}, metav1.CreateOptions{})
	if err != nil {
		h.logf("node: event for Job %s/%s: %v", job.Namespace, job.Name, err)
	}
}

// runPod creates one Pod for job, of completion index (noIndex for a
// NonIndexed Job) which has failed failures times, and runs its single
// container.
func (h *Harness) runPod(ctx context.Context, job *batchv1.Job, seen time.Time, index int, failures int32) Run {
	r := Run{Namespace: job.Namespace, Job: job.Name, Index: max(index, 0), ExitCode: -1, Seen: seen}
	tmpl := job.Spec.Template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: job.Name + "-",
			Namespace:    job.Namespace,
			Labels:       tmpl.Labels,
			Annotations:  tmpl.Annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID,
				Controller: ptr(true), BlockOwnerDeletion: ptr(true),
			}},
		},
		Spec: tmpl.Spec,
	}
	if index != noIndex {
		setCompletionIndex(pod, job, index, failures)
	}
	pod, err := h.client.CoreV1().Pods(job.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		r.Err = err
		return r
	}
	r.Pod = pod.Name
	h.logf("node: Job %s/%s: Pod %s created", job.Namespace, job.Name, pod.Name)
	if len(pod.Spec.Containers) != 1 || len(pod.Spec.InitContainers) != 0 {
		r.Err = fmt.Errorf("the harness runs Pods of exactly one container and no init containers; Pod %s has %d and %d",
			pod.Name, len(pod.Spec.Containers), len(pod.Spec.InitContainers))
		h.podFailed(ctx, pod, "CreateContainerConfigError", r.Err.Error())
		return r
	}
	c := pod.Spec.Containers[0]

	proc, err := h.prepare(ctx, pod, &c, nil)
	if err != nil {
		// The kubelet leaves such a Pod Pending with the reason; the Job
		// does not fail. The harness fails it so that tests end.
		r.Err = err
		h.podFailed(ctx, pod, "CreateContainerConfigError", err.Error())
		return r
	}
	defer func() { _ = os.RemoveAll(proc.dir) }()
	r.Env = proc.env
	out := &lockedBuffer{}
	proc.cmd.Stdout, proc.cmd.Stderr = out, out

	// The context's end (the Job deleted, its deadline, Stop) sends
	// SIGTERM (prepare); the process group is killed after the Pod's grace
	// period below, WaitDelay being a backstop.
	grace := h.podGrace(pod, nil)
	proc.cmd.WaitDelay = grace + time.Second

	startedAt := metav1.Now()
	if err := proc.cmd.Start(); err != nil {
		r.Err = err
		h.podFailed(ctx, pod, "StartError", err.Error())
		return r
	}
	r.Started = time.Now()
	pid := proc.cmd.Process.Pid
	h.setJobPod(job.UID, index, pod.Name, 0, out)
	exited, killed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(killed)
		select {
		case <-exited:
			return
		case <-ctx.Done():
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-exited:
		case <-t.C:
			h.logf("node: Pod %s/%s: still running %v after SIGTERM: kill -9", pod.Namespace, pod.Name, grace)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}()
	if err := h.updatePodStatus(ctx, pod, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodRunning
		s.StartTime = &startedAt
		s.HostIP, s.PodIP = "127.0.0.1", "127.0.0.1"
		s.Conditions = podConditions(corev1.ConditionTrue, startedAt)
		s.ContainerStatuses = []corev1.ContainerStatus{{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true, Started: ptr(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: startedAt}},
		}}
	}); err != nil {
		h.logf("node: %v", err)
	}
	h.setJobPod(job.UID, index, pod.Name, pid, out)
	waitErr := proc.cmd.Wait()
	h.setJobPod(job.UID, index, pod.Name, 0, out)
	close(exited)
	<-killed
	_ = syscall.Kill(-pid, syscall.SIGKILL) // what it left behind
	r.Exited = time.Now()
	r.Output = out.String()
	r.ExitCode = proc.cmd.ProcessState.ExitCode()
	if ws, ok := proc.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		r.ExitCode = 128 + int(ws.Signal())
	}
	h.logf("node: Pod %s/%s exited %d (%v)", pod.Namespace, pod.Name, r.ExitCode, waitErr)

	phase, reason := corev1.PodSucceeded, "Completed"
	if r.ExitCode != 0 {
		phase, reason = corev1.PodFailed, "Error"
	}
	finishedAt := metav1.Now()
	if err := h.updatePodStatus(context.WithoutCancel(ctx), pod, func(s *corev1.PodStatus) {
		s.Phase = phase
		s.Conditions = podConditions(corev1.ConditionFalse, finishedAt)
		s.ContainerStatuses = []corev1.ContainerStatus{{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Started: ptr(false),
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: int32(r.ExitCode), Reason: reason, StartedAt: startedAt, FinishedAt: finishedAt,
			}},
		}}
	}); err != nil {
		h.logf("node: %v", err)
	}
	return r
}

func podConditions(ready corev1.ConditionStatus, at metav1.Time) []corev1.PodCondition {
	return []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: at},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: at},
		{Type: corev1.ContainersReady, Status: ready, LastTransitionTime: at},
		{Type: corev1.PodReady, Status: ready, LastTransitionTime: at},
	}
}

// podFailed marks a Pod whose container never ran as Failed with reason.
func (h *Harness) podFailed(ctx context.Context, pod *corev1.Pod, reason, msg string) {
	now := metav1.Now()
	err := h.updatePodStatus(context.WithoutCancel(ctx), pod, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodFailed
		s.StartTime = &now
		s.Reason, s.Message = reason, msg
		s.ContainerStatuses = []corev1.ContainerStatus{{
			Name: pod.Spec.Containers[0].Name, Image: pod.Spec.Containers[0].Image, Started: ptr(false),
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}},
		}}
	})
	if err != nil {
		h.logf("node: %v", err)
	}
}

func (h *Harness) updatePodStatus(ctx context.Context, pod *corev1.Pod, change func(*corev1.PodStatus)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := h.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(&cur.Status)
		_, err = h.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("update status of Pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		return nil
	})
}

// runExtras is what a Deployment's Pod that the harness runs adds to a
// Job's container: a network namespace and volumes.
type runExtras struct {
	netns  string // path of the network namespace to enter; "" for the host's
	mounts []bindMount
}

// bindMount is a volume's directory on the host mounted in the container.
type bindMount struct {
	src, dst string
	readOnly bool
}

// process is a container's command, ready to start.
type process struct {
	cmd *exec.Cmd
	env []string // the container's environment
	dir string   // the Pod's private files, removed after the run
}

// prepare resolves the container's environment, user and command and lays
// out its token files; the error is what a kubelet would report.
// extra is nil for a Job's Pod.
func (h *Harness) prepare(ctx context.Context, pod *corev1.Pod, c *corev1.Container, extra *runExtras) (*process, error) {
	if extra == nil {
		extra = &runExtras{}
	}
	env, err := h.containerEnv(ctx, pod, c)
	if err != nil {
		return nil, err
	}
	uid, gid, groups, err := identity(pod, c)
	if err != nil {
		return nil, err
	}
	if len(c.Command) == 0 {
		return nil, fmt.Errorf("container %s has no command; the harness does not know images' entrypoints", c.Name)
	}
	exe, ok := h.cfg.Executables[c.Command[0]]
	if !ok {
		return nil, fmt.Errorf("container %s: executable %q not found in the image", c.Name, c.Command[0])
	}
	lookup := envLookup(env)
	var args []string
	for _, a := range append(c.Command[1:], c.Args...) {
		args = append(args, expand(a, lookup))
	}

	dir, err := os.MkdirTemp(h.workRoot, pod.Name+"-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	mountToken, err := h.writeToken(ctx, pod, filepath.Join(dir, "serviceaccount"))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}

	workDir := c.WorkingDir
	if workDir == "" {
		workDir = "/"
	}
	readOnlyRoot := c.SecurityContext != nil && c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem
	script := mountScript(mountToken, readOnlyRoot, extra.mounts)
	groupList := strconv.Itoa(gid)
	for _, g := range groups {
		groupList += "," + strconv.FormatInt(g, 10)
	}

	argv := append([]string{"unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", exe}, args...)
	if extra.netns != "" {
		argv = append([]string{"nsenter", "--net=" + extra.netns, "--"}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(slices.Clone(env),
		"TOKEN_SRC="+filepath.Join(dir, "serviceaccount"),
		"WORK_DIR="+workDir,
		"RUN_UID="+strconv.Itoa(uid), "RUN_GID="+strconv.Itoa(gid), "RUN_GROUPS="+groupList)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A cancelled run is killed as a kubelet would: SIGTERM, then SIGKILL
	// after the grace period.
	grace := 30 * time.Second
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = grace
	return &process{cmd: cmd, env: env, dir: dir}, nil
}

// mountScript is what runs as root in the new mount namespace: a private
// /run with the token, the volumes, the read-only root, then the container's
// user, with nothing kept. A missing volume mountPath is made on the root
// filesystem (empty, owned by root), as there is no image to hold it.
func mountScript(mountToken, readOnlyRoot bool, mounts []bindMount) string {
	script := "set -e\nmount -n -t tmpfs -o mode=0755 tmpfs /run\n"
	if mountToken {
		script += "mkdir -p " + TokenDir + "\n" +
			"mount -n --bind \"$TOKEN_SRC\" " + TokenDir + "\n" +
			"mount -n -o remount,bind,ro " + TokenDir + "\n"
	}
	for _, m := range mounts {
		script += "mkdir -p " + shellQuote(m.dst) + "\nmount -n --bind " + shellQuote(m.src) + " " + shellQuote(m.dst) + "\n"
		if m.readOnly {
			script += "mount -n -o remount,bind,ro " + shellQuote(m.dst) + "\n"
		}
	}
	if readOnlyRoot {
		script += "mount -n -o remount,bind,ro /\n"
	}
	return script + "cd \"$WORK_DIR\"\nunset TOKEN_SRC WORK_DIR OLDPWD\n" +
		"exec setpriv --reuid=\"$RUN_UID\" --regid=\"$RUN_GID\" --groups=\"$RUN_GROUPS\" " +
		"--no-new-privs --inh-caps=-all --bounding-set=-all -- env -u RUN_UID -u RUN_GID -u RUN_GROUPS \"$@\"\n"
}

// containerEnv is the environment a container gets: HOSTNAME, HOME, PATH,
// the service link variables of the API server and the container's env.
func (h *Harness) containerEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container) ([]string, error) {
	vars := map[string]string{}
	var order []string
	set := func(name, value string) {
		if _, ok := vars[name]; !ok {
			order = append(order, name)
		}
		vars[name] = value
	}
	set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	set("HOSTNAME", pod.Name)
	set("HOME", "/")
	set("KUBERNETES_SERVICE_HOST", h.apiHost)
	set("KUBERNETES_SERVICE_PORT", h.apiPort)
	set("KUBERNETES_SERVICE_PORT_HTTPS", h.apiPort)
	for _, from := range c.EnvFrom {
		data, err := h.envFromSource(ctx, pod.Namespace, from)
		if err != nil {
			return nil, fmt.Errorf("container %s envFrom: %w", c.Name, err)
		}
		for k, v := range data {
			set(from.Prefix+k, v)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, func(n string) (string, bool) { v, ok := vars[n]; return v, ok }))
			continue
		}
		v, ok, err := h.valueFrom(ctx, pod, c, e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("container %s env %s: %w", c.Name, e.Name, err)
		}
		if ok {
			set(e.Name, v)
		}
	}
	env := make([]string, 0, len(order))
	for _, name := range order {
		env = append(env, name+"="+vars[name])
	}
	return env, nil
}

func (h *Harness) envFromSource(ctx context.Context, ns string, from corev1.EnvFromSource) (map[string]string, error) {
	switch {
	case from.SecretRef != nil:
		return h.sourceData(ctx, ns, "Secret", from.SecretRef.Name, from.SecretRef.Optional)
	case from.ConfigMapRef != nil:
		return h.sourceData(ctx, ns, "ConfigMap", from.ConfigMapRef.Name, from.ConfigMapRef.Optional)
	}
	return nil, errors.New("neither secretRef nor configMapRef")
}

// sourceData reads a Secret's or ConfigMap's data; a missing optional one
// has none.
func (h *Harness) sourceData(ctx context.Context, ns, kind, name string, optional *bool) (map[string]string, error) {
	data := map[string]string{}
	var err error
	if kind == "Secret" {
		var s *corev1.Secret
		if s, err = h.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
	} else {
		var cm *corev1.ConfigMap
		if cm, err = h.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			data = cm.Data
		}
	}
	switch {
	case apierrors.IsNotFound(err) && isTrue(optional):
		return nil, nil
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("%s %q not found", strings.ToLower(kind), name)
	case err != nil:
		return nil, fmt.Errorf("get %s %s/%s: %w", kind, ns, name, err)
	}
	return data, nil
}

// keyValue is one key of a Secret or ConfigMap; ok is false for a missing
// optional one.
func (h *Harness) keyValue(ctx context.Context, ns, kind, name, key string, optional *bool) (string, bool, error) {
	data, err := h.sourceData(ctx, ns, kind, name, optional)
	if err != nil || data == nil {
		return "", false, err
	}
	v, ok := data[key]
	if !ok && !isTrue(optional) {
		return "", false, fmt.Errorf("couldn't find key %s in %s %s/%s", key, kind, ns, name)
	}
	return v, ok, nil
}

// valueFrom resolves one env source; ok is false for a missing optional key.
func (h *Harness) valueFrom(ctx context.Context, pod *corev1.Pod, c *corev1.Container, src *corev1.EnvVarSource) (string, bool, error) {
	switch {
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		return h.keyValue(ctx, pod.Namespace, "Secret", ref.Name, ref.Key, ref.Optional)
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		return h.keyValue(ctx, pod.Namespace, "ConfigMap", ref.Name, ref.Key, ref.Optional)
	case src.FieldRef != nil:
		v, err := fieldValue(pod, src.FieldRef.FieldPath)
		return v, err == nil, err
	case src.ResourceFieldRef != nil:
		return resourceValue(c, src.ResourceFieldRef)
	}
	return "", false, errors.New("valueFrom names no source")
}

// fieldValue is the downward API's fieldRef.
func fieldValue(pod *corev1.Pod, path string) (string, error) {
	if key, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return pod.Labels[strings.TrimSuffix(key, "']")], nil
	}
	if key, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return pod.Annotations[strings.TrimSuffix(key, "']")], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "status.podIP", "status.podIPs":
		if pod.Status.PodIP != "" {
			return pod.Status.PodIP, nil
		}
		return "127.0.0.1", nil
	case "status.hostIP", "status.hostIPs":
		return "127.0.0.1", nil
	}
	return "", fmt.Errorf("fieldRef %q is not supported by the harness", path)
}

// resourceValue is the downward API's resourceFieldRef (limits fall back to
// the node's capacity, here the machine's CPUs and no memory limit).
func resourceValue(c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, bool, error) {
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok {
		return "", false, fmt.Errorf("resourceFieldRef %q", ref.Resource)
	}
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		return "0", true, nil
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		return strconv.FormatInt(q.Value(), 10), true, nil
	}
	return strconv.FormatInt((q.MilliValue()+divisor.MilliValue()-1)/divisor.MilliValue(), 10), true, nil
}

// identity is the uid, gid and supplementary groups the container runs as.
func identity(pod *corev1.Pod, c *corev1.Container) (uid, gid int, groups []int64, err error) {
	uid, gid = DefaultUser, DefaultUser
	nonRoot := false
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.RunAsUser != nil {
			uid = int(*psc.RunAsUser)
		}
		if psc.RunAsGroup != nil {
			gid = int(*psc.RunAsGroup)
		}
		nonRoot = isTrue(psc.RunAsNonRoot)
		groups = append(groups, psc.SupplementalGroups...)
		if psc.FSGroup != nil {
			groups = append(groups, *psc.FSGroup)
		}
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = int(*sc.RunAsUser)
		}
		if sc.RunAsGroup != nil {
			gid = int(*sc.RunAsGroup)
		}
		if sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
	}
	if nonRoot && uid == 0 {
		return 0, 0, nil, errors.New("container has runAsNonRoot and image will run as root")
	}
	return uid, gid, groups, nil
}

// writeToken lays out the ServiceAccount's token, the CA and the namespace
// in dir, readable by the container (mode 0644, as the kubelet's default;
// 0640 and group fsGroup when the Pod sets one). It reports false when the
// Pod does not mount a token.
func (h *Harness) writeToken(ctx context.Context, pod *corev1.Pod, dir string) (bool, error) {
	automount := pod.Spec.AutomountServiceAccountToken
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	if automount == nil {
		acct, err := h.client.CoreV1().ServiceAccounts(pod.Namespace).Get(ctx, sa, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Errorf("serviceaccount %s/%s: %w", pod.Namespace, sa, err)
		}
		automount = acct.AutomountServiceAccountToken
	}
	if automount != nil && !*automount {
		return false, nil
	}
	tr, err := h.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: ptr(int64(3607)),
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("token for serviceaccount %s/%s: %w", pod.Namespace, sa, err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return false, err
	}
	mode, group := os.FileMode(0o644), -1
	if psc := pod.Spec.SecurityContext; psc != nil && psc.FSGroup != nil {
		mode, group = 0o640, int(*psc.FSGroup)
	}
	for name, data := range map[string][]byte{
		"token":     []byte(tr.Status.Token),
		"ca.crt":    h.caData,
		"namespace": []byte(pod.Namespace),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			return false, err
		}
		if err := os.Chmod(p, mode); err != nil {
			return false, err
		}
		if group >= 0 {
			if err := os.Chown(p, 0, group); err != nil {
				return false, err
			}
		}
	}
	return true, nil
}

// expand replaces $(NAME) with NAME's value when it is defined, and $$ with
// $, as the kubelet does in commands, args and env values.
func expand(s string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '(':
			if end := strings.IndexByte(s[i+2:], ')'); end >= 0 {
				name := s[i+2 : i+2+end]
				if v, ok := lookup(name); ok {
					b.WriteString(v)
					i += 2 + end
					continue
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func envLookup(env []string) func(string) (string, bool) {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(n string) (string, bool) { v, ok := m[n]; return v, ok }
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func isTrue(b *bool) bool { return b != nil && *b }

func ptr[T any](v T) *T { return &v }
