package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/iter8-tools/iter8/test/node"
)

const restricted = "restricted"

func startDeploymentHarness(t *testing.T, ns string) *node.Harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := node.Start(ctx, node.Config{Admin: env.Config, Namespace: ns, Logf: t.Logf, Deployments: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	return h
}

// webDeployment is a Deployment of one restricted container serving on the
// named port http (8080); its Pods are labelled app=name.
func webDeployment(name string, n int32, image string) *appsv1.Deployment {
	lbl := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(n),
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec: corev1.PodSpec{
					ServiceAccountName: "runner",
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr(true),
						RunAsUser:      ptr(int64(65532)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name: "web", Image: image,
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr(false),
							ReadOnlyRootFilesystem:   ptr(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}
}

// webService selects app=name on port 80, target the named port http.
func webService(name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
}

func create[T any](t *testing.T, ns string, obj T) T {
	t.Helper()
	ctx := context.Background()
	var got any
	var err error
	switch o := any(obj).(type) {
	case *appsv1.Deployment:
		got, err = env.Clientset.AppsV1().Deployments(ns).Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Service:
		got, err = env.Clientset.CoreV1().Services(ns).Create(ctx, o, metav1.CreateOptions{})
	default:
		t.Fatalf("create %T: unsupported", obj)
	}
	if err != nil {
		t.Fatal(err)
	}
	return got.(T)
}

// eventually polls check until it reports done, failing the test with
// check's last description of the state when timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func(ctx context.Context) (bool, string, error)) {
	t.Helper()
	last := ""
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		done, state, err := check(ctx)
		last = state
		return done, err
	})
	if err != nil {
		t.Fatalf("waiting %v for %s: %v; last state: %s", timeout, what, err, last)
	}
}

func condition(d *appsv1.Deployment, typ appsv1.DeploymentConditionType) (corev1.ConditionStatus, string) {
	for _, c := range d.Status.Conditions {
		if c.Type == typ {
			return c.Status, c.Reason
		}
	}
	return "", ""
}

func describe(d *appsv1.Deployment) string {
	avail, _ := condition(d, appsv1.DeploymentAvailable)
	prog, reason := condition(d, appsv1.DeploymentProgressing)
	s := d.Status
	return fmt.Sprintf("generation %d observed %d: replicas %d updated %d ready %d available %d unavailable %d; Available=%s Progressing=%s/%s",
		d.Generation, s.ObservedGeneration, s.Replicas, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas,
		s.UnavailableReplicas, avail, prog, reason)
}

// rolledOut is what kstatus and Helm's --wait require of a Deployment: its
// generation observed, every replica updated, ready and available, and the
// conditions Available and Progressing/NewReplicaSetAvailable.
func rolledOut(d *appsv1.Deployment) bool {
	n := *d.Spec.Replicas
	s := d.Status
	avail, _ := condition(d, appsv1.DeploymentAvailable)
	prog, reason := condition(d, appsv1.DeploymentProgressing)
	return s.ObservedGeneration == d.Generation && s.Replicas == n && s.UpdatedReplicas == n && s.ReadyReplicas == n &&
		s.AvailableReplicas == n && s.UnavailableReplicas == 0 && avail == corev1.ConditionTrue &&
		prog == corev1.ConditionTrue && reason == "NewReplicaSetAvailable"
}

func waitRolledOut(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	eventually(t, 30*time.Second, "Deployment "+name+" rolled out", func(ctx context.Context) (bool, string, error) {
		var err error
		if d, err = env.Clientset.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return false, "", err
		}
		return rolledOut(d), describe(d), nil
	})
	return d
}

func ownedReplicaSets(t *testing.T, ns string, owner *appsv1.Deployment) []appsv1.ReplicaSet {
	t.Helper()
	list, err := env.Clientset.AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []appsv1.ReplicaSet
	for _, rs := range list.Items {
		if ref := metav1.GetControllerOf(&rs); ref != nil && ref.UID == owner.UID {
			out = append(out, rs)
		}
	}
	return out
}

