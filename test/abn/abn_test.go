package abn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/iter8-tools/iter8/abn/client"
	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/test/redistest"
	"github.com/iter8-tools/iter8/test/testbed"
)

const (
	ns      = "shop"
	app     = ns + "/shop"
	release = "abn"
	nUsers  = 10000
)

// TestABN installs the app and the service (bbolt on a PVC) once and runs
// the checks on them in order; the Redis service comes last, after the
// bbolt one is uninstalled.
func TestABN(t *testing.T) {
	restrictedNamespace(t, ns)
	start := time.Now()
	helm(t, "install", "shop", releaseChart, "-n", ns, "-f", appValues(t, 50, 50),
		"--set", "gates.readiness.enabled=false", "--wait", "--timeout", "2m")
	t.Logf("app installed in %v", time.Since(start).Round(time.Millisecond))

	var (
		addr     string
		assigned map[string]string // the 50/50 assignments of every user
	)
	if !t.Run("install", func(t *testing.T) {
		nsObj, err := env.Clientset.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := nsObj.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
			t.Fatalf("namespace %s enforces %q, want restricted", ns, got)
		}
		start := time.Now()
		helm(t, "install", release, abnChart, "-n", ns, "--wait", "--timeout", "2m")
		pod := servicePods(t, ns, release, 1, 30*time.Second)[0]
		t.Logf("service installed and ready in %v", time.Since(start).Round(time.Millisecond))
		addr = podAddress(t, pod)
		c := newClient(t, addr, app)
		defer c.Close(context.Background())
		start = time.Now()
		var problems []string
		assigned, problems = lookupAll(c, users(nUsers))
		t.Logf("%d lookups in %v", nUsers, time.Since(start).Round(time.Millisecond))
		if len(problems) > 0 {
			t.Fatalf("lookups that were not v1 or v2 without fallback: %s", firstFew(problems))
		}
		if s := share(assigned, "v1"); s < 48 || s > 52 {
			t.Errorf("v1 share %.2f%%, v2 %.2f%%: want 50±2", s, share(assigned, "v2"))
		} else {
			t.Logf("shares: v1 %.2f%%, v2 %.2f%%", s, share(assigned, "v2"))
		}
	}) {
		t.FailNow()
	}

	t.Run("restart", func(t *testing.T) {
		pod := servicePods(t, ns, release, 1, 10*time.Second)[0]
		w := newClient(t, addr, app)
		const before = 2000
		for i := range before {
			if err := w.WriteMetric(fmt.Sprintf("user-%05d", i), assigned[fmt.Sprintf("user-%05d", i)], "restart", 1); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, 30*time.Second, "values written before the kill acknowledged", func() (bool, string) {
			s := w.Stats()
			return s.Sent == before, fmt.Sprintf("%+v", s)
		})
		// A stream of writes across the kill.
		stop := make(chan struct{})
		var streamed int
		var streamErr error
		var wg sync.WaitGroup
		wg.Go(func() { streamed, streamErr = stream(w, "restart", "stream", stop) })
		eventually(t, 30*time.Second, "streamed values acknowledged before the kill", func() (bool, string) {
			s := w.Stats()
			return s.Sent >= before+300, fmt.Sprintf("%+v", s)
		})
		restarts := restartCount(t, pod.Name)
		killed := time.Now()
		if err := harness.KillPod(ns, pod.Name); err != nil {
			t.Fatal(err)
		}
		restartedAndReady(t, pod.Name, restarts)
		t.Logf("kill -9 → Pod ready again: %v", time.Since(killed).Round(time.Millisecond))
		sentAtReady := w.Stats().Sent
		eventually(t, 60*time.Second, "streamed values acknowledged after the restart", func() (bool, string) {
			s := w.Stats()
			return s.Sent >= sentAtReady+300, fmt.Sprintf("%+v (at ready: %d)", s, sentAtReady)
		})
		close(stop)
		wg.Wait()
		t.Logf("the writer's last error (retried): %v", w.Stats().LastError)
		if streamErr != nil {
			t.Fatalf("stream: %v", streamErr)
		}
		written := before + streamed
		closeClient(t, w, written)
		if addr2 := podAddress(t, pod); addr2 != addr {
			t.Logf("the Pod's address changed with the restart: %s → %s", addr, addr2)
			addr = addr2
		}
		got := transactions(summary(t, addr, app), "restart")
		if n := totalCount(got); n != int64(written) {
			t.Errorf("summary count of %q after the kill: %d (by version %v), want %d written and acknowledged", "restart", n, got, written)
		}

		c := newClient(t, addr, app)
		defer c.Close(context.Background())
		again, problems := lookupAll(c, users(nUsers))
		if len(problems) > 0 {
			t.Fatalf("lookups after the restart: %s", firstFew(problems))
		}
		var moved []string
		for u, v := range assigned {
			if again[u] != v {
				moved = append(moved, fmt.Sprintf("%s %s→%s", u, v, again[u]))
			}
		}
		if len(moved) > 0 {
			slices.Sort(moved)
			t.Errorf("users whose version changed across the restart: %s", firstFew(moved))
		}
	})

	var assigned90 map[string]string
	t.Run("readiness-and-route", func(t *testing.T) {
		c := newClient(t, addr, app)
		defer c.Close(context.Background())
		sample := users(2000)
		// Every Lookup meanwhile must answer a version: one held unready,
		// or a route being changed, is no reason for an error or a
		// fallback to the frontend. The polls' Lookups are checked, and
		// a frontend's that go on all the while, helm upgrade included.
		var mu sync.Mutex
		var failed []string
		lookup := func(us []string) map[string]string {
			m, problems := lookupAll(c, us)
			mu.Lock()
			failed = append(failed, problems...)
			mu.Unlock()
			return m
		}
		stop := make(chan struct{})
		var frontend sync.WaitGroup
		frontend.Go(func() {
			for rounds := 0; ; rounds++ {
				select {
				case <-stop:
					t.Logf("the frontend's Lookups meanwhile: %d rounds of 200 users", rounds)
					return
				default:
					lookup(sample[:200])
				}
			}
		})
		defer func() {
			close(stop)
			frontend.Wait()
			if len(failed) > 0 {
				t.Errorf("Lookups that failed or fell back while v2 was held unready, released, or the route changed: %s", firstFew(failed))
			}
		}()
		harness.HoldUnready(ns, "shop-v2", true)
		held := time.Now()
		eventually(t, 30*time.Second, "only v1 while v2 is unready", func() (bool, string) {
			m := lookup(sample)
			return share(m, "v1") == 100, fmt.Sprintf("v1 %.2f%%", share(m, "v1"))
		})
		t.Logf("v2 unready → only v1: %v", time.Since(held).Round(time.Millisecond))
		harness.HoldUnready(ns, "shop-v2", false)
		released := time.Now()
		eventually(t, 30*time.Second, "the 50/50 assignments back once v2 is ready", func() (bool, string) {
			m := lookup(sample)
			diff := 0
			for _, u := range sample {
				if m[u] != assigned[u] {
					diff++
				}
			}
			return diff == 0, fmt.Sprintf("%d of %d users differ from their 50/50 version; v1 %.2f%%", diff, len(sample), share(m, "v1"))
		})
		t.Logf("v2 ready → shares back: %v", time.Since(released).Round(time.Millisecond))

		start := time.Now()
		helm(t, "upgrade", "shop", releaseChart, "-n", ns, "--reuse-values", "-f", appValues(t, 90, 10), "--wait", "--timeout", "2m")
		upgraded := time.Now()
		t.Logf("helm upgrade to 90/10 took %v", upgraded.Sub(start).Round(time.Millisecond))
		eventually(t, 30*time.Second, "shares near 90/10 after the upgrade", func() (bool, string) {
			m := lookup(sample)
			s := share(m, "v1")
			return s >= 86 && s <= 94, fmt.Sprintf("v1 %.2f%% of %d users", s, len(sample))
		})
		t.Logf("helm upgrade returned → shares near 90/10: %v", time.Since(upgraded).Round(time.Millisecond))
		var problems []string
		assigned90, problems = lookupAll(c, users(nUsers))
		if len(problems) > 0 {
			t.Fatalf("lookups at 90/10: %s", firstFew(problems))
		}
		if s := share(assigned90, "v1"); s < 88 || s > 92 {
			t.Errorf("at 90/10: v1 share %.2f%% of %d users, want 90±2", s, nUsers)
		} else {
			t.Logf("at 90/10: v1 %.2f%%, v2 %.2f%%", s, share(assigned90, "v2"))
		}
		// Weights move the fewest users: when v2's weight drops, users
		// move only from v2 to v1.
		var wrong []string
		for u, v := range assigned90 {
			if v == "v2" && assigned[u] != "v2" {
				wrong = append(wrong, u)
			}
		}
		if len(wrong) > 0 {
			t.Errorf("users moved v1 → v2 when v2's weight dropped: %s", firstFew(wrong))
		}
	})

	t.Run("credited-to-the-serving-version", func(t *testing.T) {
		creditedToServingVersion(t, addr, assigned, assigned90)
	})

	t.Run("shares-and-moves", func(t *testing.T) {
		sharesAndMoves(t, addr)
	})

	t.Run("metrics-exact", func(t *testing.T) {
		exactWrites(t, []string{addr}, "exact")
	})

	t.Run("bad-input", func(t *testing.T) {
		badInput(t, []string{addr})
	})

	t.Run("experiment", func(t *testing.T) {
		abTest(t, addr)
	})

	t.Run("rbac", func(t *testing.T) {
		rbacGolden(t, release)
	})

	t.Run("uninstall", func(t *testing.T) {
		uninstall(t, release)
	})

	t.Run("redis", func(t *testing.T) {
		testRedis(t, assigned90)
	})
}

