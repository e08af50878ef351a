package chart_test

import (
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// dryRun asks the API server to admit and validate, and store nothing.
var dryRun = []string{metav1.DryRunAll}

// createNamespace makes a namespace with labels. Namespaces are not
// deleted: the test bed runs no namespace controller to finish a deletion.
func createNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := env.Clientset.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// objectsIn lists the kinds a release of the chart may create in ns, as
// sorted "Kind/name", limited by a label selector ("" for all).
func objectsIn(t *testing.T, ns, selector string) []string {
	t.Helper()
	ctx, c := t.Context(), env.Clientset
	opts := metav1.ListOptions{LabelSelector: selector}
	var got []string
	add := func(kind string, err error, names ...string) {
		if err != nil {
			t.Fatalf("list %s in %s: %v", kind, ns, err)
		}
		for _, n := range names {
			got = append(got, kind+"/"+n)
		}
	}
	secrets, err := c.CoreV1().Secrets(ns).List(ctx, opts)
	add("Secret", err, names(secrets.Items, func(o corev1.Secret) string { return o.Name })...)
	sas, err := c.CoreV1().ServiceAccounts(ns).List(ctx, opts)
	add("ServiceAccount", err, names(sas.Items, func(o corev1.ServiceAccount) string { return o.Name })...)
	roles, err := c.RbacV1().Roles(ns).List(ctx, opts)
	add("Role", err, names(roles.Items, func(o rbacv1.Role) string { return o.Name })...)
	rbs, err := c.RbacV1().RoleBindings(ns).List(ctx, opts)
	add("RoleBinding", err, names(rbs.Items, func(o rbacv1.RoleBinding) string { return o.Name })...)
	jobs, err := c.BatchV1().Jobs(ns).List(ctx, opts)
	add("Job", err, names(jobs.Items, func(o batchv1.Job) string { return o.Name })...)
	pods, err := c.CoreV1().Pods(ns).List(ctx, opts)
	add("Pod", err, names(pods.Items, func(o corev1.Pod) string { return o.Name })...)
	slices.Sort(got)
	return got
}

// snapshot lists the namespace and every object in it, of every namespaced
// type, with their resourceVersions: any write changes it.
func snapshot(t *testing.T, ns string) []string {
	t.Helper()
	n, err := env.Clientset.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := env.Objects(t.Context(), ns)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{"Namespace/" + ns + "@" + n.ResourceVersion}
	for _, o := range objs {
		out = append(out, o.ID+"@"+o.ResourceVersion)
	}
	return out
}

func names[T any](items []T, name func(T) string) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, name(it))
	}
	return out
}