func podsOf(ctx context.Context, ns, app string) ([]corev1.Pod, error) {
	list, err := env.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

func podIsReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func serviceSlices(ctx context.Context, ns, svc string) ([]discoveryv1.EndpointSlice, error) {
	list, err := env.Clientset.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// endpoints describes a Service's endpoints as sorted "address ready|unready".
func endpoints(list []discoveryv1.EndpointSlice) []string {
	var out []string
	for _, es := range list {
		for _, ep := range es.Endpoints {
			state := "unready"
			if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
				state = "ready"
			}
			out = append(out, strings.Join(ep.Addresses, "+")+" "+state)
		}
	}
	slices.Sort(out)
	return out
}

func podEndpoints(pods []corev1.Pod, state string) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Status.PodIP+" "+state)
	}
	slices.Sort(out)
	return out
}

func TestDeploymentBecomesAvailable(t *testing.T) {
	const ns = "deploy-ok"
	setupNamespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": restricted})
	startDeploymentHarness(t, ns)
	ctx := context.Background()
	svc := create(t, ns, webService("web"))
	started := time.Now()
	create(t, ns, webDeployment("web", 2, "example.invalid/web:1"))
	d := waitRolledOut(t, ns, "web")
	t.Logf("rolled out in %v", time.Since(started))

	rss := ownedReplicaSets(t, ns, d)
	if len(rss) != 1 {
		t.Fatalf("%d ReplicaSets owned by the Deployment; want 1", len(rss))
	}
	rs := rss[0]
	hash := rs.Labels["pod-template-hash"]
	if want, _ := node.TemplateHash(&d.Spec.Template); hash == "" || hash != want || rs.Name != "web-"+hash ||
		rs.Spec.Selector.MatchLabels["pod-template-hash"] != hash || rs.Spec.Template.Labels["pod-template-hash"] != hash {
		t.Errorf("ReplicaSet %s: labels %v, selector %v, template labels %v; want web-%s with pod-template-hash %[5]s on all three",
			rs.Name, rs.Labels, rs.Spec.Selector.MatchLabels, rs.Spec.Template.Labels, want)
	}
	if s := rs.Status; s.Replicas != 2 || s.FullyLabeledReplicas != 2 || s.ReadyReplicas != 2 || s.AvailableReplicas != 2 ||
		s.ObservedGeneration != rs.Generation {
		t.Errorf("ReplicaSet status = %+v; want 2 of each at generation %d", s, rs.Generation)
	}

	pods, err := podsOf(ctx, ns, "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 2 {
		t.Fatalf("%d Pods; want 2", len(pods))
	}
	for _, p := range pods {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.UID != rs.UID || !strings.HasPrefix(p.Name, rs.Name+"-") || len(p.Name) != len(rs.Name)+6 ||
			p.Labels["pod-template-hash"] != hash || p.Status.Phase != corev1.PodRunning || !podIsReady(&p) ||
			!strings.HasPrefix(p.Status.PodIP, "10.244.") || p.Status.HostIP != node.NodeIP {
			t.Errorf("Pod %s: owner %+v, labels %v, phase %s, ready %v, IP %s, host %s; want a Running, Ready Pod of %s at 10.244.x.y",
				p.Name, ref, p.Labels, p.Status.Phase, podIsReady(&p), p.Status.PodIP, p.Status.HostIP, rs.Name)
		}
	}
	if pods[0].Status.PodIP == pods[1].Status.PodIP {
		t.Errorf("both Pods have address %s", pods[0].Status.PodIP)
	}

	want := podEndpoints(pods, "ready")
	eventually(t, 30*time.Second, "the Service's endpoints", func(ctx context.Context) (bool, string, error) {
		s, err := serviceSlices(ctx, ns, "web")
		return slices.Equal(endpoints(s), want), fmt.Sprint(endpoints(s)), err
	})
	s, err := serviceSlices(ctx, ns, "web")
	if err != nil {
		t.Fatal(err)
	}
	es := s[0]
	ref := metav1.GetControllerOf(&es)
	if len(s) != 1 || es.Labels[discoveryv1.LabelManagedBy] != node.ManagedBy || ref == nil || ref.UID != svc.UID ||
		es.AddressType != discoveryv1.AddressTypeIPv4 || len(es.Ports) != 1 || *es.Ports[0].Port != 8080 ||
		*es.Ports[0].Name != "http" || *es.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("EndpointSlices = %+v; want one IPv4 slice managed by %s, owned by the Service, port http 8080/TCP", s, node.ManagedBy)
	}
}