// restartCount is the restart count of a Pod's container.
func restartCount(t testing.TB, pod string) int32 {
	t.Helper()
	p, err := env.Clientset.CoreV1().Pods(ns).Get(context.Background(), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Status.ContainerStatuses) == 0 {
		return 0
	}
	return p.Status.ContainerStatuses[0].RestartCount
}

// restartedAndReady waits until a killed Pod's container has restarted
// (its count above restarts) and the Pod is Ready again.
func restartedAndReady(t testing.TB, pod string, restarts int32) {
	t.Helper()
	eventually(t, 60*time.Second, fmt.Sprintf("the killed Pod %s restarted and ready", pod), func() (bool, string) {
		p, err := env.Clientset.CoreV1().Pods(ns).Get(context.Background(), pod, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		rc := int32(-1)
		if len(p.Status.ContainerStatuses) > 0 {
			rc = p.Status.ContainerStatuses[0].RestartCount
		}
		return rc > restarts && podReady(p), fmt.Sprintf("restartCount %d (was %d), ready %v", rc, restarts, podReady(p))
	})
}

// writers are 8 SDK clients, spread over the service's addresses, each
// streaming values of one metric (1 each, on v1) while a test disrupts the
// service or its ledger.
type writers struct {
	addrs   []string
	clients []*client.Client
	stop    chan struct{}
	halt    func()
	counts  []int
	errs    []error
	wg      sync.WaitGroup
}

// startWriters starts the writers; the test's cleanup stops them if the
// test ends before finish.
func startWriters(t *testing.T, addrs []string, metric string) *writers {
	const nc = 8
	w := &writers{addrs: addrs, clients: make([]*client.Client, nc), stop: make(chan struct{}), counts: make([]int, nc), errs: make([]error, nc)}
	w.halt = sync.OnceFunc(func() { close(w.stop); w.wg.Wait() })
	for i := range w.clients {
		w.clients[i] = newClient(t, w.addr(i), app)
	}
	for i, c := range w.clients {
		w.wg.Go(func() { w.counts[i], w.errs[i] = stream(c, metric, fmt.Sprintf("c%d", i), w.stop) })
	}
	t.Cleanup(w.halt)
	return w
}

func (w *writers) addr(i int) string { return w.addrs[i%len(w.addrs)] }

// sent counts the values acknowledged to the clients of addr, or to all of
// them for "".
func (w *writers) sent(addr string) uint64 {
	var n uint64
	for i, c := range w.clients {
		if addr == "" || w.addr(i) == addr {
			n += c.Stats().Sent
		}
	}
	return n
}

// finish stops the writers, closes each client (checking that it sent all
// it took) and returns how many values they wrote.
func (w *writers) finish(t *testing.T) int {
	w.halt()
	var seen []string
	for i, c := range w.clients {
		if e := c.Stats().LastError; e != nil {
			seen = append(seen, fmt.Sprintf("client %d: %v", i, e))
		}
	}
	t.Logf("errors the clients retried through: %s", firstFew(seen))
	written := 0
	for i, c := range w.clients {
		if w.errs[i] != nil {
			t.Errorf("client %d: %v", i, w.errs[i])
		}
		written += w.counts[i]
		closeClient(t, c, w.counts[i])
	}
	return written
}

// countedEverywhere checks that the summary read from every address counts
// written values of metric.
func countedEverywhere(t *testing.T, addrs []string, metric string, written int, after string) {
	for _, a := range addrs {
		got := transactions(summary(t, a, app), metric)
		if n := totalCount(got); n != int64(written) {
			t.Errorf("summary from %s of %q after %s: count %d (%v), want %d written and acknowledged", a, metric, after, n, got, written)
		}
	}
}

// exactWrites has 1000 users write 10 integer values each, from 8 SDK
// clients spread over the service's addresses, each value credited to the
// version Lookup gave; the summary (read from every address) must count and
// sum them exactly by version. Each value is also written divided by 3 to
// metric+"-thirds", whose sums (of values not exact in binary) must be
// within 1e-12 of the exact sum, relatively.
func exactWrites(t *testing.T, addrs []string, metric string) {
	thirds := metric + "-thirds"
	const nu, per, nc = 1000, 10, 8
	clients := make([]*client.Client, nc)
	for i := range clients {
		clients[i] = newClient(t, addrs[i*len(addrs)/nc], app)
	}
	us := users(nu)
	want := map[string]ledger.Moments{}
	// Exact sums of the float64 values sent: float64 sums of 10,000 values
	// could be off by up to 1e-12 relatively, so this catches values lost
	// or truncated on the way, not how a ledger adds.
	wantThirds := map[string]*big.Float{"v1": new(big.Float).SetPrec(1024), "v2": new(big.Float).SetPrec(1024)}
	var mu sync.Mutex
	var problems []string
	var wg sync.WaitGroup
	start := time.Now()
	for ci, c := range clients {
		wg.Go(func() {
			for i := ci; i < nu; i += nc {
				a := c.Lookup(context.Background(), us[i])
				if a.Err != nil || a.Fallback {
					mu.Lock()
					problems = append(problems, fmt.Sprintf("%s: %+v", us[i], a))
					mu.Unlock()
					continue
				}
				for j := range per {
					v := float64((i*per+j)%17 + 1)
					third := v / 3
					err := c.WriteMetric(us[i], a.Version, metric, v)
					if err == nil {
						err = c.WriteMetric(us[i], a.Version, thirds, third)
					}
					if err != nil {
						mu.Lock()
						problems = append(problems, err.Error())
						mu.Unlock()
						continue
					}
					mu.Lock()
					m := want[a.Version]
					m.Count++
					m.Sum += v
					want[a.Version] = m
					wantThirds[a.Version].Add(wantThirds[a.Version], big.NewFloat(third))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(problems) > 0 {
		t.Fatalf("lookups or writes failed: %s", firstFew(problems))
	}
	for i, c := range clients {
		closeClient(t, c, 2*per*len(slices.Collect(func(yield func(int) bool) {
			for u := i; u < nu; u += nc {
				if !yield(u) {
					return
				}
			}
		})))
	}
	t.Logf("%d values from %d clients written and acknowledged in %v", 2*nu*per, nc, time.Since(start).Round(time.Millisecond))
	for _, addr := range addrs {
		s := summary(t, addr, app)
		got, gotThirds := transactions(s, metric), transactions(s, thirds)
		for _, v := range []string{"v1", "v2"} {
			if got[v].Count != want[v].Count || got[v].Sum != want[v].Sum {
				t.Errorf("summary from %s, %s of %q: count %d sum %v, want count %d sum %v", addr, v, metric, got[v].Count, got[v].Sum, want[v].Count, want[v].Sum)
			}
			exact, _ := wantThirds[v].Float64()
			if rel := math.Abs(gotThirds[v].Sum-exact) / exact; gotThirds[v].Count != want[v].Count || !(rel <= 1e-12) {
				t.Errorf("summary from %s, %s of %q: count %d sum %v, want count %d sum %v within 1e-12 (off by %.2g)", addr, v, thirds, gotThirds[v].Count, gotThirds[v].Sum, want[v].Count, exact, rel)
			} else {
				t.Logf("summary from %s, %s of %q: sum off the exact one by %.2g, relatively", addr, v, thirds, rel)
			}
		}
	}
}

// creditedToServingVersion has users whom the route change moved from v2
// (their version at 50/50, when the install's Lookups served them) to v1
// write through the SDK: values written with the version that served them
// are credited to v2; values written without one, to their current
// assignment, v1.
func creditedToServingVersion(t *testing.T, addr string, at50, at90 map[string]string) {
	if at50 == nil || at90 == nil {
		t.Fatal("needs the assignments of install and readiness-and-route, which did not finish")
	}
	var moved []string
	for _, u := range users(nUsers) {
		if at50[u] == "v2" && at90[u] == "v1" {
			moved = append(moved, u)
		}
	}
	const n = 100
	if len(moved) < n {
		t.Fatalf("%d users moved from v2 to v1, want at least %d", len(moved), n)
	}
	c := newClient(t, addr, app)
	for _, u := range moved[:n] {
		if err := c.WriteMetric(u, "v2", "served", 1); err != nil {
			t.Fatal(err)
		}
		if err := c.WriteMetric(u, "", "unstated", 1); err != nil {
			t.Fatal(err)
		}
	}
	closeClient(t, c, 2*n)
	s := summary(t, addr, app)
	if got := transactions(s, "served"); got["v2"].Count != n || got["v1"].Count != 0 {
		t.Errorf("values written with the serving version v2: v1 counted %d, v2 %d; want all %d on v2", got["v1"].Count, got["v2"].Count, n)
	}
	if got := transactions(s, "unstated"); got["v1"].Count != n || got["v2"].Count != 0 {
		t.Errorf("values written without a version: v1 counted %d, v2 %d; want all %d on v1, the current assignment", got["v1"].Count, got["v2"].Count, n)
	}
}

// rbacGolden compares what the service's ServiceAccount may do with
// testdata/rbac.golden (-update rewrites it) and checks that its own rules
// are only list and watch of the five resources.
func rbacGolden(t *testing.T, release string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sa := fmt.Sprintf("system:serviceaccount:%s:%s-abn", ns, release)
	out, err := kubectlCmd(ctx, "auth", "can-i", "--list", "--as", sa, "-n", ns).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl auth can-i --list: %v\n%s", err, out)
	}
	golden := filepath.Join("testdata", "rbac.golden")
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("kubectl auth can-i --list --as %s:\n%s\nwant (%s):\n%s", sa, out, golden, want)
	}
	// Beyond the golden file: the rows that a ServiceAccount without
	// bindings in the namespace lacks (what every authenticated user and
	// ServiceAccount has) are exactly list/watch of the five resources.
	base, err := kubectlCmd(ctx, "auth", "can-i", "--list", "--as", fmt.Sprintf("system:serviceaccount:%s:nobody", ns), "-n", ns).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl auth can-i --list as nobody: %v\n%s", err, base)
	}
	everyone := map[string]bool{}
	for _, line := range strings.Split(string(base), "\n") {
		everyone[strings.Join(strings.Fields(line), " ")] = true
	}
	var own []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n")[1:] {
		if everyone[strings.Join(strings.Fields(line), " ")] {
			continue
		}
		f := strings.Fields(line)
		if strings.HasPrefix(line, " ") || len(f) < 2 { // a non-resource URL
			own = append(own, strings.Join(f, " "))
			continue
		}
		own = append(own, f[0]+" "+line[strings.LastIndex(line, "["):])
	}
	slices.Sort(own)
	wantOwn := []string{
		"deployments.apps [list watch]",
		"endpointslices.discovery.k8s.io [list watch]",
		"httproutes.gateway.networking.k8s.io [list watch]",
		"services [list watch]",
		"virtualservices.networking.istio.io [list watch]",
	}
	if !slices.Equal(own, wantOwn) {
		t.Errorf("the ServiceAccount's own rules %q, want %q", own, wantOwn)
	}
}

// allNamespacesRBAC checks what a release installed with allNamespaces may
// do: list and watch the five resources in every namespace, through its
// ClusterRole, and nothing more.
func allNamespacesRBAC(t *testing.T, release string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sa := fmt.Sprintf("system:serviceaccount:%s:%s-abn", ns, release)
	for _, c := range []struct{ verb, resource, namespace, want string }{
		{"list", "httproutes.gateway.networking.k8s.io", "default", "yes"},
		{"watch", "virtualservices.networking.istio.io", "kube-system", "yes"},
		{"list", "deployments.apps", "kube-public", "yes"},
		{"watch", "services", "default", "yes"},
		{"list", "endpointslices.discovery.k8s.io", ns, "yes"},
		{"get", "deployments.apps", "default", "no"},
		{"list", "secrets", ns, "no"},
		{"list", "pods", "default", "no"},
		{"create", "httproutes.gateway.networking.k8s.io", ns, "no"},
	} {
		// can-i exits 1 when the answer is no: the answer is the output.
		out, err := kubectlCmd(ctx, "auth", "can-i", c.verb, c.resource, "-n", c.namespace, "--as", sa).Output()
		if ee := (*exec.ExitError)(nil); err != nil && !errors.As(err, &ee) {
			t.Fatalf("kubectl auth can-i: %v", err)
		}
		if got := strings.TrimSpace(string(out)); got != c.want {
			t.Errorf("%s may %s %s in %s: %q, want %q", sa, c.verb, c.resource, c.namespace, got, c.want)
		}
	}
}

// uninstall removes release and checks that its service Pods are seen
// Terminating while their processes drain and gone only once those exited,
// that helm uninstall --wait succeeds with the claims gone, and that
// nothing labelled with the release is left and its processes are gone.
func uninstall(t *testing.T, release string) {
	pods := servicePods(t, ns, release, len(mustPods(t, release)), 10*time.Second)
	var pids []int
	pidOf := map[string]int{}
	for _, p := range pods {
		pid, err := harness.PodPID(ns, p.Name)
		if err != nil {
			t.Fatalf("PodPID %s: %v", p.Name, err)
		}
		pids = append(pids, pid)
		pidOf[p.Name] = pid
	}
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release}
	watched := watchPodsEnd(t, release, pods, pidOf)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if o := testbed.Run(t, ctx, env.Helm(ctx, "uninstall", release, "-n", ns, "--wait", "--timeout", "30s")); o.Code != 0 {
		t.Errorf("helm uninstall --wait failed after %v: %s", time.Since(start).Round(time.Millisecond), o)
	} else {
		t.Logf("helm uninstall took %v", time.Since(start).Round(time.Millisecond))
		// --wait waited for the claims, which go once no Pod uses them.
		if pvcs, err := env.Clientset.CoreV1().PersistentVolumeClaims(ns).List(ctx, sel); err != nil || len(pvcs.Items) > 0 {
			t.Errorf("PersistentVolumeClaims of %s after helm uninstall --wait: %d, %v; want none", release, len(pvcs.Items), err)
		}
	}
	returned := time.Now()
	for _, p := range pods {
		select {
		case w := <-watched:
			switch {
			case !w.terminatingAlive || !w.goneExited:
				t.Errorf("Pod %s: seen Terminating while its process ran: %v; gone once it had exited: %v (events: %s)",
					w.name, w.terminatingAlive, w.goneExited, strings.Join(w.events, ", "))
			case w.exit == nil || w.exit.ExitCode != 0:
				// The drain (5s) ends well within the grace (StopGrace).
				t.Errorf("Pod %s: last terminated state %+v; want exit 0 after the drain, not a kill", w.name, w.exit)
			default:
				t.Logf("Pod %s: Terminating for %v while its process drained, then exited 0 and gone", w.name, w.terminating.Round(time.Millisecond))
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Pod %s: not seen gone", p.Name)
		}
	}
	var objectsGone, procsGone time.Time
	eventually(t, 30*time.Second, "nothing labelled app.kubernetes.io/instance="+release+" left and no processes", func() (bool, string) {
		ctx := context.Background()
		cs := env.Clientset
		var left []string
		add := func(kind string, n int, err error) {
			if err != nil {
				left = append(left, kind+": "+err.Error())
			} else if n > 0 {
				left = append(left, fmt.Sprintf("%d %s", n, kind))
			}
		}
		d, err := cs.AppsV1().Deployments(ns).List(ctx, sel)
		add("Deployments", len(d.Items), err)
		rs, err := cs.AppsV1().ReplicaSets(ns).List(ctx, sel)
		add("ReplicaSets", len(rs.Items), err)
		p, err := cs.CoreV1().Pods(ns).List(ctx, sel)
		add("Pods", len(p.Items), err)
		s, err := cs.CoreV1().Services(ns).List(ctx, sel)
		add("Services", len(s.Items), err)
		sa, err := cs.CoreV1().ServiceAccounts(ns).List(ctx, sel)
		add("ServiceAccounts", len(sa.Items), err)
		r, err := cs.RbacV1().Roles(ns).List(ctx, sel)
		add("Roles", len(r.Items), err)
		rb, err := cs.RbacV1().RoleBindings(ns).List(ctx, sel)
		add("RoleBindings", len(rb.Items), err)
		cr, err := cs.RbacV1().ClusterRoles().List(ctx, sel)
		add("ClusterRoles", len(cr.Items), err)
		crb, err := cs.RbacV1().ClusterRoleBindings().List(ctx, sel)
		add("ClusterRoleBindings", len(crb.Items), err)
		cm, err := cs.CoreV1().ConfigMaps(ns).List(ctx, sel)
		add("ConfigMaps", len(cm.Items), err)
		sec, err := cs.CoreV1().Secrets(ns).List(ctx, sel)
		add("Secrets", len(sec.Items), err)
		pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, sel)
		add("PersistentVolumeClaims", len(pvc.Items), err)
		for _, o := range pvc.Items {
			left = append(left, fmt.Sprintf("PVC %s (phase %s, finalizers %v, deleting %v)", o.Name, o.Status.Phase, o.Finalizers, o.DeletionTimestamp != nil))
		}
		for _, o := range p.Items {
			left = append(left, fmt.Sprintf("Pod %s (finalizers %v, deleting %v)", o.Name, o.Finalizers, o.DeletionTimestamp != nil))
		}
		objects := len(left) == 0
		if objects && objectsGone.IsZero() {
			objectsGone = time.Now()
		}
		procs := 0
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil {
				left = append(left, fmt.Sprintf("process %d", pid))
				procs++
			}
		}
		if procs == 0 && procsGone.IsZero() {
			procsGone = time.Now()
		}
		return len(left) == 0, strings.Join(left, ", ")
	})
	t.Logf("after helm uninstall returned: objects gone in %v, processes gone in %v",
		objectsGone.Sub(returned).Round(time.Millisecond), procsGone.Sub(returned).Round(time.Millisecond))
}