// TestJobPassesRestricted installs the chart (without running its hook)
// into a namespace that enforces Pod Security "restricted", then asks the
// API server to admit the release's Job and a Pod made from its template, as
// the Job controller would make it.
func TestJobPassesRestricted(t *testing.T) {
	const ns, release = "iter8-restricted", "perf"
	createNamespace(t, ns, map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
		"pod-security.kubernetes.io/warn":            "restricted",
		"pod-security.kubernetes.io/warn-version":    "latest",
	})
	mustHelm(t, "install", release, chartDir, "-n", ns, "-f", absPath(t, typicalValues), "--no-hooks")
	t.Cleanup(func() { helm(t, "uninstall", release, "-n", ns) })

	// The Job exactly as the release holds it.
	hooks := parseManifests(t, mustHelm(t, "get", "hooks", release, "-n", ns).stdout)
	var job batchv1.Job
	hooks.decode(t, "Job/perf-iter8-run", &job)
	job.Namespace = ns

	// Pod Security only warns about a Job's template; collect the warnings.
	warnings := &warningRecorder{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = warnings
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.BatchV1().Jobs(ns).Create(t.Context(), &job, metav1.CreateOptions{DryRun: dryRun}); err != nil {
		t.Fatalf("create Job %s (dry run): %v", job.Name, err)
	}
	if w := warnings.get(); len(w) != 0 {
		t.Errorf("create Job %s: warnings %q, want none", job.Name, w)
	}

	podFrom := func(spec *corev1.PodSpec) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-x", Namespace: ns, Labels: job.Spec.Template.Labels},
			Spec:       *spec,
		}
	}
	pod, err := c.CoreV1().Pods(ns).Create(t.Context(), podFrom(job.Spec.Template.Spec.DeepCopy()), metav1.CreateOptions{DryRun: dryRun})
	if err != nil {
		t.Fatalf("create Pod from the Job's template (dry run): %v", err)
	}
	// ServiceAccount admission found the chart's ServiceAccount and mounted
	// its token (the run reads its Secrets with it).
	if !hasTokenVolume(pod) {
		t.Errorf("admitted Pod has no ServiceAccount token volume: %+v", pod.Spec.Volumes)
	}

	// Each weakening is refused, which shows that the check above can fail.
	weaken := []struct {
		name, field string
		change      func(*corev1.PodSpec)
	}{
		{"runAsNonRoot false", "runAsNonRoot", func(s *corev1.PodSpec) { s.SecurityContext.RunAsNonRoot = new(false) }},
		{"privilege escalation", "allowPrivilegeEscalation", func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext.AllowPrivilegeEscalation = new(true)
		}},
		{"capabilities kept", "capabilities", func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.Capabilities = nil }},
		{"no seccomp profile", "seccompProfile", func(s *corev1.PodSpec) { s.SecurityContext.SeccompProfile = nil }},
	}
	for _, w := range weaken {
		t.Run(w.name, func(t *testing.T) {
			spec := job.Spec.Template.Spec.DeepCopy()
			w.change(spec)
			_, err := c.CoreV1().Pods(ns).Create(t.Context(), podFrom(spec), metav1.CreateOptions{DryRun: dryRun})
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), w.field) {
				t.Errorf("create weakened Pod (dry run): got %v, want Forbidden naming %s", err, w.field)
			}
		})
	}
}

func hasTokenVolume(pod *corev1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				return true
			}
		}
	}
	return false
}

// warningRecorder keeps the API server's warnings.
type warningRecorder struct {
	mu       sync.Mutex
	warnings []string
}

func (r *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warnings = append(r.warnings, text)
}

func (r *warningRecorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.warnings)
}

