package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/iter8-tools/iter8/test/node"
)

// buildPodServer builds testdata/podserver where any user can run it.
func buildPodServer(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "iter8-podserver-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "podserver")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/podserver")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build podserver: %v\n%s", err, out)
	}
	return bin
}

// startRunHarness runs the containers of the Pods labelled run=yes, with
// fast probes and restarts.
func startRunHarness(t *testing.T, ns string) *node.Harness {
	t.Helper()
	bin := buildPodServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := node.Start(ctx, node.Config{
		Admin: env.Config, Namespace: ns, Logf: t.Logf, Deployments: true,
		Executables:       map[string]string{"podserver": bin},
		RunDeploymentPods: func(p *corev1.Pod) bool { return p.Labels["run"] == "yes" },
		ProbePeriod:       50 * time.Millisecond,
		RestartBackoff:    200 * time.Millisecond,
		StopGrace:         3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	return h
}

// serverDeployment runs podserver (restricted, read-only root) with its
// claim name+"-data" at /data, an emptyDir at /scratch and a readiness probe
// on /readyz.
func serverDeployment(name string, n int32) *appsv1.Deployment {
	d := webDeployment(name, n, "example.invalid/podserver:1")
	d.Spec.Template.Labels = map[string]string{"app": name, "run": "yes"}
	spec := &d.Spec.Template.Spec
	spec.TerminationGracePeriodSeconds = ptr(int64(5))
	spec.SecurityContext.FSGroup = ptr(int64(65532))
	spec.Volumes = []corev1.Volume{
		{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name + "-data"}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	c := &spec.Containers[0]
	c.Command = []string{"podserver", "--http-address", ":8080", "--data", "/data", "--scratch", "/scratch"}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "scratch", MountPath: "/scratch"}}
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("http")}},
		PeriodSeconds: 10, FailureThreshold: 1,
	}
	return d
}

func createClaim(t *testing.T, ns, name string) {
	t.Helper()
	_, err := env.Clientset.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

type podInfo struct {
	Name, Local, API string
	UID              int
	Starts           []string
	RootReadOnly     bool
}

func getInfo(ctx context.Context, addr string) (podInfo, error) {
	var info podInfo
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+":8080/info", nil)
	if err != nil {
		return info, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	return info, json.NewDecoder(resp.Body).Decode(&info)
}

func alive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

func netnsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

// runningPods waits for n Pods of app whose containers run, with ready as
// given, and returns them sorted by name.
func runningPods(t *testing.T, ns, app string, n int, ready bool) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	eventually(t, 30*time.Second, fmt.Sprintf("%d Pods of %s running, ready %v", n, app, ready), func(ctx context.Context) (bool, string, error) {
		var err error
		if pods, err = podsOf(ctx, ns, app); err != nil {
			return false, "", err
		}
		var states []string
		ok := len(pods) == n
		for _, p := range pods {
			st := fmt.Sprintf("%s %s %s ready=%v", p.Name, p.Status.Phase, p.Status.PodIP, podIsReady(&p))
			running := len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Running != nil
			if !running || !strings.HasPrefix(p.Status.PodIP, "10.78.") || podIsReady(&p) != ready {
				ok = false
			}
			states = append(states, st)
		}
		return ok, strings.Join(states, "; "), nil
	})
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return pods
}

func waitEndpoints(t *testing.T, ns, svc string, want []string) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("endpoints %v", want), func(ctx context.Context) (bool, string, error) {
		s, err := serviceSlices(ctx, ns, svc)
		eps := endpoints(s)
		return slices.Equal(eps, want), fmt.Sprint(eps), err
	})
}

