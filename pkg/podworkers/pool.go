// Package podworkers runs the workers of a load task as the Pods of an
// Indexed Job, made from the experiment Job's own Pod template, and keeps
// each worker's part in a Secret of its own, keyed by the worker's index
// and owned by the experiment's result: a retried worker replaces its part,
// never adds a second, and uninstalling the experiment removes them all.
package podworkers

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/store"
)

const (
	// annotationStart holds the start of the load a part belongs to (its
	// run's identity): a part of another run is not this run's.
	annotationStart = "iter8.tools/worker-start"
	// PartKey is the part's key in its Secret.
	PartKey = "part.json"
	// startLayout is the start's form on the command line and in parts.
	startLayout = time.RFC3339Nano
)

// JobName is the name of the Indexed Job of an experiment's workers: one
// load task runs at a time, so one name serves every task and loop.
func JobName(release string) string { return release + "-workers" }

// PartName is the name of the Secret holding worker index's part.
func PartName(release string, index int) string {
	return release + "-part-" + strconv.Itoa(index)
}

// Defaults of Pool.
const (
	// DefaultLead is how far ahead of the Job's creation the workers' load
	// starts, so that Pods started within it begin together.
	DefaultLead = 5 * time.Second
	// DefaultRetries is how often a worker's Pod is retried after it failed
	// (backoffLimitPerIndex).
	DefaultRetries = 2
	// GraceSeconds is a worker Pod's terminationGracePeriodSeconds: time
	// to store its part after SIGTERM (load.PutPart's bound), and a margin.
	GraceSeconds = 40
	pollInterval = 500 * time.Millisecond
	apiTimeout   = 30 * time.Second
	// goneTimeout bounds the wait for the last run's worker Job to go with
	// its Pods, which have GraceSeconds to stop.
	goneTimeout = 2 * time.Minute
	// startTimeout bounds the wait for a first worker Pod to run.
	startTimeout = 2 * time.Minute
)

// Pool runs workers as an Indexed Job; it implements experiment.WorkerPool.
type Pool struct {
	Client kubernetes.Interface
	// Namespace and Release name the experiment; Revision is its run's.
	Namespace, Release string
	Revision           int
	// Job is the experiment's own Job, whose Pod template the workers' Pods
	// copy (image, security context, resources, env).
	Job string
	// Account is the workers' ServiceAccount: it may only read the spec and
	// write this experiment's parts.
	Account string
	// Lead and Retries default to DefaultLead and DefaultRetries.
	Lead    time.Duration
	Retries *int32
	// Now is the clock; nil is the wall clock.
	Now func() time.Time
}

var _ experiment.WorkerPool = (*Pool)(nil)

