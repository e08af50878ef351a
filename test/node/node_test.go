package node_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iter8-tools/iter8/test/node"
	"github.com/iter8-tools/iter8/test/testbed"
)

var env *testbed.Env

func TestMain(m *testing.M) {
	os.Exit(testbed.Main(m, func(e *testbed.Env) { env = e }, testbed.WithServiceAccountAdmission()))
}

func startHarness(t *testing.T, ns string) *node.Harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := node.Start(ctx, node.Config{
		Admin:       env.Config,
		Executables: map[string]string{"sh": "/bin/sh"},
		Namespace:   ns,
		Logf:        t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	return h
}

func setupNamespace(t *testing.T, ns string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	c := env.Clientset
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "runner"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// shJob is a Job of one restricted container running script with sh.
func shJob(name, script string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			BackoffLimit: new(int32),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy:      corev1.RestartPolicyNever,
				ServiceAccountName: "runner",
				SecurityContext: &corev1.PodSecurityContext{
					RunAsNonRoot:   ptr(true),
					RunAsUser:      ptr(int64(65532)),
					RunAsGroup:     ptr(int64(65532)),
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
				Containers: []corev1.Container{{
					Name: "main", Image: "example.invalid/sh:1",
					Command: []string{"sh", "-c", script},
					SecurityContext: &corev1.SecurityContext{
						AllowPrivilegeEscalation: ptr(false),
						ReadOnlyRootFilesystem:   ptr(true),
						Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					},
				}},
			}},
		},
	}
}

func ptr[T any](v T) *T { return &v }

func runJob(t *testing.T, h *node.Harness, ns string, job *batchv1.Job) (node.Run, *batchv1.Job) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := env.Clientset.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := h.WaitRun(ctx, ns, job.Name)
	if err != nil {
		t.Fatal(err)
	}
	got, err := env.Clientset.BatchV1().Jobs(ns).Get(ctx, job.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r, got
}

func conditions(job *batchv1.Job) []string {
	var out []string
	for _, c := range job.Status.Conditions {
		if c.Status == corev1.ConditionTrue {
			out = append(out, string(c.Type))
		}
	}
	return out
}