func getDeployment(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := env.Clientset.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRunDeploymentPods(t *testing.T) {
	const ns, app = "run-pods", "podserver"
	setupNamespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": restricted})
	h := startRunHarness(t, ns)
	ctx := context.Background()
	createClaim(t, ns, app+"-data")
	create(t, ns, webService(app))
	create(t, ns, serverDeployment(app, 2))

	// Both replicas run, at their own addresses, on the same port, not
	// ready: the probe fails until the ready file exists.
	pods := runningPods(t, ns, app, 2, false)
	if pods[0].Status.PodIP == pods[1].Status.PodIP {
		t.Fatalf("both Pods at %s", pods[0].Status.PodIP)
	}
	waitEndpoints(t, ns, app, podEndpoints(pods, "unready"))
	if d := getDeployment(t, ns, app); d.Status.ReadyReplicas != 0 || d.Status.AvailableReplicas != 0 {
		t.Errorf("Deployment before the probe passes: %s", describe(d))
	}
	for _, p := range pods {
		if addr, err := h.PodAddress(ns, p.Name); err != nil || addr != p.Status.PodIP {
			t.Errorf("PodAddress(%s) = %q, %v; want %s", p.Name, addr, err, p.Status.PodIP)
		}
		var info podInfo
		eventually(t, 30*time.Second, "Pod "+p.Name+" answers", func(ctx context.Context) (bool, string, error) {
			var err error
			info, err = getInfo(ctx, p.Status.PodIP)
			log, _ := h.Log(ns, p.Name)
			return err == nil, fmt.Sprintf("%v; log: %s", err, log), nil
		})
		if info.Name != p.Name || info.UID != 65532 || !info.RootReadOnly || info.API != "200 OK" ||
			info.Local != p.Status.PodIP+":8080" {
			t.Errorf("Pod %s sees %+v; want its name, uid 65532, a read-only root, the API server and %s:8080", p.Name, info, p.Status.PodIP)
		}
	}
	claim, err := env.Clientset.CoreV1().PersistentVolumeClaims(ns).Get(ctx, app+"-data", metav1.GetOptions{})
	if err != nil || claim.Status.Phase != corev1.ClaimBound {
		t.Errorf("claim: %v, %v; want Bound", claim.Status.Phase, err)
	}

	// The probe passes: the Deployment and its endpoints become ready.
	readyFile := filepath.Join(h.ClaimDir(ns, app+"-data"), "ready")
	if err := os.WriteFile(readyFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, ns, app)
	waitEndpoints(t, ns, app, podEndpoints(pods, "ready"))

	// kill -9: the container restarts, ready again, its data kept.
	victim := pods[0].Name
	pid, err := h.PodPID(ns, victim)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.KillPod(ns, victim); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the killed container restarted and ready", func(ctx context.Context) (bool, string, error) {
		p, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, victim, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		cs := p.Status.ContainerStatuses[0]
		last := cs.LastTerminationState.Terminated
		newPID, _ := h.PodPID(ns, victim)
		return cs.RestartCount == 1 && last != nil && last.Signal == 9 && last.ExitCode == 137 && cs.Ready && podIsReady(p) &&
				newPID != pid && newPID != 0,
			fmt.Sprintf("restarts %d, last %+v, ready %v, pid %d", cs.RestartCount, last, cs.Ready, newPID), nil
	})
	if alive(pid) {
		t.Errorf("the killed process %d is still there", pid)
	}
	waitRolledOut(t, ns, app)
	info, err := getInfo(ctx, pods[0].Status.PodIP)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, s := range info.Starts {
		counts[s]++
	}
	if counts[victim] != 2 || counts[pods[1].Name] != 1 {
		t.Errorf("starts recorded in the claim: %v; want 2 of %s and 1 of %s", info.Starts, victim, pods[1].Name)
	}

	// The probe fails: the Pods and the Deployment become unready.
	if err := os.Remove(readyFile); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the Deployment unavailable", func(ctx context.Context) (bool, string, error) {
		d, err := env.Clientset.AppsV1().Deployments(ns).Get(ctx, app, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		avail, _ := condition(d, appsv1.DeploymentAvailable)
		return d.Status.ReadyReplicas == 0 && d.Status.AvailableReplicas == 0 && avail == corev1.ConditionFalse, describe(d), nil
	})
	waitEndpoints(t, ns, app, podEndpoints(pods, "unready"))
	if err := os.WriteFile(readyFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d := waitRolledOut(t, ns, app)

	// Scaling down stops one process and its network namespace.
	pids := map[string]int{}
	for _, p := range pods {
		if pids[p.Name], err = h.PodPID(ns, p.Name); err != nil {
			t.Fatal(err)
		}
	}
	d.Spec.Replicas = ptr(int32(1))
	if _, err := env.Clientset.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, ns, app)
	left := runningPods(t, ns, app, 1, true)
	eventually(t, 30*time.Second, "one process left", func(context.Context) (bool, string, error) {
		var state []string
		ok := true
		for _, p := range pods {
			want := p.Name == left[0].Name
			if alive(pids[p.Name]) != want || netnsExists(node.PodNetNS(p.Status.PodIP)) != want {
				ok = false
			}
			state = append(state, fmt.Sprintf("%s pid %d alive %v netns %v", p.Name, pids[p.Name], alive(pids[p.Name]),
				netnsExists(node.PodNetNS(p.Status.PodIP))))
		}
		return ok, strings.Join(state, "; "), nil
	})

	// Deleting the Deployment stops every process.
	if err := env.Clientset.AppsV1().Deployments(ns).Delete(ctx, app, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "no Pod and no process left", func(ctx context.Context) (bool, string, error) {
		ps, err := podsOf(ctx, ns, app)
		if err != nil {
			return false, "", err
		}
		_, addrErr := h.PodAddress(ns, left[0].Name)
		return len(ps) == 0 && !alive(pids[left[0].Name]) && !netnsExists(node.PodNetNS(left[0].Status.PodIP)) && addrErr != nil,
			fmt.Sprintf("%d Pods, process alive %v", len(ps), alive(pids[left[0].Name])), nil
	})
	if data, err := os.ReadFile(filepath.Join(h.ClaimDir(ns, app+"-data"), "starts")); err != nil || len(strings.Fields(string(data))) != 3 {
		t.Errorf("the claim's starts after the Deployment is gone: %q, %v; want 3", data, err)
	}
}