// TestInstallBadValues shows that bad values fail `helm install` before
// anything exists in the cluster, not even Helm's release record.
func TestInstallBadValues(t *testing.T) {
	const ns = "iter8-bad"
	createNamespace(t, ns, nil)
	before := snapshot(t, ns)
	// typical.yaml sets secretEnv[0]; --set changes one of its fields or adds
	// secretEnv[1].
	tests := []badValues{
		{"unknown key", []string{"replicas=2"}, "additional properties 'replicas' not allowed"},
		{"secretEnv name not an env var", []string{"secretEnv[0].name=SLACK-URL"}, "/secretEnv/0/name"},
		{"secretEnv name starts with a digit", []string{"secretEnv[0].name=1URL"}, "/secretEnv/0/name"},
		{"secretEnv secretName not a DNS subdomain", []string{"secretEnv[0].secretName=Slack_Hook"}, "/secretEnv/0/secretName"},
		{"secretEnv entry without key", []string{"secretEnv[1].name=URL,secretEnv[1].secretName=slack"}, "missing property 'key'"},
		{"secretEnv unknown key", []string{"secretEnv[0].value=x"}, "additional properties 'value' not allowed"},
		{"secretEnv name twice", []string{"secretEnv[1].name=SLACK_WEBHOOK_URL,secretEnv[1].secretName=other,secretEnv[1].key=url"},
			`secretEnv[1].name: "SLACK_WEBHOOK_URL" is already set by secretEnv[0]`},
		{"image unknown key", []string{"image.digest=sha256:00"}, "additional properties 'digest' not allowed"},
		{"image pullPolicy", []string{"image.pullPolicy=Sometimes"}, "/image/pullPolicy"},
		{"serviceAccountName", []string{"serviceAccountName=CI_Runner"}, "/serviceAccountName"},
		{"resources unknown key", []string{"resources.cpu=1"}, "additional properties 'cpu' not allowed"},
		{"resources quantity", []string{"resources.limits.memory=lots"}, "/resources/limits/memory"},
		{"no loops", []string{"loops=0"}, "/loops"},
		{"interval not a duration", []string{"interval=soon"}, "/interval"},
		{"failedLoops", []string{"failedLoops=retry"}, "/failedLoops"},
		{"confidence outside (0,1)", []string{"assess.comparisons[0].metric=http/latency,assess.confidence=1.5"}, "assess.confidence: 1.5 is not between 0 and 1"},
		{"comparison unknown key", []string{"assess.comparisons[0].metric=http/latency,assess.comparisons[0].against=v1"}, "additional properties 'against' not allowed"},
		{"abn application without namespace", []string{"tasks={abn},versions={v1,v2},abn.endpoint=http://abn:8080,abn.application=shop,abn.metrics={purchase}"}, "/abn/application"},
		{"abn metric name", []string{"tasks={abn},versions={v1,v2},abn.endpoint=http://abn:8080,abn.application=ns/shop,abn.metrics={1st}"}, "/abn/metrics/0"},
		{"abn unknown key", []string{"abn.window=1h"}, "additional properties 'window' not allowed"},
		// A bandit over typical.yaml's reward, then one bad value each.
		{"bandit without release", []string{"tasks={ready,http,assess,bandit},loops=3,bandit.reward=http/latency-mean"}, "bandit.release: the app's release (charts/release) is required"},
		{"bandit release name", []string{bandit, "bandit.release=Shop/App"}, "/bandit/release"},
		{"bandit reward not among assess's", []string{bandit, "bandit.reward=http/latency-p99"}, "bandit.reward: http/latency-p99 is not among assess.rewards"},
		{"bandit with one loop", []string{bandit, "loops=1"}, "loops: 1: the bandit moves weights from loop to loop"},
		{"bandit floor over 50", []string{bandit, "bandit.floor=60"}, "/bandit/floor"},
		{"bandit baselineFloor below floor", []string{bandit, "bandit.floor=20,bandit.baselineFloor=10"}, "bandit.baselineFloor: 10 is below floor 20"},
		{"bandit floors over 100", []string{bandit, "bandit.floor=40,bandit.baselineFloor=70,bandit.maxStep=70"}, "make 110%, more than 100"},
		{"bandit maxStep below the floors", []string{bandit, "bandit.maxStep=5"}, "bandit.maxStep: 5 is below the baseline's floor 10"},
		{"bandit maxStep 0", []string{bandit, "bandit.maxStep=0"}, "/bandit/maxStep"},
		{"bandit negative minSample", []string{bandit, "bandit.minSample=-1"}, "/bandit/minSample"},
		{"bandit promoteAt 1", []string{bandit, "bandit.promoteAt=1"}, "/bandit/promoteAt"},
		{"bandit beta below 0.5", []string{bandit, "bandit.beta=0.3"}, "/bandit/beta"},
		{"bandit atBudget", []string{bandit, "bandit.atBudget=rollback"}, "/bandit/atBudget"},
		{"bandit onUpgradeFailure", []string{bandit, "bandit.onUpgradeFailure=retry"}, "/bandit/onUpgradeFailure"},
		{"bandit baseline not a version", []string{bandit, "bandit.baseline=v3"}, "bandit.baseline: v3 is not one of versions"},
		{"bandit timeout", []string{bandit, "bandit.timeout=soon"}, "/bandit/timeout"},
		{"backoffLimit 0", []string{bandit, "backoffLimit=0"}, "/backoffLimit"},
		// A rollout over typical.yaml's SLOs, then one bad value each.
		{"rollout without release", []string{"tasks={ready,http,assess,rollout},loops=5,interval=10s"}, "rollout.release: the app's release (charts/release) is required"},
		{"rollout release name", []string{rollout, "rollout.release=Shop/App"}, "/rollout/release"},
		{"rollout without assess before it", []string{rollout, "tasks={ready,http,rollout,assess}"}, "tasks: the rollout needs an assess task before it"},
		{"rollout with too few loops", []string{rollout, "loops=4"}, "loops: 4: the rollout takes a step per loop and needs a loop to analyse the last: give at least 5 loops"},
		{"rollout without interval", []string{rollout, "interval="}, "interval: the rollout needs an interval between loops"},
		{"rollout steps not rising", []string{rollout, "rollout.steps={10,50,50,100}"}, "rollout.steps[2]: 50: the candidate's weights must rise at every step"},
		{"rollout last step not 100", []string{rollout, "rollout.steps={10,50}"}, "rollout.steps: the last step is 50: the last must be 100"},
		{"rollout step 0", []string{rollout, "rollout.steps={0,100}"}, "/rollout/steps/0"},
		{"rollout step over 100", []string{rollout, "rollout.steps={50,150}"}, "/rollout/steps/1"},
		{"rollout candidate not a version", []string{rollout, "rollout.candidate=v3"}, "rollout.candidate: v3 is not one of versions"},
		{"rollout candidate is the baseline", []string{rollout, "rollout.candidate=v1"}, "rollout.candidate: v1 is the baseline"},
		{"rollout progressDeadline", []string{rollout, "rollout.progressDeadline=soon"}, "/rollout/progressDeadline"},
		{"rollout unknown key", []string{rollout, "rollout.interval=1m"}, "additional properties 'interval' not allowed"},
		{"rollout and bandit", []string{rollout, "tasks={ready,http,assess,bandit,rollout},bandit.release=app,bandit.reward=http/latency-mean"}, "tasks: bandit and rollout both move the app's weights"},
	}
	checkBadInstalls(t, ns, []string{"-f", absPath(t, typicalValues)}, before, tests)
}

