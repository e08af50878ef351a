package node_test

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iter8-tools/iter8/test/node"
)

// jobRuns returns the harness's runs of Job namespace/job.
func jobRuns(h *node.Harness, namespace, job string) []node.Run {
	var out []node.Run
	for _, r := range h.Runs() {
		if r.Namespace == namespace && r.Job == job {
			out = append(out, r)
		}
	}
	return out
}

// waitLog waits until the log of Pod namespace/pod, which runs, holds want:
// the container's script has got that far.
func waitLog(t *testing.T, h *node.Harness, namespace, pod, want string) {
	t.Helper()
	eventually(t, 30*time.Second, "Pod "+pod+" logging "+want, func(context.Context) (bool, string, error) {
		log, _ := h.Log(namespace, pod)
		return strings.Contains(log, want), "log " + log, nil
	})
}

// A long-running Job's Pod killed (as by the OOM killer or a node's crash)
// fails with 137 and the Job retries it per backoffLimit, as a Job
// controller does: a new Pod runs, and the Job fails once the limit is
// spent.
func TestKillJobPodRetries(t *testing.T) {
	const ns, name = "node-kill", "resumable"
	setupNamespace(t, ns, nil)
	h := startHarness(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	if err := h.KillJobPod(ns, name); err == nil || !strings.Contains(err.Error(), "no running Pod") {
		t.Errorf("KillJobPod before the Job exists = %v; want no running Pod", err)
	}
	job := shJob(name, `echo "attempt in $HOSTNAME"; sleep 600`)
	job.Spec.BackoffLimit = ptr(int32(1))
	if _, err := env.Clientset.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	first, err := h.WaitJobPodRunning(ctx, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	if pod, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, first, metav1.GetOptions{}); err != nil || pod.Status.Phase != corev1.PodRunning {
		t.Fatalf("Pod %s = %v, %v; want Running", first, pod.Status.Phase, err)
	}
	waitLog(t, h, ns, first, "attempt in "+first)
	if err := h.KillJobPod(ns, name); err != nil {
		t.Fatal(err)
	}
	second, err := h.WaitJobPodRunning(ctx, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatalf("after the kill, running Pod %s is the killed one", second)
	}
	got, err := env.Clientset.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Failed != 1 || len(got.Status.Conditions) != 0 {
		t.Errorf("Job status while the second Pod runs = %+v; want 1 failed, no conditions", got.Status)
	}
	pod, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, first, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if term := pod.Status.ContainerStatuses[0].State.Terminated; pod.Status.Phase != corev1.PodFailed || term == nil || term.ExitCode != 137 {
		t.Errorf("killed Pod %s status = %+v; want Failed with exit code 137", first, pod.Status)
	}

	waitLog(t, h, ns, second, "attempt in "+second)
	if err := h.KillJobPod(ns, name); err != nil {
		t.Fatal(err)
	}
	last, err := h.WaitRun(ctx, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	if last.Pod != second || last.ExitCode != 137 {
		t.Errorf("last run = Pod %s, exit %d; want Pod %s, 137", last.Pod, last.ExitCode, second)
	}
	got, err = env.Clientset.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := conditions(got); strings.Join(c, ",") != "FailureTarget,Failed" || got.Status.Failed != 2 ||
		got.Status.Conditions[1].Reason != batchv1.JobReasonBackoffLimitExceeded {
		t.Errorf("Job status = %+v; want FailureTarget,Failed (BackoffLimitExceeded) and 2 failed", got.Status)
	}
	runs := jobRuns(h, ns, name)
	if len(runs) != 2 {
		t.Fatalf("runs = %+v; want 2", runs)
	}
	for i, pod := range []string{first, second} {
		if r := runs[i]; r.Pod != pod || r.ExitCode != 137 || r.Output != "attempt in "+pod+"\n" {
			t.Errorf("run %d = Pod %s, exit %d, output %q; want Pod %s, 137, its attempt", i, r.Pod, r.ExitCode, r.Output, pod)
		}
	}
	if err := h.KillJobPod(ns, name); err == nil || !strings.Contains(err.Error(), "no running Pod") {
		t.Errorf("KillJobPod after the Job failed = %v; want no running Pod", err)
	}
}

// A deleted Job's Pod stops as the garbage collector and a kubelet would
// stop it: SIGTERM, SIGKILL after its grace period, the Pod deleted, and
// no other Pod started, whether the Job goes at once (background) or waits
// for its dependents with a deletionTimestamp (foreground).
func TestDeletedJobStops(t *testing.T) {
	for _, tc := range []struct {
		name        string
		script      string
		grace       int64
		propagation metav1.DeletionPropagation
		wantExit    int
		wantOutput  string
		min, max    time.Duration // from the deletion to the process's exit
	}{{
		name:        "background",
		script:      `trap 'echo terminated; exit 0' TERM; echo started; sleep 600 & wait`,
		grace:       30,
		propagation: metav1.DeletePropagationBackground,
		wantExit:    0, wantOutput: "started\nterminated\n",
		max: 5 * time.Second,
	}, {
		name:        "foreground",
		script:      `trap '' TERM; echo started; sleep 600`,
		grace:       1,
		propagation: metav1.DeletePropagationForeground,
		wantExit:    137, wantOutput: "started\n",
		min: time.Second, max: 6 * time.Second,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ns, name := "node-delete-"+tc.name, "experiment"
			setupNamespace(t, ns, nil)
			h := startHarness(t, ns)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			job := shJob(name, tc.script)
			job.Spec.BackoffLimit = ptr(int32(3))
			job.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr(tc.grace)
			if _, err := env.Clientset.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			pod, err := h.WaitJobPodRunning(ctx, ns, name)
			if err != nil {
				t.Fatal(err)
			}
			waitLog(t, h, ns, pod, "started") // its trap is set

			deleted := time.Now()
			if err := env.Clientset.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &tc.propagation}); err != nil {
				t.Fatal(err)
			}
			r, err := h.WaitRun(ctx, ns, name)
			if err != nil {
				t.Fatal(err)
			}
			took := r.Exited.Sub(deleted)
			if r.Pod != pod || r.ExitCode != tc.wantExit || r.Output != tc.wantOutput || took < tc.min || took > tc.max {
				t.Errorf("run = Pod %s, exit %d, output %q, exited %v after the deletion; want Pod %s, %d, %q, in [%v, %v]",
					r.Pod, r.ExitCode, r.Output, took, pod, tc.wantExit, tc.wantOutput, tc.min, tc.max)
			}
			if runs := jobRuns(h, ns, name); len(runs) != 1 {
				t.Errorf("runs = %+v; want only the stopped one", runs)
			}
			pods, err := env.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(pods.Items) != 0 {
				t.Errorf("Pods after the deletion = %d (%s…); want none", len(pods.Items), pods.Items[0].Name)
			}
			// The foregroundDeletion finalizer goes with the Pod, so the Job goes.
			if got, err := env.Clientset.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("Job after its run ended = %+v, %v; want it gone", got.ObjectMeta, err)
			}
			if err := h.KillJobPod(ns, name); err == nil {
				t.Error("KillJobPod of the deleted Job succeeded; want no running Pod")
			}
		})
	}
}