// TestRunPodRefused: what the harness cannot run leaves the container
// waiting with a message that says why, and the Pod unready.
func TestRunPodRefused(t *testing.T) {
	const ns = "run-refused"
	setupNamespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": restricted})
	startRunHarness(t, ns)
	configMap := serverDeployment("cm", 1)
	configMap.Spec.Template.Spec.Volumes[1].VolumeSource = corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}
	execProbe := serverDeployment("exec", 1)
	execProbe.Spec.Template.Spec.Containers[0].ReadinessProbe.ProbeHandler = corev1.ProbeHandler{
		Exec: &corev1.ExecAction{Command: []string{"true"}}}
	create(t, ns, configMap)
	create(t, ns, execProbe)
	for app, want := range map[string]string{
		"cm":   `volume "scratch": the node harness mounts only emptyDir and persistentVolumeClaim volumes`,
		"exec": "the node harness runs only httpGet and tcpSocket readiness probes",
	} {
		eventually(t, 30*time.Second, app+" refused", func(ctx context.Context) (bool, string, error) {
			pods, err := podsOf(ctx, ns, app)
			if err != nil || len(pods) != 1 || len(pods[0].Status.ContainerStatuses) == 0 {
				return false, fmt.Sprintf("%d Pods", len(pods)), err
			}
			w := pods[0].Status.ContainerStatuses[0].State.Waiting
			return w != nil && w.Reason == "CreateContainerConfigError" && strings.Contains(w.Message, want) && !podIsReady(&pods[0]),
				fmt.Sprintf("%+v", pods[0].Status.ContainerStatuses[0].State), nil
		})
	}
}

// TestRunPodWithoutProbe: a container without a readiness probe is ready
// once it runs; HoldUnready holds it; Stop kills it and removes its network
// namespace.
func TestRunPodWithoutProbe(t *testing.T) {
	const ns, app = "run-noprobe", "noprobe"
	setupNamespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": restricted})
	h := startRunHarness(t, ns)
	createClaim(t, ns, app+"-data")
	d := serverDeployment(app, 1)
	d.Spec.Template.Spec.Containers[0].ReadinessProbe = nil
	create(t, ns, d)
	waitRolledOut(t, ns, app)
	pod := runningPods(t, ns, app, 1, true)[0]

	h.HoldUnready(ns, app, true)
	runningPods(t, ns, app, 1, false)
	h.HoldUnready(ns, app, false)
	runningPods(t, ns, app, 1, true)

	// A deleted Pod's process is stopped, and the ReplicaSet's new Pod runs.
	oldPID, err := h.PodPID(ns, pod.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Clientset.CoreV1().Pods(ns).Delete(context.Background(), pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the deleted Pod's process gone and a new Pod running", func(ctx context.Context) (bool, string, error) {
		pods, err := podsOf(ctx, ns, app)
		if err != nil || len(pods) != 1 {
			return false, fmt.Sprintf("%d Pods", len(pods)), err
		}
		_, err = h.PodPID(ns, pods[0].Name)
		return pods[0].Name != pod.Name && err == nil && !alive(oldPID), fmt.Sprintf("Pod %s, pid: %v, old alive %v", pods[0].Name, err, alive(oldPID)), nil
	})
	pod = runningPods(t, ns, app, 1, true)[0]

	pid, err := h.PodPID(ns, pod.Name)
	if err != nil {
		t.Fatal(err)
	}
	h.Stop()
	if alive(pid) || netnsExists(node.PodNetNS(pod.Status.PodIP)) {
		t.Errorf("after Stop: process %d alive %v, network namespace %v", pid, alive(pid), netnsExists(node.PodNetNS(pod.Status.PodIP)))
	}
}