func TestImageChangeRollsOut(t *testing.T) {
	const ns = "deploy-roll"
	setupNamespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": restricted})
	startDeploymentHarness(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	create(t, ns, webService("web"))
	d := create(t, ns, webDeployment("web", 2, "example.invalid/web:1"))
	d = waitRolledOut(t, ns, "web")
	oldRS := ownedReplicaSets(t, ns, d)[0]

	// Every status written from now on is recorded.
	w, err := env.Clientset.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=web", ResourceVersion: d.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	d.Spec.Template.Spec.Containers[0].Image = "example.invalid/web:2"
	if d, err = env.Clientset.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if d.Generation != 2 {
		t.Fatalf("generation after the image change = %d; want 2", d.Generation)
	}
	var seen []string
	for done := false; !done; {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch ended; statuses seen:\n%s", strings.Join(seen, "\n"))
			}
			if ev.Type != watch.Modified {
				continue
			}
			got := ev.Object.(*appsv1.Deployment)
			seen = append(seen, describe(got))
			prog, reason := condition(got, appsv1.DeploymentProgressing)
			// Complete is claimed for generation 2 only with every replica
			// of the new template.
			if got.Status.ObservedGeneration == 2 && prog == corev1.ConditionTrue && reason == "NewReplicaSetAvailable" &&
				!rolledOut(got) {
				t.Errorf("status claims generation 2 complete before it is: %s", describe(got))
			}
			done = rolledOut(got) && got.Generation == 2
		case <-ctx.Done():
			t.Fatalf("no rollout of generation 2; statuses seen:\n%s", strings.Join(seen, "\n"))
		}
	}
	t.Logf("statuses during the rollout:\n%s", strings.Join(seen, "\n"))

	rss := ownedReplicaSets(t, ns, d)
	if len(rss) != 2 {
		t.Fatalf("%d ReplicaSets; want the old and the new", len(rss))
	}
	for _, rs := range rss {
		if rs.UID == oldRS.UID {
			if *rs.Spec.Replicas != 0 || rs.Status.Replicas != 0 {
				t.Errorf("old ReplicaSet %s: %d wanted, %d Pods; want 0 and 0", rs.Name, *rs.Spec.Replicas, rs.Status.Replicas)
			}
			continue
		}
		if rs.Spec.Template.Spec.Containers[0].Image != "example.invalid/web:2" || rs.Status.ReadyReplicas != 2 ||
			rs.Annotations["deployment.kubernetes.io/revision"] != "2" {
			t.Errorf("new ReplicaSet %s: image %s, %d ready, revision %q; want web:2, 2, \"2\"", rs.Name,
				rs.Spec.Template.Spec.Containers[0].Image, rs.Status.ReadyReplicas, rs.Annotations["deployment.kubernetes.io/revision"])
		}
	}
	pods, err := podsOf(ctx, ns, "web")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if p.Spec.Containers[0].Image != "example.invalid/web:2" {
			t.Errorf("Pod %s of the old template remains", p.Name)
		}
	}
	want := podEndpoints(pods, "ready")
	eventually(t, 30*time.Second, "endpoints of the new Pods only", func(ctx context.Context) (bool, string, error) {
		s, err := serviceSlices(ctx, ns, "web")
		return slices.Equal(endpoints(s), want), fmt.Sprint(endpoints(s)), err
	})
}