// Run creates the Indexed Job, waits for it to end and reads each worker's
// part of this run. The Job is deleted when Run returns; the parts stay,
// owned by the result, until the next run replaces them.
func (p *Pool) Run(ctx context.Context, work experiment.Work) ([]experiment.WorkerOutcome, error) {
	log := cmp.Or(work.Log, slog.New(slog.DiscardHandler))
	jobs := p.Client.BatchV1().Jobs(p.Namespace)
	own, err := jobs.Get(ctx, p.Job, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("workers: read the experiment's job %s for its pod template: %w", p.Job, err)
	}
	owner, err := p.resultOwner(ctx)
	if err != nil {
		return nil, err
	}
	name := JobName(p.Release)
	if err := p.removeJob(ctx, name); err != nil {
		return nil, err
	}
	start := p.now().Add(p.lead()).UTC()
	job, err := p.WorkerJob(own, owner, work, start)
	if err != nil {
		return nil, err
	}
	// Not cut short by a cancel: a Job the server made while the client
	// gave up would send load with no one to delete it.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
	created, err := jobs.Create(cctx, job, metav1.CreateOptions{})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("workers: create job %s: %w", name, err)
	}
	defer func() {
		// A cancelled run still removes its workers, and only its own.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
		defer cancel()
		err := jobs.Delete(dctx, name, metav1.DeleteOptions{
			PropagationPolicy: ptr(metav1.DeletePropagationBackground),
			Preconditions:     &metav1.Preconditions{UID: &created.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			log.Warn("could not delete the workers' job", "job", name, "error", err.Error())
		}
	}()
	log.Info("workers started", "job", name, "workers", work.Workers, "start", start.Format(time.RFC3339))
	status, err := p.wait(ctx, created, log)
	if err != nil {
		return nil, err
	}
	failed, err := ParseIndexes(ptrValue(status.FailedIndexes), work.Workers)
	if err != nil {
		return nil, fmt.Errorf("workers: job %s: failedIndexes: %w", name, err)
	}
	out := make([]experiment.WorkerOutcome, work.Workers)
	for _, w := range failed {
		// A part stored by a Pod of the index that later failed for good
		// (on SIGTERM, say) is not counted: the index sent its share in
		// none of its tries.
		out[w].Err = fmt.Errorf("worker %d failed: its pod failed %d times", w, p.retries()+1)
	}
	for w := range out {
		if out[w].Err == nil {
			out[w].Part, out[w].Err = p.readPart(ctx, w, start)
		}
	}
	if len(failed) == 0 && !isComplete(status) {
		return out, fmt.Errorf("workers: job %s failed: %s", name, failureMessage(status))
	}
	return out, nil
}

// WorkerJob is the Indexed Job of work's workers, made from the
// experiment's Job own (as stored: the API server's defaults filled in),
// owned by owner, with the load's start.
func (p *Pool) WorkerJob(own *batchv1.Job, owner metav1.OwnerReference, work experiment.Work, start time.Time) (*batchv1.Job, error) {
	tmpl := own.Spec.Template.DeepCopy()
	if len(tmpl.Spec.Containers) == 0 || len(tmpl.Spec.Containers[0].Command) == 0 {
		return nil, fmt.Errorf("workers: job %s has no container command to run the workers with", own.Name)
	}
	// The Job controller's labels select the experiment's own Pods, and
	// the revision's label finds the run's Pod for its log.
	for _, l := range []string{"batch.kubernetes.io/controller-uid", "controller-uid", "batch.kubernetes.io/job-name", "job-name", store.LabelRevision} {
		delete(tmpl.Labels, l)
	}
	labels := map[string]string{store.LabelExperiment: p.Release, store.LabelManagedBy: "iter8", store.LabelWorker: "true"}
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	maps.Copy(tmpl.Labels, labels)
	tmpl.Spec.ServiceAccountName = p.Account
	tmpl.Spec.DeprecatedServiceAccount = ""
	tmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	// Time to store a part after SIGTERM, not a long run's grace.
	tmpl.Spec.TerminationGracePeriodSeconds = ptr(int64(GraceSeconds))
	c := &tmpl.Spec.Containers[0]
	c.Args = nil
	c.Command = []string{c.Command[0], "run",
		"--namespace", p.Namespace,
		"--experiment", p.Release,
		"--revision", strconv.Itoa(max(p.Revision, 1)),
		"--worker-task", strconv.Itoa(work.Task),
		"--worker-start", start.Format(startLayout),
		"--worker-owner", string(owner.UID),
	}
	n := int32(work.Workers)
	retries := p.retries()
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            JobName(p.Release),
			Namespace:       p.Namespace,
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{owner},
		},
		Spec: batchv1.JobSpec{
			CompletionMode:       ptr(batchv1.IndexedCompletion),
			Completions:          &n,
			Parallelism:          &n,
			BackoffLimitPerIndex: &retries,
			// backoffLimit must be set high with backoffLimitPerIndex: the
			// per-index limit is the one that counts.
			BackoffLimit: ptr(int32(max(int64(n)*int64(retries+1), 6))),
			// A worker's next Pod starts once the last has ended, so that
			// two Pods of one worker never send at once, nor store parts.
			PodReplacementPolicy: ptr(batchv1.Failed),
			Template:             *tmpl,
		},
	}, nil
}

// resultOwner is an owner reference to the experiment's result Secret.
func (p *Pool) resultOwner(ctx context.Context) (metav1.OwnerReference, error) {
	name := store.ResultSecretName(p.Release)
	sec, err := p.Client.CoreV1().Secrets(p.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return metav1.OwnerReference{}, fmt.Errorf("workers: get secret %s to own the workers: %w", name, err)
	}
	return metav1.OwnerReference{APIVersion: "v1", Kind: "Secret", Name: name, UID: sec.UID}, nil
}