// TestForwardLoopback: a host loopback server given to ForwardLoopback is
// reached at the same address from a run Pod's network namespace; a
// non-loopback address is refused.
func TestForwardLoopback(t *testing.T) {
	const ns, app = "run-forward", "forward"
	setupNamespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": restricted})
	h := startRunHarness(t, ns)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello from the host\n"))
			_ = c.Close()
		}
	}()
	if err := h.ForwardLoopback("10.0.0.1:80"); err == nil {
		t.Error("ForwardLoopback(10.0.0.1:80): no error, want one (not loopback)")
	}
	if err := h.ForwardLoopback(l.Addr().String()); err != nil {
		t.Fatal(err)
	}
	createClaim(t, ns, app+"-data")
	d := serverDeployment(app, 1)
	d.Spec.Template.Spec.Containers[0].ReadinessProbe = nil
	create(t, ns, d)
	waitRolledOut(t, ns, app)
	pod := runningPods(t, ns, app, 1, true)[0]
	addr, err := h.PodAddress(ns, pod.Name)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the host's loopback server reached from the Pod", func(ctx context.Context) (bool, string, error) {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
		defer c.CloseIdleConnections()
		resp, err := c.Get("http://" + net.JoinHostPort(addr, "8080") + "/dial?addr=" + l.Addr().String())
		if err != nil {
			return false, err.Error(), nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && string(b) == "hello from the host\n", fmt.Sprintf("%d %q", resp.StatusCode, b), nil
	})
}