func TestHoldUnready(t *testing.T) {
	const ns = "deploy-hold"
	setupNamespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": restricted})
	h := startDeploymentHarness(t, ns)
	create(t, ns, webService("held"))
	h.HoldUnready(ns, "held", true)
	create(t, ns, webDeployment("held", 1, "example.invalid/web:1"))

	unready := func(ctx context.Context) (bool, string, error) {
		d, err := env.Clientset.AppsV1().Deployments(ns).Get(ctx, "held", metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		s, err := serviceSlices(ctx, ns, "held")
		if err != nil {
			return false, "", err
		}
		avail, _ := condition(d, appsv1.DeploymentAvailable)
		eps := endpoints(s)
		state := describe(d) + "; endpoints " + fmt.Sprint(eps)
		return d.Status.ObservedGeneration == d.Generation && d.Status.Replicas == 1 && d.Status.ReadyReplicas == 0 &&
			d.Status.AvailableReplicas == 0 && avail != corev1.ConditionTrue &&
			len(eps) == 1 && strings.HasSuffix(eps[0], " unready"), state, nil
	}
	eventually(t, 30*time.Second, "a held Deployment unavailable with an unready endpoint", unready)
	pods, err := podsOf(context.Background(), ns, "held")
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 1 || pods[0].Status.Phase != corev1.PodRunning || podIsReady(&pods[0]) {
		t.Errorf("Pods = %+v; want one Running and not Ready", pods)
	}

	h.HoldUnready(ns, "held", false)
	d := waitRolledOut(t, ns, "held")
	eventually(t, 30*time.Second, "a ready endpoint", func(ctx context.Context) (bool, string, error) {
		s, err := serviceSlices(ctx, ns, "held")
		eps := endpoints(s)
		return len(eps) == 1 && strings.HasSuffix(eps[0], " ready"), fmt.Sprint(eps), err
	})

	// Holding an Available Deployment takes its readiness away again.
	h.HoldUnready(ns, "held", true)
	eventually(t, 30*time.Second, "the Deployment unavailable again", unready)
	if got := ownedReplicaSets(t, ns, d); len(got) != 1 {
		t.Errorf("%d ReplicaSets; holding must not roll out", len(got))
	}
}

func TestDeleteDeploymentRemovesItsObjects(t *testing.T) {
	const ns = "deploy-gc"
	setupNamespace(t, ns, nil)
	startDeploymentHarness(t, ns)
	ctx := context.Background()
	// A Service without a selector (its endpoints are someone else's) is
	// created first, so that once the second one has its slice the harness
	// has seen both.
	create(t, ns, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "external"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	})
	create(t, ns, webService("web"))
	create(t, ns, webDeployment("web", 2, "example.invalid/web:1"))
	waitRolledOut(t, ns, "web")
	eventually(t, 30*time.Second, "two ready endpoints", func(ctx context.Context) (bool, string, error) {
		s, err := serviceSlices(ctx, ns, "web")
		return len(endpoints(s)) == 2, fmt.Sprint(endpoints(s)), err
	})
	if s, err := serviceSlices(ctx, ns, "external"); err != nil || len(s) != 0 {
		t.Errorf("slices of the Service without selector = %+v, %v; want none", s, err)
	}

	// As kubectl and helm delete: background propagation, which no garbage
	// collector follows here but the harness.
	if err := env.Clientset.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{
		PropagationPolicy: ptr(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "no ReplicaSets, Pods or ready endpoints", func(ctx context.Context) (bool, string, error) {
		rss, err := env.Clientset.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, "", err
		}
		pods, err := env.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, "", err
		}
		s, err := serviceSlices(ctx, ns, "web")
		return len(rss.Items) == 0 && len(pods.Items) == 0 && len(s) == 1 && len(endpoints(s)) == 0,
			fmt.Sprintf("%d ReplicaSets, %d Pods, %d slices with endpoints %v", len(rss.Items), len(pods.Items), len(s), endpoints(s)), err
	})

	if err := env.Clientset.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the deleted Service's slice gone", func(ctx context.Context) (bool, string, error) {
		s, err := serviceSlices(ctx, ns, "web")
		return len(s) == 0, fmt.Sprintf("%d slices", len(s)), err
	})
}

