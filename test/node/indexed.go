package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// noIndex is the completion index of a NonIndexed Job's Pod, and "any
// index" where an index is asked for.
const noIndex = -1

// completionIndexEnv is the variable through which the Job controller gives
// an Indexed Job's containers their completion index.
const completionIndexEnv = "JOB_COMPLETION_INDEX"

func isIndexed(job *batchv1.Job) bool {
	return job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
}

// KillJobIndexPod is KillJobPod for the running Pod of completion index
// index of an Indexed Job: the kill is a failure of that index, which is
// retried as backoffLimitPerIndex (or else backoffLimit) says.
func (h *Harness) KillJobIndexPod(namespace, job string, index int) error {
	if index < 0 {
		return fmt.Errorf("Job %s/%s: completion index %d is negative", namespace, job, index)
	}
	return h.killJobPod(namespace, job, index)
}

// WaitJobIndexRunning is WaitJobPodRunning for the Pod of completion index
// index of an Indexed Job.
func (h *Harness) WaitJobIndexRunning(ctx context.Context, namespace, job string, index int) (string, error) {
	if index < 0 {
		return "", fmt.Errorf("Job %s/%s: completion index %d is negative", namespace, job, index)
	}
	return h.waitJobPodRunning(ctx, namespace, job, index)
}

// setCompletionIndex makes pod the Pod of index, as the Job controller
// does: named <job>-<index>-<random>, the index in an annotation and a
// label, and JOB_COMPLETION_INDEX read from the annotation (fieldRef) by
// every container that does not set it. With backoffLimitPerIndex, an
// annotation counts the index's failures so far.
func setCompletionIndex(pod *corev1.Pod, job *batchv1.Job, index int, failures int32) {
	i := strconv.Itoa(index)
	pod.GenerateName = fmt.Sprintf("%s-%d-", job.Name, index)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[batchv1.JobCompletionIndexAnnotation] = i
	if job.Spec.BackoffLimitPerIndex != nil {
		pod.Annotations[batchv1.JobIndexFailureCountAnnotation] = strconv.Itoa(int(failures))
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[batchv1.JobCompletionIndexAnnotation] = i
	ref := &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
		APIVersion: "v1", FieldPath: "metadata.annotations['" + batchv1.JobCompletionIndexAnnotation + "']",
	}}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for k := range cs {
			c := &cs[k]
			if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == completionIndexEnv }) {
				c.Env = append(c.Env, corev1.EnvVar{Name: completionIndexEnv, ValueFrom: ref})
			}
		}
	}
}

// indexedRun is the state of an Indexed Job's run, as the Job controller
// keeps it.
type indexedRun struct {
	pending           []int         // indexes to run, lowest first
	failures          map[int]int32 // failed Pods per index
	completed, failed []int         // indexes done for good, sorted
	succeededPods     int32
	failedPods        int32
}

// status writes the run's counts; active is the number of running Pods and
// perIndex says whether the Job has failedIndexes.
func (ir *indexedRun) status(s *batchv1.JobStatus, active int, perIndex bool) {
	s.Active = int32(active)
	// A running Pod is ready: Job Pods here have no probes.
	s.Ready = ptr(int32(active))
	s.Succeeded, s.Failed = ir.succeededPods, ir.failedPods
	s.CompletedIndexes = formatIndexes(ir.completed)
	if perIndex {
		s.FailedIndexes = ptr(formatIndexes(ir.failed))
	}
}

