package testbed_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iter8-tools/iter8/test/testbed"
)

// env is the package's one API server, started in TestMain.
var env *testbed.Env

func TestMain(m *testing.M) {
	os.Exit(testbed.Main(m, func(e *testbed.Env) { env = e }))
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func createNamespace(ctx context.Context, t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := env.Clientset.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

func run(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(cmd.Args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func TestClientsetKubectlAndHelm(t *testing.T) {
	ctx := testContext(t)
	const ns = "testbed-clients"
	createNamespace(ctx, t, ns, nil)

	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "greeting", Namespace: ns},
		StringData: map[string]string{"hello": "world"},
	}
	if _, err := env.Clientset.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create secret %s/%s: %v", ns, secret.Name, err)
	}
	got, err := env.Clientset.CoreV1().Secrets(ns).Get(ctx, secret.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get secret %s/%s: %v", ns, secret.Name, err)
	}
	if v := string(got.Data["hello"]); v != "world" {
		t.Errorf("secret %s/%s data[hello] = %q, want %q", ns, secret.Name, v, "world")
	}

	t.Run("kubectl", func(t *testing.T) {
		kubectl, err := exec.LookPath("kubectl")
		if err != nil {
			t.Skipf("kubectl is not on PATH: %v", err)
		}
		out := run(t, exec.CommandContext(ctx, kubectl, "--kubeconfig", env.Kubeconfig, "get", "ns", "-o", "name"))
		if !strings.Contains(out, "namespace/"+ns+"\n") {
			t.Errorf("kubectl get ns = %q, want it to list namespace/%s", out, ns)
		}
		out = run(t, exec.CommandContext(ctx, kubectl, "--kubeconfig", env.Kubeconfig, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"))
		if out != testbed.AdminUser {
			t.Errorf("kubectl auth whoami = %q, want %q", out, testbed.AdminUser)
		}
	})

	t.Run("helm", func(t *testing.T) {
		run(t, env.Helm(ctx, "list", "-A"))
		out := run(t, env.Helm(ctx, "version", "--short"))
		if !strings.HasPrefix(out, "v3.22.0") {
			t.Errorf("helm version --short = %q, want v3.22.0...", out)
		}
	})
}

func TestTokenRequest(t *testing.T) {
	ctx := testContext(t)
	const ns = "testbed-tokens"
	createNamespace(ctx, t, ns, nil)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "runner", Namespace: ns}}
	if _, err := env.Clientset.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create serviceaccount %s/%s: %v", ns, sa.Name, err)
	}
	expiry := int64(3600)
	tr, err := env.Clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token request for %s/%s: %v", ns, sa.Name, err)
	}
	if tr.Status.Token == "" {
		t.Fatalf("token request for %s/%s: empty token", ns, sa.Name)
	}

	// The token authenticates as the ServiceAccount.
	review, err := env.Clientset.AuthenticationV1().TokenReviews().Create(ctx,
		&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: tr.Status.Token}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token review: %v", err)
	}
	want := "system:serviceaccount:" + ns + ":" + sa.Name
	if !review.Status.Authenticated || review.Status.User.Username != want {
		t.Errorf("token review = authenticated %v as %q (error %q), want %q",
			review.Status.Authenticated, review.Status.User.Username, review.Status.Error, want)
	}
}

func TestPodSecurityAdmission(t *testing.T) {
	ctx := testContext(t)
	const ns = "testbed-restricted"
	createNamespace(ctx, t, ns, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})

	privileged := true
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "privileged", Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:            "c",
			Image:           "example.invalid/c",
			SecurityContext: &corev1.SecurityContext{Privileged: &privileged},
		}}},
	}
	_, err := env.Clientset.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Fatalf("create privileged pod in restricted namespace %s: err = %v, want a PodSecurity violation", ns, err)
	}
}