func TestRefusedPodIsReported(t *testing.T) {
	const ns = "deploy-refused"
	setupNamespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": restricted})
	startDeploymentHarness(t, ns)
	d := webDeployment("priv", 1, "example.invalid/web:1")
	d.Spec.Template.Spec.Containers[0].SecurityContext.Privileged = ptr(true)
	d.Spec.Template.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
	d = create(t, ns, d)
	eventually(t, 30*time.Second, "ReplicaFailure on the ReplicaSet", func(ctx context.Context) (bool, string, error) {
		rss := ownedReplicaSets(t, ns, d)
		if len(rss) != 1 {
			return false, fmt.Sprintf("%d ReplicaSets", len(rss)), nil
		}
		for _, c := range rss[0].Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue && c.Reason == "FailedCreate" &&
				strings.Contains(c.Message, "violates PodSecurity") {
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("conditions %+v", rss[0].Status.Conditions), nil
	})
	got, err := env.Clientset.AppsV1().Deployments(ns).Get(context.Background(), "priv", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if avail, _ := condition(got, appsv1.DeploymentAvailable); avail == corev1.ConditionTrue {
		t.Errorf("Deployment %s; want it not Available", describe(got))
	}
}

func helm(ctx context.Context, args ...string) (string, error) {
	cmd := env.Helm(ctx, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func TestHelmWait(t *testing.T) {
	const ns = "deploy-helm"
	setupNamespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": restricted})
	// The chart's Pods use the namespace's default ServiceAccount.
	if _, err := env.Clientset.CoreV1().ServiceAccounts(ns).Create(context.Background(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h := startDeploymentHarness(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	start := time.Now()
	if out, err := helm(ctx, "install", "ready", "testdata/web", "-n", ns, "--wait", "--timeout", "60s"); err != nil {
		t.Fatalf("helm install --wait: %v\n%s", err, out)
	}
	t.Logf("helm install --wait succeeded in %v", time.Since(start))
	d, err := env.Clientset.AppsV1().Deployments(ns).Get(ctx, "ready", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rolledOut(d) {
		t.Errorf("after helm --wait: %s; want rolled out", describe(d))
	}

	h.HoldUnready(ns, "held", true)
	start = time.Now()
	out, err := helm(ctx, "install", "held", "testdata/web", "-n", ns, "--wait", "--timeout", "5s")
	var exitErr *exec.ExitError
	if err == nil || !errors.As(err, &exitErr) {
		t.Fatalf("helm install --wait of a held Deployment: %v; want it to fail\n%s", err, out)
	}
	t.Logf("helm install --wait of a held Deployment failed in %v: %s", time.Since(start), strings.TrimSpace(out))

	// --atomic uninstalls the failed release; the harness then removes the
	// ReplicaSet and Pods that the garbage collector would.
	h.HoldUnready(ns, "atomic", true)
	start = time.Now()
	if out, err := helm(ctx, "install", "atomic", "testdata/web", "-n", ns, "--atomic", "--timeout", "5s"); err == nil {
		t.Fatalf("helm install --atomic of a held Deployment succeeded; want it to fail\n%s", out)
	}
	t.Logf("helm install --atomic of a held Deployment failed in %v", time.Since(start))
	eventually(t, 30*time.Second, "the atomic release's Pods gone", func(ctx context.Context) (bool, string, error) {
		pods, err := podsOf(ctx, ns, "atomic")
		return len(pods) == 0, fmt.Sprintf("%d Pods", len(pods)), err
	})
	if out, err := helm(ctx, "status", "atomic", "-n", ns); err == nil {
		t.Errorf("helm status of the atomic release: %s; want it uninstalled", out)
	}
}

func TestScaleAndPodAddress(t *testing.T) {
	const ns = "deploy-scale"
	setupNamespace(t, ns, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A Pod of the "web" app is given an address of the caller's choosing,
	// as a test whose backends live in network namespaces would.
	h, err := node.Start(ctx, node.Config{Admin: env.Config, Namespace: ns, Logf: t.Logf, Deployments: true,
		PodAddress: func(p *corev1.Pod) string {
			if p.Labels["app"] == "web" {
				return "10.99.0.7"
			}
			return ""
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	create(t, ns, webService("web"))
	create(t, ns, webDeployment("web", 3, "example.invalid/web:1"))
	d := waitRolledOut(t, ns, "web")

	d.Spec.Replicas = ptr(int32(1))
	if _, err := env.Clientset.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	d = waitRolledOut(t, ns, "web")
	if d.Status.ObservedGeneration != 2 {
		t.Errorf("observed generation %d after scaling; want 2", d.Status.ObservedGeneration)
	}
	if rss := ownedReplicaSets(t, ns, d); len(rss) != 1 || *rss[0].Spec.Replicas != 1 {
		t.Errorf("ReplicaSets %+v; want the one scaled to 1", rss)
	}
	eventually(t, 30*time.Second, "one endpoint at the given address", func(ctx context.Context) (bool, string, error) {
		pods, err := podsOf(ctx, ns, "web")
		if err != nil {
			return false, "", err
		}
		s, err := serviceSlices(ctx, ns, "web")
		eps := endpoints(s)
		return len(pods) == 1 && slices.Equal(eps, []string{"10.99.0.7 ready"}), fmt.Sprintf("%d Pods, endpoints %v", len(pods), eps), err
	})
}