// runIndexed runs an Indexed Job: indexes 0..completions-1, at most
// parallelism Pods at once, lowest pending index first. A failed index is
// retried until it has failed backoffLimitPerIndex+1 times (then it is
// failed for good and the others go on), or, without backoffLimitPerIndex,
// until the Job has backoffLimit+1 failures (then the running Pods are
// stopped). The Job completes when every index has, and fails once no Pod
// runs otherwise.
func (h *Harness) runIndexed(ctx context.Context, job *batchv1.Job, seen time.Time) error {
	completions, parallelism := 1, 1
	if job.Spec.Completions != nil {
		completions = int(*job.Spec.Completions)
	}
	if job.Spec.Parallelism != nil {
		parallelism = int(*job.Spec.Parallelism)
	}
	backoffLimit := int32(6)
	if job.Spec.BackoffLimit != nil {
		backoffLimit = *job.Spec.BackoffLimit
	}
	perIndex := job.Spec.BackoffLimitPerIndex
	deleted := func() bool { return errors.Is(context.Cause(ctx), ErrJobDeleted) }
	if parallelism < 1 {
		h.logf("node: Job %s/%s: parallelism 0: no Pods to run", job.Namespace, job.Name)
		return nil
	}

	ir := &indexedRun{failures: map[int]int32{}}
	for i := range completions {
		ir.pending = append(ir.pending, i)
	}
	// Pods are stopped on their own (SIGTERM, then SIGKILL) when the Job's
	// backoffLimit is spent, as the Job controller deletes them.
	podCtx, stopPods := context.WithCancel(ctx)
	defer stopPods()
	type ended struct {
		index int
		run   Run
	}
	done := make(chan ended)
	running := 0
	stop := false // start no more Pods
	// failing: the Job's backoffLimit is spent or its deadline passed; its
	// Pods are stopped and, as the Job controller deletes them, count as
	// failed whatever their exit.
	failing := false
	// at is when the harness saw that the Pods are due: the Job's start,
	// then the end of the Pod that freed their slot.
	launch := func(at time.Time) {
		for !stop && running < parallelism && len(ir.pending) > 0 {
			i := ir.pending[0]
			ir.pending = ir.pending[1:]
			running++
			failures := ir.failures[i]
			go func() { done <- ended{i, h.runPod(podCtx, job, at, i, failures)} }()
		}
	}

	start := metav1.NewTime(seen.Truncate(time.Second))
	if err := h.updateJobStatus(ctx, job, func(s *batchv1.JobStatus) {
		s.StartTime = &start
		ir.status(s, min(parallelism, completions), perIndex != nil)
	}); err != nil {
		if deleted() {
			h.jobGone(ctx, job)
			h.record(Run{Namespace: job.Namespace, Job: job.Name, ExitCode: -1, Seen: seen, Err: ErrJobDeleted, Last: true})
			return nil
		}
		return err
	}

	var (
		refused error
		stopped []string // Pods that ended after the Job's deletion
		r       Run
	)
	launch(seen)
	for running > 0 {
		e := <-done
		running--
		r = e.run
		switch {
		case deleted():
			stop = true
			stopped = append(stopped, r.Pod)
		case failing || ctx.Err() != nil:
			failing, stop = true, true
			if r.Pod != "" {
				ir.failedPods++
			}
		case r.Err != nil && r.Pod == "":
			// As for a NonIndexed Job: an event, and the Job stays active.
			h.event(ctx, job, corev1.EventTypeWarning, "FailedCreate", fmt.Sprintf("Error creating: %v", r.Err))
			stop, refused = true, r.Err
		case r.Err == nil && r.ExitCode == 0:
			ir.succeededPods++
			ir.completed = insertIndex(ir.completed, e.index)
		default:
			ir.failedPods++
			ir.failures[e.index]++
			switch {
			case ir.failedPods > backoffLimit:
				failing, stop = true, true
				stopPods()
			case perIndex != nil && ir.failures[e.index] > *perIndex:
				ir.failed = insertIndex(ir.failed, e.index)
			default:
				ir.pending = insertIndex(ir.pending, e.index)
			}
		}
		launch(time.Now())
		if running == 0 {
			break
		}
		h.record(r)
		if ctx.Err() == nil {
			if err := h.updateJobStatus(ctx, job, func(s *batchv1.JobStatus) { ir.status(s, running, perIndex != nil) }); err != nil && !deleted() {
				h.logf("node: Job %s/%s: %v", job.Namespace, job.Name, err)
			}
		}
	}

	r.Last = true
	switch {
	case deleted():
		h.jobGone(ctx, job, stopped...)
		if r.Pod == "" {
			r.Err = ErrJobDeleted
		}
		h.record(r)
		return nil
	case refused != nil:
		h.record(r)
		return refused
	}
	reason, msg := batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit"
	if ir.failedPods <= backoffLimit && len(ir.failed) > 0 {
		reason, msg = batchv1.JobReasonFailedIndexes, "Job has failed indexes"
	}
	err := h.endJob(ctx, job, len(ir.completed) == completions, reason, msg,
		func(s *batchv1.JobStatus) { ir.status(s, 0, perIndex != nil) })
	r.Finished = time.Now()
	h.record(r)
	return err
}

// insertIndex adds i to the sorted indexes s, once.
func insertIndex(s []int, i int) []int {
	at, found := slices.BinarySearch(s, i)
	if found {
		return s
	}
	return slices.Insert(s, at, i)
}

// formatIndexes writes sorted indexes in the Job status's compressed form:
// "0-2,4,6-7".
func formatIndexes(s []int) string {
	var parts []string
	for k := 0; k < len(s); {
		first := s[k]
		for k+1 < len(s) && s[k+1] == s[k]+1 {
			k++
		}
		if s[k] == first {
			parts = append(parts, strconv.Itoa(first))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", first, s[k]))
		}
		k++
	}
	return strings.Join(parts, ",")
}
