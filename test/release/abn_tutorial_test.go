package release_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iter8-tools/iter8/test/testbed"
	"github.com/iter8-tools/iter8/test/traefik"
)

// TestABNTutorial runs docs/abn.md's commands in order, each checked to be
// in the tutorial word for word, from the checkout's root: the backend
// through charts/release with Traefik as the Gateway, the A/B/n service
// through charts/abn (its Pod run for real by the node harness), the sample
// frontend in front of the backend's two versions (v1 converts 10% of its
// users, v2 20%), and the bandit experiment through charts/iter8. Two
// things stand in for a cluster's: the namespace is made as
// kube-controller-manager would complete it (its default ServiceAccount),
// and, with no cluster DNS here, the experiment and the frontend are given
// the service Pod's address instead of abn.shop.
func TestABNTutorial(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	doc := tutorialDoc(t)

	doc.has(t, "kubectl create namespace shop")
	ns := namespace(t, "shop")
	infra := namespace(t, "ingress")
	tr := trafficBedFor(t, ctx, ns, infra, "backend", map[string]float64{"v1": 0.1, "v2": 0.2})

	doc.run(t, ctx, "helm upgrade --install backend charts/release -n shop -f docs/abn/backend.yaml --wait")
	doc.run(t, ctx, "helm install abn charts/abn -n shop --wait")
	addr := abnPodAddress(t, ctx, ns)
	svc := &abnService{grpcAddr: net.JoinHostPort(addr, "50051"), httpAddr: net.JoinHostPort(addr, "8080")}

	// The frontend, as the tutorial's command runs it (the test runs its
	// library with the same options).
	doc.has(t, "go run ./test/abnfrontend/cmd/abnfrontend -abn 127.0.0.1:50051 -app shop/backend -baseline v1")
	doc.has(t, "-gateway $GATEWAY -purchase-header X-Purchase -log frontend.log")
	var log syncBuffer
	front := startFrontend(t, svc, "shop/backend", tr.URL, &log)

	install := "helm install bandit charts/iter8 -n shop -f docs/abn/bandit.yaml"
	doc.run(t, ctx, install, "--set", "abn.endpoint=http://"+svc.httpAddr)

	const users, rounds = 5000, 20
	plan := userRounds(users, rounds)
	for r := range rounds {
		if r > 0 {
			waitLoops(t, ctx, ns, r, loopWait)
		}
		sendRound(t, ctx, front, plan[r])
	}
	res := waitEnd(t, ctx, ns, "bandit")
	if b := res.Bandit; b == nil || b.Promoted != "v2" {
		t.Fatalf("bandit %+v, stopped %q: want v2 promoted", res.Bandit, res.Stopped)
	}
	t.Logf("%s, after loop %d", res.Stopped, res.Loop)

	report := doc.run(t, ctx, "kubectl iter8 report bandit -n shop").Stdout
	for _, want := range []string{"Users", "Bandit:", "promoted v2", "abn/purchases-conversion"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	status := doc.run(t, ctx, "kubectl iter8 release status backend -n shop").Stdout
	if !strings.Contains(status, "Bandits:") || !strings.Contains(status, "promoted v2") {
		t.Errorf("release status lacks the bandit:\n%s", status)
	}
	history := doc.run(t, ctx, "helm history backend -n shop").Stdout
	if !strings.Contains(history, "promoted v2") {
		t.Errorf("helm history lacks the promotion:\n%s", history)
	}
	html := doc.run(t, ctx, "kubectl iter8 report bandit -n shop -o html > bandit.html").Stdout
	if !strings.Contains(html, "bandit/weight") || !strings.Contains(html, `id="users"`) {
		t.Errorf("the html report lacks the weights over the loops or the users table")
	}

	hc := traefik.NewClient()
	defer hc.CloseIdleConnections()
	eventually(t, ctx, "the Gateway sends v2 everything", func() (bool, string) {
		counts, errs, first := traefik.Count(ctx, hc, tr.URL+"/", nil, 50)
		return errs == 0 && counts["v2"] == 50, fmt.Sprintf("%v, %d errors (%v)", counts, errs, first)
	})
	wantCounts(t, ctx, hc, tr.URL+"/", nil, 1000, map[string]int{"v2": 1000}, 0)

	doc.run(t, ctx, "helm uninstall bandit -n shop")
	doc.run(t, ctx, "helm uninstall abn -n shop")
	doc.run(t, ctx, "helm uninstall backend -n shop")
	sas, err := env.Clientset.CoreV1().ServiceAccounts(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(sas.Items) != 1 {
		t.Errorf("ServiceAccounts left after uninstalling: %v (%v), want only default", sas, err)
	}
}

// tutorial is docs/abn.md, its code blocks' lines joined where they
// continue.
type tutorial struct{ lines []string }

func tutorialDoc(t *testing.T) tutorial {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(), "docs", "abn.md"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	cont := false
	for _, l := range strings.Split(string(raw), "\n") {
		l = strings.TrimSpace(l)
		if cont {
			lines[len(lines)-1] += " " + strings.TrimSuffix(l, "\\")
		} else {
			lines = append(lines, strings.TrimSuffix(l, "\\"))
		}
		cont = strings.HasSuffix(l, "\\")
	}
	return tutorial{lines: lines}
}

// has fails the test unless a line of the tutorial holds text.
func (d tutorial) has(t *testing.T, text string) {
	t.Helper()
	for _, l := range d.lines {
		if strings.Contains(strings.Join(strings.Fields(l), " "), text) {
			return
		}
	}
	t.Fatalf("docs/abn.md has no line with %q", text)
}

// run runs a command line of the tutorial (with extra arguments the test
// bed needs) from the checkout's root: helm against the test bed, kubectl
// iter8 as the plugin's binary. Output redirected in the line is the
// command's stdout here.
func (d tutorial) run(t *testing.T, ctx context.Context, line string, extra ...string) testbed.Outcome {
	t.Helper()
	d.has(t, line)
	words := strings.Fields(line)
	if i := strings.Index(line, " > "); i >= 0 {
		words = strings.Fields(line[:i])
	}
	var cmd *exec.Cmd
	switch {
	case words[0] == "helm":
		cmd = env.Helm(ctx, append(words[1:], extra...)...)
	case words[0] == "kubectl" && words[1] == "iter8":
		cmd = exec.CommandContext(ctx, iter8Bin(), append(words[2:], extra...)...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
	default:
		t.Fatalf("the test does not run %q", line)
	}
	cmd.Dir = repoRoot()
	o := testbed.Run(t, ctx, cmd)
	if o.Code != 0 {
		t.Fatalf("%s: %s", line, o)
	}
	return o
}

// abnPodAddress waits for the A/B/n service's Pod and returns its address.
func abnPodAddress(t *testing.T, ctx context.Context, ns string) string {
	t.Helper()
	var addr string
	eventually(t, ctx, "the A/B/n service's Pod", func() (bool, string) {
		pods, err := env.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=abn"})
		if err != nil || len(pods.Items) != 1 {
			return false, fmt.Sprintf("%v, %v", pods, err)
		}
		a, err := harness.PodAddress(ns, pods.Items[0].Name)
		addr = a
		return err == nil, fmt.Sprint(err)
	})
	return addr
}

// repoRoot is the checkout's root.
func repoRoot() string { return filepath.Dir(filepath.Dir(chartDir)) }