// bandit adds a valid bandit to typical.yaml's experiment.
const bandit = "tasks={ready,http,assess,bandit},loops=3,interval=10s,bandit.release=app,bandit.reward=http/latency-mean"

// rollout adds a valid rollout to typical.yaml's experiment.
const rollout = "tasks={ready,http,assess,rollout},loops=5,interval=10s,rollout.release=app"

// badValues is a value set that helm install must refuse, saying want.
type badValues struct {
	name string
	set  []string
	want string // in helm's error
}

// checkBadInstalls runs helm install with args and each value set, wants
// each refused with its message, and then the namespace as it was before
// (a snapshot) and no release.
func checkBadInstalls(t *testing.T, ns string, args []string, before []string, tests []badValues) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A short timeout: were the values taken, helm would wait for
			// the hook Job, which nothing runs here.
			args := append([]string{"install", "bad", chartDir, "-n", ns, "--timeout", "10s"}, args...)
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			r := helm(t, args...)
			if r.err == nil {
				t.Fatalf("want failure: %s", r)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("helm's error does not say %q: %s", tc.want, r)
			}
		})
	}
	if after := snapshot(t, ns); !slices.Equal(after, before) {
		t.Errorf("after failed installs, namespace %s changed:\n got %v\nwant %v", ns, after, before)
	}
	if out := mustHelm(t, "list", "-a", "-n", ns, "-q").stdout; strings.TrimSpace(out) != "" {
		t.Errorf("helm list: got releases %q, want none", out)
	}
}