// removeJob deletes an earlier run's worker Job (its run died before it
// could) and waits until it is gone with its Pods (foreground deletion),
// so that no earlier worker still sends load or stores a part.
func (p *Pool) removeJob(ctx context.Context, name string) error {
	jobs := p.Client.BatchV1().Jobs(p.Namespace)
	err := jobs.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationForeground)})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("workers: delete the last run's job %s: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, goneTimeout)
	defer cancel()
	for {
		_, err := jobs.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return fmt.Errorf("workers: the last run's job %s is still there: %w", name, err)
		}
	}
}

// wait polls the Job until it is complete or failed. It gives up when
// the Job is gone or replaced, when the run may not read it, and when no
// Pod of it has started within startTimeout after the load's start
// (refused Pods, an image not pulled, no room in the cluster).
func (p *Pool) wait(ctx context.Context, created *batchv1.Job, log *slog.Logger) (*batchv1.JobStatus, error) {
	jobs := p.Client.BatchV1().Jobs(p.Namespace)
	name := created.Name
	startBy := p.now().Add(p.lead() + startTimeout)
	for {
		job, err := jobs.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) || err == nil && job.UID != created.UID:
			return nil, fmt.Errorf("workers: job %s was deleted before it ended", name)
		case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
			return nil, fmt.Errorf("workers: read job %s: %w", name, err)
		case err == nil && (isComplete(&job.Status) || isFailed(&job.Status)):
			return &job.Status, nil
		case err == nil && !started(&job.Status) && p.now().After(startBy):
			return nil, fmt.Errorf("workers: no pod of job %s started within %v of the load's start (kubectl describe job %s says why)", name, startTimeout, name)
		case err != nil && ctx.Err() == nil:
			log.Warn("could not read the workers' job", "job", name, "error", err.Error())
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return nil, fmt.Errorf("workers: waiting for job %s: %w", name, err)
		}
	}
}

// started tells whether a Pod of the Job has run (is running or ended).
func started(s *batchv1.JobStatus) bool {
	return s.Succeeded > 0 || s.Failed > 0 || ptrValue(s.Ready) > 0 || s.CompletedIndexes != ""
}

// readPart reads worker w's part of the run that started at start. A
// missing part, or one of another run, is an error naming the worker.
func (p *Pool) readPart(ctx context.Context, w int, start time.Time) ([]byte, error) {
	name := PartName(p.Release, w)
	sec, err := p.Client.CoreV1().Secrets(p.Namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) || err == nil && sec.Annotations[annotationStart] != start.Format(startLayout):
		return nil, fmt.Errorf("worker %d ended without storing its part (secret %s)", w, name)
	case err != nil:
		return nil, fmt.Errorf("worker %d: read its part, secret %s: %w", w, name, err)
	}
	return sec.Data[PartKey], nil
}

func isComplete(s *batchv1.JobStatus) bool { return hasCondition(s, batchv1.JobComplete) }
func isFailed(s *batchv1.JobStatus) bool   { return hasCondition(s, batchv1.JobFailed) }

func hasCondition(s *batchv1.JobStatus, t batchv1.JobConditionType) bool {
	for _, c := range s.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func failureMessage(s *batchv1.JobStatus) string {
	for _, c := range s.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return strings.TrimSpace(c.Reason + ": " + c.Message)
		}
	}
	return "no reason given"
}

// ParseIndexes reads a Job's compressed index list ("0-2,4"), each index
// below n.
func ParseIndexes(s string, n int) ([]int, error) {
	var out []int
	if s == "" {
		return nil, nil
	}
	for _, r := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= n {
			return nil, fmt.Errorf("%q is not a list of indexes below %d", s, n)
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	return out, nil
}

func (p *Pool) lead() time.Duration {
	if p.Lead > 0 {
		return p.Lead
	}
	return DefaultLead
}

func (p *Pool) retries() int32 {
	if p.Retries != nil {
		return *p.Retries
	}
	return DefaultRetries
}

func (p *Pool) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func ptr[T any](v T) *T { return &v }

func ptrValue[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