// podEnd is what watchPodsEnd saw of a Pod's end.
type podEnd struct {
	name string
	// terminatingAlive: the Pod was seen with a deletionTimestamp while its
	// process ran; goneExited: the Pod was seen deleted after its process
	// had exited.
	terminatingAlive, goneExited bool
	terminating                  time.Duration // from the first Terminating event to the deletion
	// exit is the container's last terminated state the Pod showed.
	exit   *corev1.ContainerStateTerminated
	events []string
}

// watchPodsEnd watches pods of release (run by the harness, pids their processes)
// until each is deleted, and sends what it saw of each.
func watchPodsEnd(t *testing.T, release string, pods []corev1.Pod, pids map[string]int) <-chan podEnd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	// From the current state (which comes as ADDED events) on.
	w, err := env.Clientset.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: "0",
		LabelSelector: "app.kubernetes.io/instance=" + release})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	alive := func(pid int) bool { return syscall.Kill(pid, 0) == nil }
	out := make(chan podEnd, len(pods))
	go func() {
		defer cancel()
		defer w.Stop()
		ends := map[string]*podEnd{}
		firstTerminating := map[string]time.Time{}
		for _, p := range pods {
			ends[p.Name] = &podEnd{name: p.Name}
		}
		for len(ends) > 0 {
			ev, ok := <-w.ResultChan()
			if !ok {
				return
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod {
				continue
			}
			e := ends[p.Name]
			if e == nil {
				continue
			}
			pid := pids[p.Name]
			if cs := p.Status.ContainerStatuses; len(cs) > 0 && cs[0].State.Terminated != nil {
				e.exit = cs[0].State.Terminated
			}
			e.events = append(e.events, fmt.Sprintf("%s deleting=%v alive=%v", ev.Type, p.DeletionTimestamp != nil, alive(pid)))
			switch {
			case ev.Type == watch.Deleted:
				e.goneExited = !alive(pid)
				if at, ok := firstTerminating[p.Name]; ok {
					e.terminating = time.Since(at)
				}
				out <- *e
				delete(ends, p.Name)
			case p.DeletionTimestamp != nil && alive(pid):
				e.terminatingAlive = true
				if _, ok := firstTerminating[p.Name]; !ok {
					firstTerminating[p.Name] = time.Now()
				}
			}
		}
	}()
	return out
}