// TestGracefulDeletion: a run Pod is bound to the harness's node, so that a
// deleted one stays Terminating (listed as a terminating endpoint, not
// counted by its ReplicaSet) while its process handles SIGTERM, then shows
// its container terminated and is gone; scaling down likewise. A deleted
// claim stays while a Pod uses it, and goes once none does.
func TestGracefulDeletion(t *testing.T) {
	const ns, app = "run-graceful", "graceful"
	setupNamespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": restricted})
	h := startRunHarness(t, ns) // StopGrace 3s
	ctx := context.Background()
	cs := env.Clientset
	claim := app + "-data"
	createClaim(t, ns, claim)
	create(t, ns, webService(app))
	d := serverDeployment(app, 2)
	c := &d.Spec.Template.Spec.Containers[0]
	c.Command = append(c.Command, "--drain", "1500ms")
	create(t, ns, d)
	pods := runningPods(t, ns, app, 2, false)
	if err := os.WriteFile(filepath.Join(h.ClaimDir(ns, claim), "ready"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, ns, app)
	for _, p := range pods {
		if p.Spec.NodeName != node.NodeName {
			t.Errorf("Pod %s: nodeName %q, want %q", p.Name, p.Spec.NodeName, node.NodeName)
		}
	}

	// Deleting a Pod: Terminating while it drains, then its container
	// terminated (exit 0, the SIGTERM handled), then gone.
	victim := pods[0]
	pid, err := h.PodPID(ns, victim.Name)
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=" + victim.Name, ResourceVersion: victim.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := cs.CoreV1().Pods(ns).Delete(ctx, victim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the deleted Pod Terminating, its process handling SIGTERM", func(ctx context.Context) (bool, string, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, victim.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		log, _ := h.Log(ns, victim.Name)
		s, err := serviceSlices(ctx, ns, app)
		eps := terminatingEndpoints(s)
		return p.DeletionTimestamp != nil && alive(pid) && strings.Contains(log, "SIGTERM") &&
				slices.Equal(eps, []string{victim.Status.PodIP}),
			fmt.Sprintf("deletionTimestamp %v, alive %v, terminating endpoints %v, log %q", p.DeletionTimestamp, alive(pid), eps, log), err
	})
	var final *corev1.Pod
	deadline := time.After(10 * time.Second)
	for gone := false; !gone; {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("the watch of the deleted Pod ended")
			}
			switch ev.Type {
			case watch.Deleted:
				gone = true
			case watch.Modified:
				final = ev.Object.(*corev1.Pod)
			}
		case <-deadline:
			t.Fatalf("the deleted Pod not gone in 10s; last seen %+v", final)
		}
	}
	if alive(pid) || netnsExists(node.PodNetNS(victim.Status.PodIP)) {
		t.Errorf("the deleted Pod is gone but its process (alive %v) or network namespace (%v) is left", alive(pid), netnsExists(node.PodNetNS(victim.Status.PodIP)))
	}
	if final == nil || len(final.Status.ContainerStatuses) == 0 || final.Status.ContainerStatuses[0].State.Terminated == nil ||
		final.Status.ContainerStatuses[0].State.Terminated.ExitCode != 0 || final.Status.Phase != corev1.PodSucceeded || podIsReady(final) {
		t.Errorf("the deleted Pod's last status %+v; want Succeeded, not ready, its container terminated with 0", final)
	}
	log, _ := h.Log(ns, victim.Name)
	if !strings.Contains(log, "drained for 1.5s") {
		t.Errorf("the deleted Pod's log %q; want its drain finished", log)
	}
	pods = runningPods(t, ns, app, 2, true)
	waitRolledOut(t, ns, app)

	// The claim, deleted, stays while the Pods use it.
	if err := cs.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, claim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the claim Terminating", func(ctx context.Context) (bool, string, error) {
		c, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		return c.DeletionTimestamp != nil && slices.Contains(c.Finalizers, node.PVCProtection), fmt.Sprintf("finalizers %v", c.Finalizers), nil
	})

	// Scaling to 0: both Pods Terminating while they drain, not counted as
	// replicas, the claim still there; then the Pods, their processes and
	// the claim gone.
	pids := map[string]int{}
	for _, p := range pods {
		if pids[p.Name], err = h.PodPID(ns, p.Name); err != nil {
			t.Fatal(err)
		}
	}
	d = getDeployment(t, ns, app)
	d.Spec.Replicas = ptr(int32(0))
	if _, err := cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "both Pods Terminating and draining, the Deployment at 0 replicas, the claim kept", func(ctx context.Context) (bool, string, error) {
		ps, err := podsOf(ctx, ns, app)
		if err != nil {
			return false, "", err
		}
		ok := len(ps) == 2
		var state []string
		for _, p := range ps {
			log, _ := h.Log(ns, p.Name)
			if p.DeletionTimestamp == nil || !alive(pids[p.Name]) || !strings.Contains(log, "SIGTERM") {
				ok = false
			}
			state = append(state, fmt.Sprintf("%s deleting %v alive %v", p.Name, p.DeletionTimestamp != nil, alive(pids[p.Name])))
		}
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, app, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		_, claimErr := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
		if claimErr != nil {
			t.Fatalf("the claim went while its Pods are Terminating: %v", claimErr)
		}
		ok = ok && d.Status.ObservedGeneration == d.Generation && d.Status.Replicas == 0 &&
			d.Status.ReadyReplicas == 0 && d.Status.AvailableReplicas == 0
		return ok, strings.Join(state, "; ") + "; " + describe(d), nil
	})
	eventually(t, 15*time.Second, "no Pod, no process and no claim left", func(ctx context.Context) (bool, string, error) {
		ps, err := podsOf(ctx, ns, app)
		if err != nil {
			return false, "", err
		}
		var state []string
		for name, pid := range pids {
			if alive(pid) {
				state = append(state, name+" alive")
			}
		}
		c, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
		switch {
		case err == nil:
			if len(ps) == 0 && !slices.Contains(c.Finalizers, node.PVCProtection) {
				return false, "", fmt.Errorf("claim: finalizer removed but the claim is still there: %+v", c.ObjectMeta)
			}
			state = append(state, fmt.Sprintf("claim finalizers %v", c.Finalizers))
		case !apierrors.IsNotFound(err):
			return false, "", err
		case len(ps) > 0:
			t.Fatalf("the claim went while %d Pods are left", len(ps))
		}
		return len(ps) == 0 && len(state) == 0, fmt.Sprintf("%d Pods; %s", len(ps), strings.Join(state, ", ")), nil
	})
	d = getDeployment(t, ns, app)
	if d.Status.TerminatingReplicas != nil && *d.Status.TerminatingReplicas != 0 {
		eventually(t, 10*time.Second, "the Deployment with no terminating replicas", func(ctx context.Context) (bool, string, error) {
			d := getDeployment(t, ns, app)
			return *d.Status.TerminatingReplicas == 0, describe(d), nil
		})
	}
}

// terminatingEndpoints are the sorted addresses of the slices' endpoints
// that are terminating, not ready.
func terminatingEndpoints(list []discoveryv1.EndpointSlice) []string {
	var out []string
	for _, es := range list {
		for _, ep := range es.Endpoints {
			c := ep.Conditions
			if c.Terminating != nil && *c.Terminating && (c.Ready == nil || !*c.Ready) {
				out = append(out, ep.Addresses...)
			}
		}
	}
	slices.Sort(out)
	return out
}
