package node_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iter8-tools/iter8/test/node"
)

// indexedJob is shJob in Indexed completion mode.
func indexedJob(name, script string, completions, parallelism int32) *batchv1.Job {
	job := shJob(name, script)
	job.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
	job.Spec.Completions = ptr(completions)
	job.Spec.Parallelism = ptr(parallelism)
	return job
}

// maxOverlap is the largest number of runs whose processes ran at once.
func maxOverlap(runs []node.Run) int {
	most := 0
	for _, r := range runs {
		n := 0
		for _, o := range runs {
			if !o.Started.After(r.Started) && o.Exited.After(r.Started) {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// indexesRun is the completion index of every run, in the order they
// finished, sorted.
func indexesRun(runs []node.Run) []int {
	var out []int
	for _, r := range runs {
		out = append(out, r.Index)
	}
	slices.Sort(out)
	return out
}

// An Indexed Job runs each index once, at most parallelism at a time, each
// Pod named and labelled as the Job controller does and told its index.
func TestIndexedJobCompletes(t *testing.T) {
	const ns, name = "node-indexed", "shards"
	setupNamespace(t, ns, nil)
	h := startHarness(t, ns)
	job := indexedJob(name, `echo "index $JOB_COMPLETION_INDEX"; sleep 0.3`, 4, 2)
	last, got := runJob(t, h, ns, job)

	if !last.Last || last.ExitCode != 0 {
		t.Errorf("last run = %+v; want exit 0, Last", last)
	}
	if c := conditions(got); strings.Join(c, ",") != "SuccessCriteriaMet,Complete" || got.Status.CompletionTime == nil {
		t.Errorf("Job conditions = %v, completionTime %v; want SuccessCriteriaMet,Complete and a time", c, got.Status.CompletionTime)
	}
	if s := got.Status; s.CompletedIndexes != "0-3" || s.Succeeded != 4 || s.Failed != 0 || s.Active != 0 || s.FailedIndexes != nil {
		t.Errorf("Job status = completed %q, succeeded %d, failed %d, active %d, failedIndexes %v; want 0-3, 4, 0, 0, nil",
			s.CompletedIndexes, s.Succeeded, s.Failed, s.Active, s.FailedIndexes)
	}
	runs := jobRuns(h, ns, name)
	if got := indexesRun(runs); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Fatalf("indexes run = %v; want each of 0-3 once", got)
	}
	if n := maxOverlap(runs); n > 2 {
		t.Errorf("%d Pods ran at once; want at most 2 (parallelism)", n)
	}
	for _, r := range runs {
		i := fmt.Sprint(r.Index)
		if !regexp.MustCompile(`^` + name + `-` + i + `-[a-z0-9]{5}$`).MatchString(r.Pod) {
			t.Errorf("index %d: Pod name %q; want %s-%s-<5 random>", r.Index, r.Pod, name, i)
		}
		if r.Output != "index "+i+"\n" || !slices.Contains(r.Env, "JOB_COMPLETION_INDEX="+i) {
			t.Errorf("index %d: output %q, env %v; want its index", r.Index, r.Output, r.Env)
		}
		pod, err := env.Clientset.CoreV1().Pods(ns).Get(context.Background(), r.Pod, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		const key = batchv1.JobCompletionIndexAnnotation
		if pod.Annotations[key] != i || pod.Labels[key] != i || pod.Status.Phase != corev1.PodSucceeded {
			t.Errorf("Pod %s: annotation %q, label %q, phase %s; want %s, %s, Succeeded",
				r.Pod, pod.Annotations[key], pod.Labels[key], pod.Status.Phase, i, i)
		}
	}
}

// With backoffLimitPerIndex an index that keeps failing is retried that
// many times and then failed for good, while the others complete; the Job
// then fails with FailedIndexes.
func TestIndexedJobFailedIndex(t *testing.T) {
	const ns, name = "node-indexed-fail", "shards"
	setupNamespace(t, ns, nil)
	h := startHarness(t, ns)
	job := indexedJob(name, `echo "index $JOB_COMPLETION_INDEX"; test "$JOB_COMPLETION_INDEX" != 2`, 4, 2)
	job.Spec.BackoffLimitPerIndex = ptr(int32(1))
	job.Spec.BackoffLimit = nil // defaulted to no job-wide limit
	last, got := runJob(t, h, ns, job)

	if !last.Last {
		t.Errorf("last run = %+v; want Last", last)
	}
	if c := conditions(got); strings.Join(c, ",") != "FailureTarget,Failed" || got.Status.Conditions[1].Reason != batchv1.JobReasonFailedIndexes {
		t.Errorf("Job conditions = %+v; want FailureTarget,Failed (FailedIndexes)", got.Status.Conditions)
	}
	if s := got.Status; s.CompletedIndexes != "0-1,3" || s.FailedIndexes == nil || *s.FailedIndexes != "2" ||
		s.Succeeded != 3 || s.Failed != 2 || s.Active != 0 {
		t.Errorf("Job status = completed %q, failedIndexes %v, succeeded %d, failed %d, active %d; want 0-1,3, 2, 3, 2, 0",
			s.CompletedIndexes, s.FailedIndexes, s.Succeeded, s.Failed, s.Active)
	}
	runs := jobRuns(h, ns, name)
	if got := indexesRun(runs); !slices.Equal(got, []int{0, 1, 2, 2, 3}) {
		t.Errorf("indexes run = %v; want 0, 1, 3 once and 2 twice", got)
	}
	for _, r := range runs {
		if want := r.Index != 2; (r.ExitCode == 0) != want {
			t.Errorf("index %d: Pod %s exited %d", r.Index, r.Pod, r.ExitCode)
		}
	}
}

// Without backoffLimitPerIndex, failures of all indexes count against the
// Job's backoffLimit; once it is spent the running Pods are stopped and
// count as failed, and the Job fails.
func TestIndexedJobBackoffLimit(t *testing.T) {
	const ns, name = "node-indexed-backoff", "shards"
	setupNamespace(t, ns, nil)
	h := startHarness(t, ns)
	job := indexedJob(name, `echo "index $JOB_COMPLETION_INDEX"
if [ "$JOB_COMPLETION_INDEX" = 0 ]; then exit 1; fi; exec sleep 600`, 3, 2)
	job.Spec.BackoffLimit = ptr(int32(1))
	_, got := runJob(t, h, ns, job)

	if c := conditions(got); strings.Join(c, ",") != "FailureTarget,Failed" || got.Status.Conditions[1].Reason != batchv1.JobReasonBackoffLimitExceeded {
		t.Errorf("Job conditions = %+v; want FailureTarget,Failed (BackoffLimitExceeded)", got.Status.Conditions)
	}
	runs := jobRuns(h, ns, name)
	if got := indexesRun(runs); !slices.Equal(got, []int{0, 0, 1}) {
		t.Errorf("indexes run = %v; want 0 twice and 1 stopped, no 2", got)
	}
	if s := got.Status; s.CompletedIndexes != "" || s.FailedIndexes != nil || s.Succeeded != 0 || s.Failed != 3 || s.Active != 0 {
		t.Errorf("Job status = completed %q, failedIndexes %v, succeeded %d, failed %d, active %d; want none, nil, 0, 3, 0",
			s.CompletedIndexes, s.FailedIndexes, s.Succeeded, s.Failed, s.Active)
	}
}

// A running index's Pod killed is a failure of that index alone: it is
// retried (its Pod annotated with one failure) and the Job completes.
func TestKillJobIndexPod(t *testing.T) {
	const ns, name = "node-indexed-kill", "shards"
	setupNamespace(t, ns, nil)
	h := startHarness(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	if err := h.KillJobIndexPod(ns, name, 1); err == nil {
		t.Error("KillJobIndexPod before the Job exists succeeded; want no running Pod")
	}
	// Index 1's first Pod runs until it is killed; its retry ends at once.
	job := indexedJob(name, `echo "index $JOB_COMPLETION_INDEX failures $FAILURES"
if [ "$JOB_COMPLETION_INDEX" = 1 ] && [ "$FAILURES" = 0 ]; then exec sleep 600; fi`, 3, 3)
	job.Spec.BackoffLimitPerIndex = ptr(int32(1))
	job.Spec.BackoffLimit = nil
	c := &job.Spec.Template.Spec.Containers[0]
	c.Env = append(c.Env, corev1.EnvVar{Name: "FAILURES", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
		FieldPath: "metadata.annotations['" + batchv1.JobIndexFailureCountAnnotation + "']",
	}}})
	if _, err := env.Clientset.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	first, err := h.WaitJobIndexRunning(ctx, ns, name, 1)
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, h, ns, first, "index 1 failures 0")
	if err := h.KillJobIndexPod(ns, name, 1); err != nil {
		t.Fatal(err)
	}
	last, err := h.WaitRun(ctx, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	got, err := env.Clientset.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := conditions(got); strings.Join(c, ",") != "SuccessCriteriaMet,Complete" {
		t.Errorf("Job conditions = %v; want SuccessCriteriaMet,Complete", c)
	}
	if s := got.Status; s.CompletedIndexes != "0-2" || s.FailedIndexes == nil || *s.FailedIndexes != "" || s.Succeeded != 3 || s.Failed != 1 {
		t.Errorf("Job status = completed %q, failedIndexes %v, succeeded %d, failed %d; want 0-2, empty, 3, 1",
			s.CompletedIndexes, s.FailedIndexes, s.Succeeded, s.Failed)
	}
	var ones []node.Run
	for _, r := range jobRuns(h, ns, name) {
		if r.Index == 1 {
			ones = append(ones, r)
		}
	}
	if len(ones) != 2 || ones[0].Pod != first || ones[0].ExitCode != 137 ||
		ones[1].ExitCode != 0 || ones[1].Output != "index 1 failures 1\n" {
		t.Errorf("runs of index 1 = %+v; want %s killed (137), then one that completes after 1 failure", ones, first)
	}
	if !last.Last {
		t.Errorf("last run = %+v; want Last", last)
	}
	if err := h.KillJobIndexPod(ns, name, 1); err == nil || !strings.Contains(err.Error(), "no running Pod of index 1") {
		t.Errorf("KillJobIndexPod after the Job completed = %v; want no running Pod of index 1", err)
	}
}

// A deleted Indexed Job's running Pods all stop as a NonIndexed Job's Pod
// does (SIGTERM, the Pods deleted) and no other index starts.
func TestDeletedIndexedJobStops(t *testing.T) {
	const ns, name = "node-indexed-delete", "shards"
	setupNamespace(t, ns, nil)
	h := startHarness(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	job := indexedJob(name, `trap 'echo terminated; exit 0' TERM; echo started; sleep 600 & wait`, 3, 2)
	if _, err := env.Clientset.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		pod, err := h.WaitJobIndexRunning(ctx, ns, name, i)
		if err != nil {
			t.Fatal(err)
		}
		waitLog(t, h, ns, pod, "started") // its trap is set
	}
	if err := env.Clientset.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationForeground)}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.WaitRun(ctx, ns, name); err != nil {
		t.Fatal(err)
	}
	runs := jobRuns(h, ns, name)
	if got := indexesRun(runs); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("indexes run = %v; want 0 and 1, stopped, and no 2", got)
	}
	for _, r := range runs {
		if r.ExitCode != 0 || r.Output != "started\nterminated\n" {
			t.Errorf("index %d: exit %d, output %q; want 0 after SIGTERM", r.Index, r.ExitCode, r.Output)
		}
	}
	eventually(t, 10*time.Second, "the Job and its Pods gone", func(ctx context.Context) (bool, string, error) {
		pods, err := env.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, "", err
		}
		_, err = env.Clientset.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		return len(pods.Items) == 0 && apierrors.IsNotFound(err), fmt.Sprintf("%d Pods, Job: %v", len(pods.Items), err), nil
	})
}

func TestFormatIndexes(t *testing.T) {
	for _, tc := range []struct {
		in   []int
		want string
	}{
		{nil, ""},
		{[]int{3}, "3"},
		{[]int{0, 1, 2, 4, 6, 7}, "0-2,4,6-7"},
		{[]int{1, 3, 5}, "1,3,5"},
	} {
		if got := node.FormatIndexes(tc.in); got != tc.want {
			t.Errorf("FormatIndexes(%v) = %q; want %q", tc.in, got, tc.want)
		}
	}
}