// mustPods lists the Pods of release.
func mustPods(t testing.TB, release string) []corev1.Pod {
	t.Helper()
	l, err := env.Clientset.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// testRedis installs the service with a Redis ledger and 2 replicas.
func testRedis(t *testing.T, assigned90 map[string]string) {
	srv := redistest.Start(t)
	if err := harness.ForwardLoopback(srv.Addr()); err != nil {
		t.Fatal(err)
	}
	const rel = "abnr"
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if o := testbed.Run(t, ctx, env.Helm(ctx, "install", rel, abnChart, "-n", ns, "--set", "ledger.bolt.enabled=false",
		"--set", "ledger.redis.address="+srv.Addr(), "--set", "replicas=2", "--set", "allNamespaces=true", "--wait", "--timeout", "60s")); o.Code != 0 {
		dumpPods(t, rel)
		t.Fatalf("want success: %s", o)
	}
	pods := servicePods(t, ns, rel, 2, 30*time.Second)
	t.Logf("2 replicas installed and ready in %v", time.Since(start).Round(time.Millisecond))
	addrs := []string{podAddress(t, pods[0]), podAddress(t, pods[1])}

	if !t.Run("same-versions", func(t *testing.T) {
		// Both replicas at once, as frontends behind the Service ask.
		var got [2]map[string]string
		var problems [2][]string
		var wg sync.WaitGroup
		for i, a := range addrs {
			c := newClient(t, a, app)
			defer c.Close(context.Background())
			wg.Go(func() { got[i], problems[i] = lookupAll(c, users(nUsers)) })
		}
		wg.Wait()
		for i, a := range addrs {
			if len(problems[i]) > 0 {
				t.Fatalf("lookups from replica %s: %s", a, firstFew(problems[i]))
			}
		}
		var diff []string
		for u, v := range got[0] {
			if got[1][u] != v || (assigned90 != nil && assigned90[u] != v) {
				diff = append(diff, fmt.Sprintf("%s: %s / %s (bbolt service: %s)", u, v, got[1][u], assigned90[u]))
			}
		}
		if len(diff) > 0 {
			t.Errorf("users with different versions from the two replicas (or the earlier service): %s", firstFew(diff))
		}
	}) {
		return
	}

	t.Run("rbac-all-namespaces", func(t *testing.T) {
		allNamespacesRBAC(t, rel)
	})

	t.Run("metrics-exact", func(t *testing.T) {
		exactWrites(t, addrs, "exact-redis")
	})

	t.Run("bad-input", func(t *testing.T) {
		badInput(t, addrs)
	})

	t.Run("replica-kill", func(t *testing.T) {
		killReplica(t, rel, addrs)
	})

	t.Run("redis-crash", func(t *testing.T) {
		w := startWriters(t, addrs, "crash")
		eventually(t, 30*time.Second, "values acknowledged before Redis is killed", func() (bool, string) {
			return w.sent("") >= 1000, fmt.Sprintf("%d sent", w.sent(""))
		})
		srv.Kill()
		killed := time.Now()
		// Redis stays down until the clients see the service refuse
		// their writes, so that the crash is felt.
		eventually(t, 30*time.Second, "a client's write refused while Redis is down", func() (bool, string) {
			for _, c := range w.clients {
				if c.Stats().LastError != nil {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d sent, no error", w.sent(""))
		})
		var unready []string
		for _, p := range mustPods(t, rel) {
			if !podReady(&p) {
				unready = append(unready, p.Name)
			}
		}
		t.Logf("while Redis is down (%v): replicas unready: %v", time.Since(killed).Round(time.Millisecond), unready)
		srv.Restart()
		t.Logf("Redis killed and restarted in %v", time.Since(killed).Round(time.Millisecond))
		atRestart := w.sent("")
		eventually(t, 60*time.Second, "values acknowledged after Redis restarted", func() (bool, string) {
			return w.sent("") >= atRestart+1000, fmt.Sprintf("%d sent (%d at the restart)", w.sent(""), atRestart)
		})
		t.Logf("Redis restart → writes acknowledged again: %v", time.Since(killed).Round(time.Millisecond))
		written := w.finish(t)
		// Both replicas ready again (their readiness may have flapped).
		servicePods(t, ns, rel, 2, 30*time.Second)
		countedEverywhere(t, addrs, "crash", written, "the Redis crash")
	})

	t.Run("uninstall", func(t *testing.T) {
		uninstall(t, rel)
	})
}

// killReplica kills one of the Redis service's two replicas with kill -9
// while 8 clients, half of them on each replica, write: once it is back,
// both replicas' summaries must count every acknowledged value.
func killReplica(t *testing.T, rel string, addrs []string) {
	victim := servicePods(t, ns, rel, 2, 30*time.Second)[0]
	victimAddr := podAddress(t, victim)
	if !slices.Contains(addrs, victimAddr) {
		t.Fatalf("replica %s's address %s is not one of %v", victim.Name, victimAddr, addrs)
	}
	w := startWriters(t, addrs, "replica-kill")
	eventually(t, 30*time.Second, "values acknowledged by the replica before its kill", func() (bool, string) {
		return w.sent(victimAddr) >= 500, fmt.Sprintf("%d sent", w.sent(victimAddr))
	})
	restarts := restartCount(t, victim.Name)
	killed := time.Now()
	if err := harness.KillPod(ns, victim.Name); err != nil {
		t.Fatal(err)
	}
	restartedAndReady(t, victim.Name, restarts)
	servicePods(t, ns, rel, 2, 60*time.Second)
	t.Logf("kill -9 of replica %s → both ready again: %v", victim.Name, time.Since(killed).Round(time.Millisecond))
	atReady := w.sent(victimAddr)
	eventually(t, 60*time.Second, "values acknowledged by the replica after its restart", func() (bool, string) {
		return w.sent(victimAddr) >= atReady+500, fmt.Sprintf("%d sent (%d at ready)", w.sent(victimAddr), atReady)
	})
	countedEverywhere(t, addrs, "replica-kill", w.finish(t), "a replica's kill -9")
}

// dumpPods logs the status and output of release's Pods.
func dumpPods(t testing.TB, release string) {
	t.Helper()
	for _, p := range mustPods(t, release) {
		var cs []string
		for _, c := range p.Status.ContainerStatuses {
			cs = append(cs, fmt.Sprintf("ready=%v restarts=%d state=%+v last=%+v", c.Ready, c.RestartCount, c.State, c.LastTerminationState))
		}
		out, _ := harness.Log(p.Namespace, p.Name)
		t.Logf("Pod %s: phase %s ip %s conditions %+v containers %v\noutput:\n%s", p.Name, p.Status.Phase, p.Status.PodIP, p.Status.Conditions, cs, out)
	}
}