// TestInstallUpgradeUninstall installs the chart without its hook, checks
// the release's objects and what its ServiceAccount may do, upgrades it
// (results written by a run survive), and uninstalls it (nothing is left).
func TestInstallUpgradeUninstall(t *testing.T) {
	const ns, release = "iter8-install", "perf"
	createNamespace(t, ns, nil)
	ctx := t.Context()
	selector := "iter8.tools/experiment=" + release
	mustHelm(t, "install", release, chartDir, "-n", ns, "-f", absPath(t, typicalValues), "--no-hooks")
	t.Cleanup(func() { helm(t, "uninstall", release, "-n", ns) })

	want := []string{"Role/perf-iter8", "RoleBinding/perf-iter8", "Secret/perf-result", "Secret/perf-spec", "ServiceAccount/perf-iter8"}
	if got := objectsIn(t, ns, selector); !slices.Equal(got, want) {
		t.Fatalf("after install, objects labelled %s:\n got %v\nwant %v", selector, got, want)
	}
	labels := wantLabels(t, release)
	for _, name := range []string{"perf-spec", "perf-result"} {
		s, err := env.Clientset.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range labels {
			if s.Labels[k] != v {
				t.Errorf("Secret %s label %s: got %q, want %q", name, k, s.Labels[k], v)
			}
		}
	}

	t.Run("ServiceAccount may only read its spec, update its result and patch its Job", func(t *testing.T) {
		sa := "system:serviceaccount:" + ns + ":perf-iter8"
		groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
		checks := []struct {
			verb, resource, name string
			allowed              bool
			group                string
		}{
			{"get", "secrets", "perf-spec", true, ""},
			{"update", "secrets", "perf-spec", false, ""},
			{"patch", "secrets", "perf-spec", false, ""},
			{"get", "secrets", "perf-result", true, ""},
			{"update", "secrets", "perf-result", true, ""},
			{"patch", "secrets", "perf-result", false, ""},
			{"delete", "secrets", "perf-result", false, ""},
			{"get", "secrets", "slack", false, ""},
			{"list", "secrets", "", false, ""},
			{"watch", "secrets", "", false, ""},
			{"create", "secrets", "", false, ""},
			{"get", "pods", "", false, ""},
			{"create", "pods", "", false, ""},
			{"patch", "jobs", "perf-iter8-run", true, "batch"},
			{"get", "jobs", "perf-iter8-run", false, "batch"},
			{"update", "jobs", "perf-iter8-run", false, "batch"},
			{"delete", "jobs", "perf-iter8-run", false, "batch"},
			{"patch", "jobs", "other-iter8-run", false, "batch"},
			{"create", "jobs", "", false, "batch"},
		}
		for _, c := range checks {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: sa, Groups: groups,
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: c.verb, Group: c.group, Resource: c.resource, Name: c.name},
			}}
			got, err := env.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("review %s %s %s: %v", c.verb, c.resource, c.name, err)
			}
			if got.Status.Allowed != c.allowed {
				t.Errorf("%s may %s %s %q: got %v, want %v (%s)", sa, c.verb, c.resource, c.name, got.Status.Allowed, c.allowed, got.Status.Reason)
			}
		}
	})

	t.Run("upgrade keeps results", func(t *testing.T) {
		// What a run does: write its result into the result Secret.
		s, err := env.Clientset.CoreV1().Secrets(ns).Get(ctx, "perf-result", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Data = map[string][]byte{"1": []byte(`{"revision":1}`)}
		if _, err := env.Clientset.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("write result: %v", err)
		}
		mustHelm(t, "upgrade", release, chartDir, "-n", ns, "--reuse-values", "--set", "http.qps=50", "--no-hooks")
		s, err = env.Clientset.CoreV1().Secrets(ns).Get(ctx, "perf-result", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string][]byte{"1": []byte(`{"revision":1}`)}; !reflect.DeepEqual(s.Data, want) {
			t.Errorf("result after upgrade: got %q, want %q", s.Data, want)
		}
		spec, err := env.Clientset.CoreV1().Secrets(ns).Get(ctx, "perf-spec", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := string(spec.Data["experiment.yaml"]); !strings.Contains(got, "qps: 50") {
			t.Errorf("spec after upgrade has no qps: 50:\n%s", got)
		}
		hooks := parseManifests(t, mustHelm(t, "get", "hooks", release, "-n", ns).stdout)
		var job batchv1.Job
		hooks.decode(t, "Job/perf-iter8-run", &job)
		if got := job.Spec.Template.Spec.Containers[0].Command; !slices.Contains(got, "--revision") || got[slices.Index(got, "--revision")+1] != "2" {
			t.Errorf("Job of revision 2 runs %q, want --revision 2", got)
		}
	})

	mustHelm(t, "uninstall", release, "-n", ns)
	if got := objectsIn(t, ns, selector); len(got) != 0 {
		t.Errorf("after uninstall, objects labelled %s: %v; want none", selector, got)
	}
	if got := objectsIn(t, ns, ""); len(got) != 0 {
		t.Errorf("after uninstall, namespace %s holds %v; want nothing (not even Helm's release records)", ns, got)
	}
}