func TestJobRunsAsItsPod(t *testing.T) {
	const ns = "node-ok"
	setupNamespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	ctx := context.Background()
	if _, err := env.Clientset.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds"}, StringData: map[string]string{"token": "s3cr3t"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Clientset.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"mode": "fast"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h := startHarness(t, ns)

	job := shJob("probe", `
echo "uid=$(id -u) gid=$(id -g)"
echo "pwd=$(pwd) home=$HOME"
echo "ns=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)"
echo "token=$(cat /var/run/secrets/kubernetes.io/serviceaccount/token)"
test -s /var/run/secrets/kubernetes.io/serviceaccount/ca.crt && echo "ca=present"
touch "$HOME/x" 2>/dev/null && echo "home=writable" || echo "home=read-only"
touch /tmp/x 2>/dev/null && echo "tmp=writable" || echo "tmp=read-only"
cat '`+env.Kubeconfig+`' >/dev/null 2>&1 && echo "admin=readable" || echo "admin=unreadable"
echo "secret=$SECRET mode=$MODE pod=$POD_NAME job=$JOB_NAME args=$(echo $(MODE))"
env | cut -d= -f1 | sort | tr '\n' ' '
`)
	c := &job.Spec.Template.Spec.Containers[0]
	c.Env = []corev1.EnvVar{
		{Name: "SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "token"}}},
		{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "mode"}}},
		{Name: "OPTIONAL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "absent", Optional: ptr(true)}}},
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "JOB_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['batch.kubernetes.io/job-name']"}}},
	}
	r, got := runJob(t, h, ns, job)
	if r.Err != nil || r.ExitCode != 0 {
		t.Fatalf("run: exit %d, %v\n%s", r.ExitCode, r.Err, r.Output)
	}
	out := r.Output
	for _, want := range []string{
		"uid=65532 gid=65532", "pwd=/ home=/", "ns=" + ns, "ca=present",
		"home=read-only", "tmp=read-only", "admin=unreadable",
		"secret=s3cr3t mode=fast pod=" + r.Pod + " job=probe",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The environment is the container's, nothing of the test process.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	names := strings.Fields(lines[len(lines)-1])
	wantNames := "HOME HOSTNAME JOB_NAME KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT KUBERNETES_SERVICE_PORT_HTTPS MODE PATH POD_NAME PWD SECRET"
	if strings.Join(names, " ") != wantNames {
		t.Errorf("container environment = %v\nwant %s", names, wantNames)
	}

	// The token is the Pod's ServiceAccount's, bound to the Pod.
	token := between(out, "token=", "\n")
	review, err := env.Clientset.AuthenticationV1().TokenReviews().Create(ctx,
		&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !review.Status.Authenticated || review.Status.User.Username != "system:serviceaccount:"+ns+":runner" ||
		strings.Join(review.Status.User.Extra["authentication.kubernetes.io/pod-name"], "") != r.Pod {
		t.Errorf("token review = %+v; want the runner ServiceAccount bound to Pod %s", review.Status, r.Pod)
	}

	if c := conditions(got); strings.Join(c, ",") != "SuccessCriteriaMet,Complete" || got.Status.Succeeded != 1 ||
		got.Status.CompletionTime == nil || got.Status.StartTime == nil || got.Status.Active != 0 {
		t.Errorf("Job status = %+v; want SuccessCriteriaMet,Complete, 1 succeeded, start and completion times", got.Status)
	}
	pod, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, r.Pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Status.Phase != corev1.PodSucceeded || len(pod.OwnerReferences) != 1 || pod.OwnerReferences[0].UID != got.UID {
		t.Errorf("Pod phase %s, owners %+v; want Succeeded, owned by the Job", pod.Status.Phase, pod.OwnerReferences)
	}
	if log, ok := h.Log(ns, r.Pod); !ok || log != out {
		t.Errorf("Log(%s) = %q, %v; want the run's output", r.Pod, log, ok)
	}
	if r.Overhead() <= 0 || r.Overhead() > 10*time.Second {
		t.Errorf("Overhead = %v", r.Overhead())
	}
}

func between(s, start, end string) string {
	_, after, _ := strings.Cut(s, start)
	v, _, _ := strings.Cut(after, end)
	return v
}

func TestJobFails(t *testing.T) {
	const ns = "node-fail"
	setupNamespace(t, ns, nil)
	h := startHarness(t, ns)
	r, got := runJob(t, h, ns, shJob("boom", "echo going down; exit 3"))
	if r.ExitCode != 3 || r.Output != "going down\n" {
		t.Errorf("run = exit %d, output %q; want 3, %q", r.ExitCode, r.Output, "going down\n")
	}
	if c := conditions(got); strings.Join(c, ",") != "FailureTarget,Failed" || got.Status.Failed != 1 || got.Status.Succeeded != 0 {
		t.Errorf("Job status = %+v; want FailureTarget,Failed and 1 failed", got.Status)
	}
	pod, err := env.Clientset.CoreV1().Pods(ns).Get(context.Background(), r.Pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	term := pod.Status.ContainerStatuses[0].State.Terminated
	if pod.Status.Phase != corev1.PodFailed || term == nil || term.ExitCode != 3 {
		t.Errorf("Pod status = %+v; want Failed with exit code 3", pod.Status)
	}
}

func TestRetriesUpToBackoffLimit(t *testing.T) {
	const ns = "node-retry"
	setupNamespace(t, ns, nil)
	h := startHarness(t, ns)
	job := shJob("flaky", "exit 1")
	job.Spec.BackoffLimit = ptr(int32(2))
	_, got := runJob(t, h, ns, job)
	pods, err := env.Clientset.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Failed != 3 || len(pods.Items) != 3 || strings.Join(conditions(got), ",") != "FailureTarget,Failed" {
		t.Errorf("Job failed %d with %d Pods, conditions %v; want 3 Pods, 3 failed, Failed", got.Status.Failed, len(pods.Items), conditions(got))
	}
}

func TestMissingSecretKeepsContainerFromStarting(t *testing.T) {
	const ns = "node-nosecret"
	setupNamespace(t, ns, nil)
	h := startHarness(t, ns)
	job := shJob("nosecret", "echo should not run")
	job.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "T", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Key: "k"}}}}
	r, _ := runJob(t, h, ns, job)
	if r.Err == nil || !strings.Contains(r.Err.Error(), `secret "absent" not found`) || r.Output != "" {
		t.Errorf("run = %v, output %q; want the missing secret named and no output", r.Err, r.Output)
	}
}

func TestPrivilegedPodRefused(t *testing.T) {
	const ns = "node-restricted"
	setupNamespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	h := startHarness(t, ns)
	job := shJob("priv", "echo should not run")
	job.Spec.Template.Spec.Containers[0].SecurityContext.Privileged = ptr(true)
	job.Spec.Template.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
	r, got := runJob(t, h, ns, job)
	if r.Err == nil || !strings.Contains(r.Err.Error(), "violates PodSecurity") || r.Pod != "" {
		t.Errorf("run = %+v; want the Pod refused by PodSecurity", r)
	}
	if got.Status.Active != 1 || len(got.Status.Conditions) != 0 {
		t.Errorf("Job status = %+v; want it still active, as with a Job controller", got.Status)
	}
	events, err := env.Clientset.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil || len(events.Items) != 1 || events.Items[0].Reason != "FailedCreate" {
		t.Errorf("events = %+v, %v; want one FailedCreate", events, err)
	}
}
