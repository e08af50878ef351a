package chart_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/cli/values"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/pkg/action"
)

// typicalValues is a values file for a typical cluster experiment.
const typicalValues = "testdata/typical.yaml"

// manifests are rendered objects by "Kind/name", each as its YAML document.
type manifests map[string][]byte

// parseManifests splits helm's output into its YAML documents and keys them
// by kind and name; documents with only comments are skipped.
func parseManifests(t *testing.T, out string) manifests {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out)))
	m := manifests{}
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return m
		}
		if err != nil {
			t.Fatalf("split manifests: %v\n%s", err, out)
		}
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("parse manifest: %v\n%s", err, doc)
		}
		if head.Kind == "" {
			continue
		}
		key := head.Kind + "/" + head.Metadata.Name
		if _, dup := m[key]; dup {
			t.Fatalf("%s rendered twice", key)
		}
		m[key] = doc
	}
}

// decode decodes the object key strictly into obj: a field that its Go type
// does not know (a typo in a template) fails the test.
func (m manifests) decode(t *testing.T, key string, obj any) {
	t.Helper()
	doc, ok := m[key]
	if !ok {
		t.Fatalf("no %s among %v", key, slices.Sorted(maps.Keys(m)))
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("decode %s: %v\n%s", key, err, doc)
	}
}

// chartMeta reads the chart's version and appVersion.
func chartMeta(t *testing.T) (version, appVersion string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("parse Chart.yaml: %v", err)
	}
	return c.Version, c.AppVersion
}

// wantLabels are the labels of every object of release in the chart.
func wantLabels(t *testing.T, release string) map[string]string {
	version, _ := chartMeta(t)
	return map[string]string{
		"helm.sh/chart":                "iter8-" + version,
		"app.kubernetes.io/name":       "iter8",
		"app.kubernetes.io/instance":   release,
		"app.kubernetes.io/managed-by": "Helm",
		"iter8.tools/experiment":       release,
	}
}

func absPath(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// TestTemplate renders the chart for a typical experiment and checks every
// object against the contract that the Job runner and the plugins build on.
func TestTemplate(t *testing.T) {
	const release, ns = "perf", "team-a"
	valuesFile := absPath(t, typicalValues)
	out := mustHelm(t, "template", release, chartDir, "--namespace", ns, "-f", valuesFile).stdout
	m := parseManifests(t, out)

	wantKeys := []string{
		"Job/perf-iter8-run",
		"Role/perf-iter8",
		"RoleBinding/perf-iter8",
		"Secret/perf-result",
		"Secret/perf-spec",
		"ServiceAccount/perf-iter8",
	}
	if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, wantKeys) {
		t.Fatalf("rendered objects:\n got %v\nwant %v", got, wantKeys)
	}
	labels := wantLabels(t, release)

	t.Run("spec Secret", func(t *testing.T) {
		var s corev1.Secret
		m.decode(t, "Secret/perf-spec", &s)
		checkMeta(t, "Secret/perf-spec", s.Labels, s.Annotations, labels)
		if s.Type != corev1.SecretTypeOpaque || len(s.Data) != 0 || len(s.StringData) != 1 {
			t.Errorf("Secret/perf-spec: type %q, data keys %v, stringData keys %v; want Opaque with only stringData experiment.yaml",
				s.Type, slices.Sorted(maps.Keys(s.Data)), slices.Sorted(maps.Keys(s.StringData)))
		}
		// The spec that `launch --local` renders for the same values, plus
		// the namespace that helm sets and a local render has not.
		l := action.NewLaunch(action.NewConfiguration())
		l.Name, l.ChartPath = release, chartDir
		l.Values = values.Options{ValueFiles: []string{valuesFile}}
		local, err := l.Render()
		if err != nil {
			t.Fatalf("render locally: %v", err)
		}
		nameLine := "\n  name: " + release + "\n"
		if !strings.Contains(string(local), nameLine) {
			t.Fatalf("local render has no %q:\n%s", nameLine, local)
		}
		want := strings.Replace(string(local), nameLine, nameLine+"  namespace: "+ns+"\n", 1)
		if got := s.StringData["experiment.yaml"]; got != want {
			t.Errorf("experiment.yaml differs from the local render:\n--- got\n%s--- want\n%s", got, want)
		}
	})

	t.Run("result Secret", func(t *testing.T) {
		var s corev1.Secret
		m.decode(t, "Secret/perf-result", &s)
		// No helm.sh/resource-policy: uninstall removes the results too.
		checkMeta(t, "Secret/perf-result", s.Labels, s.Annotations, labels)
		if s.Type != corev1.SecretTypeOpaque || len(s.Data) != 0 || len(s.StringData) != 0 {
			t.Errorf("Secret/perf-result: type %q, data %v, stringData %v; want an empty Opaque Secret", s.Type, s.Data, s.StringData)
		}
	})

	t.Run("RBAC", func(t *testing.T) {
		var sa corev1.ServiceAccount
		m.decode(t, "ServiceAccount/perf-iter8", &sa)
		checkMeta(t, "ServiceAccount/perf-iter8", sa.Labels, sa.Annotations, labels)

		var role rbacv1.Role
		m.decode(t, "Role/perf-iter8", &role)
		checkMeta(t, "Role/perf-iter8", role.Labels, role.Annotations, labels)
		wantRules := []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"perf-spec"}, Verbs: []string{"get"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"perf-result"}, Verbs: []string{"get", "update"}},
			{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, ResourceNames: []string{"perf-iter8-run"}, Verbs: []string{"patch"}},
		}
		if !reflect.DeepEqual(role.Rules, wantRules) {
			t.Errorf("Role/perf-iter8 rules:\n got %+v\nwant %+v", role.Rules, wantRules)
		}

		var rb rbacv1.RoleBinding
		m.decode(t, "RoleBinding/perf-iter8", &rb)
		checkMeta(t, "RoleBinding/perf-iter8", rb.Labels, rb.Annotations, labels)
		wantRef := rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "perf-iter8"}
		wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "perf-iter8", Namespace: ns}}
		if rb.RoleRef != wantRef || !reflect.DeepEqual(rb.Subjects, wantSubjects) {
			t.Errorf("RoleBinding/perf-iter8: roleRef %+v, subjects %+v; want %+v, %+v", rb.RoleRef, rb.Subjects, wantRef, wantSubjects)
		}
	})

	t.Run("Job", func(t *testing.T) {
		var job batchv1.Job
		m.decode(t, "Job/perf-iter8-run", &job)
		if !reflect.DeepEqual(job.Labels, labels) {
			t.Errorf("Job labels: got %v, want %v", job.Labels, labels)
		}
		wantAnn := map[string]string{
			"helm.sh/hook":               "post-install,post-upgrade",
			"helm.sh/hook-weight":        "10",
			"helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded",
		}
		if !reflect.DeepEqual(job.Annotations, wantAnn) {
			t.Errorf("Job annotations: got %v, want %v", job.Annotations, wantAnn)
		}
		if job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit != 0 {
			t.Errorf("Job backoffLimit: got %v, want 0", job.Spec.BackoffLimit)
		}
		if job.Spec.TTLSecondsAfterFinished != nil {
			t.Errorf("Job ttlSecondsAfterFinished: got %d, want unset", *job.Spec.TTLSecondsAfterFinished)
		}

		pod := job.Spec.Template
		for k, v := range labels {
			if pod.Labels[k] != v {
				t.Errorf("Pod label %s: got %q, want %q", k, pod.Labels[k], v)
			}
		}
		if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("restartPolicy: got %q, want Never", pod.Spec.RestartPolicy)
		}
		if pod.Spec.ServiceAccountName != "perf-iter8" {
			t.Errorf("serviceAccountName: got %q, want perf-iter8", pod.Spec.ServiceAccountName)
		}
		if a := pod.Spec.AutomountServiceAccountToken; a == nil || !*a {
			t.Errorf("automountServiceAccountToken: got %v, want true", a)
		}
		psc := pod.Spec.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
			psc.RunAsUser == nil || *psc.RunAsUser != 65532 ||
			psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("pod securityContext: got %+v, want runAsNonRoot, runAsUser 65532, seccomp RuntimeDefault", psc)
		}
		if len(pod.Spec.Containers) != 1 || len(pod.Spec.InitContainers) != 0 || len(pod.Spec.Volumes) != 0 {
			t.Fatalf("pod: %d containers, %d init containers, %d volumes; want one container and nothing else",
				len(pod.Spec.Containers), len(pod.Spec.InitContainers), len(pod.Spec.Volumes))
		}
		c := pod.Spec.Containers[0]
		wantCmd := []string{"iter8", "run", "--namespace", ns, "--experiment", release, "--revision", "1", "--job", release + "-iter8-run"}
		if !slices.Equal(c.Command, wantCmd) || len(c.Args) != 0 {
			t.Errorf("command: got %q args %q, want %q", c.Command, c.Args, wantCmd)
		}
		if c.Image != "ghcr.io/iter8-tools/iter8:v0.1.0-test" || c.ImagePullPolicy != corev1.PullIfNotPresent {
			t.Errorf("image: got %q (%s), want ghcr.io/iter8-tools/iter8:v0.1.0-test (IfNotPresent)", c.Image, c.ImagePullPolicy)
		}
		wantEnv := []corev1.EnvVar{{Name: "SLACK_WEBHOOK_URL", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "slack"}, Key: "url"},
		}}}
		if !reflect.DeepEqual(c.Env, wantEnv) || len(c.EnvFrom) != 0 {
			t.Errorf("env: got %+v (envFrom %+v), want %+v", c.Env, c.EnvFrom, wantEnv)
		}
		wantRes := corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
		}
		if !equalResources(c.Resources, wantRes) {
			t.Errorf("resources: got %+v, want %+v", c.Resources, wantRes)
		}
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
			sc.Privileged != nil || sc.RunAsNonRoot != nil || sc.RunAsUser != nil {
			t.Errorf("container securityContext: got %+v, want allowPrivilegeEscalation false, readOnlyRootFilesystem, drop ALL, nothing that overrides the pod's", sc)
		}
	})
}

// TestTemplateOptions checks the values that change the cluster objects:
// an existing ServiceAccount, the image and the resources.
func TestTemplateOptions(t *testing.T) {
	_, appVersion := chartMeta(t)
	valuesFile := absPath(t, typicalValues)
	t.Run("defaults", func(t *testing.T) {
		out := mustHelm(t, "template", "exp", chartDir, "-n", "ns1", "--set", "tasks={http}", "--set", "http.url=http://app:8080/").stdout
		m := parseManifests(t, out)
		var job batchv1.Job
		m.decode(t, "Job/exp-iter8-run", &job)
		c := job.Spec.Template.Spec.Containers[0]
		if want := "ghcr.io/iter8-tools/iter8:" + appVersion; c.Image != want {
			t.Errorf("image: got %q, want %q (the chart's appVersion)", c.Image, want)
		}
		if len(c.Env) != 0 {
			t.Errorf("env: got %+v, want none", c.Env)
		}
	})
	t.Run("loops and comparisons in the spec", func(t *testing.T) {
		out := mustHelm(t, "template", "exp", chartDir, "-n", "ns1", "-f", valuesFile,
			"--set", "loops=5,interval=30s,assess.confidence=0.9",
			"--set", "assess.comparisons[0].metric=http/latency,assess.comparisons[0].minEffect=0.2").stdout
		var secret corev1.Secret
		parseManifests(t, out).decode(t, "Secret/exp-spec", &secret)
		spec := secret.StringData["experiment.yaml"]
		if spec == "" {
			spec = string(secret.Data["experiment.yaml"])
		}
		for _, want := range []string{"loops: 5", `interval: "30s"`, "confidence: 0.9", "minEffect: 0.2", "metric: http/latency\n"} {
			if !strings.Contains(spec, want) {
				t.Errorf("spec lacks %q:\n%s", want, spec)
			}
		}
	})
	t.Run("abn task", func(t *testing.T) {
		out := mustHelm(t, "template", "abtest", chartDir, "-n", "ns1", "--set", "tasks={abn,assess},versions={v1,v2}",
			"--set", "abn.endpoint=http://abn.iter8-system:8080,abn.application=shop/backend,abn.metrics={purchase}",
			"--set", "assess.comparisons[0].metric=abn/purchase-conversion,assess.comparisons[0].better=higher").stdout
		ts, spec := specTasks(t, parseManifests(t, out), "abtest")
		want := map[string]any{"application": "shop/backend", "endpoint": "http://abn.iter8-system:8080", "metrics": []any{"purchase"}}
		if len(ts) != 2 || ts[0].Task != "abn" || !reflect.DeepEqual(ts[0].With, want) || ts[1].Task != "assess" {
			t.Errorf("tasks %+v, want abn with %v, then assess:\n%s", ts, want, spec)
		}
	})
	t.Run("bandit: a long-running Job under the upgrader", func(t *testing.T) {
		m := parseManifests(t, mustHelm(t, "template", "exp", chartDir, "-n", "ns1", "-f", valuesFile,
			"--set", "tasks={ready,http,assess,bandit},loops=10,interval=1m,bandit.release=shop/app,bandit.reward=http/latency-mean").stdout)
		var job batchv1.Job
		m.decode(t, "Job/exp-iter8-run-1", &job)
		if len(job.Annotations) != 0 || job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit != 2 {
			t.Errorf("Job annotations %v, backoffLimit %v: want no hook, retried twice", job.Annotations, job.Spec.BackoffLimit)
		}
		pod := job.Spec.Template.Spec
		if cmd := strings.Join(pod.Containers[0].Command, " "); pod.ServiceAccountName != "exp-iter8-upgrader" || !strings.HasSuffix(cmd, "--job exp-iter8-run-1 --resume") {
			t.Errorf("runs as %s: %s; want the upgrader, resuming", pod.ServiceAccountName, cmd)
		}
		var sa corev1.ServiceAccount
		m.decode(t, "ServiceAccount/exp-iter8-upgrader", &sa)
		var role rbacv1.Role
		m.decode(t, "Role/exp-iter8-upgrader", &role)
		if role.Namespace != "shop" {
			t.Errorf("upgrader Role in namespace %q, want the app's, shop", role.Namespace)
		}
		var rules []string
		for _, r := range role.Rules {
			rules = append(rules, fmt.Sprintf("%v %v %v", r.APIGroups, r.Resources, r.Verbs))
		}
		want := []string{
			"[] [secrets] [get list create update patch]",
			"[] [services] [get list patch]",
			"[] [serviceaccounts] [get patch]",
			"[apps] [deployments] [get list patch]",
			"[apps] [replicasets] [list]",
			"[discovery.k8s.io] [endpointslices] [list]",
			"[gateway.networking.k8s.io] [httproutes] [get patch]",
			"[networking.istio.io] [virtualservices] [get patch]",
			"[rbac.authorization.k8s.io] [roles rolebindings] [get patch]",
			"[batch] [jobs] [get list watch create delete]",
		}
		if !slices.Equal(rules, want) {
			t.Errorf("upgrader rules:\n%s\nwant (README lists them):\n%s", strings.Join(rules, "\n"), strings.Join(want, "\n"))
		}
		var binding rbacv1.RoleBinding
		m.decode(t, "RoleBinding/exp-iter8-upgrader", &binding)
		if binding.Namespace != "shop" || len(binding.Subjects) != 1 || binding.Subjects[0].Name != "exp-iter8-upgrader" || binding.Subjects[0].Namespace != "ns1" {
			t.Errorf("upgrader binding %+v", binding)
		}
		m.decode(t, "RoleBinding/exp-iter8", &binding)
		if binding.Subjects[0].Name != "exp-iter8-upgrader" {
			t.Errorf("the experiment's own Role is bound to %s, want the Job's account", binding.Subjects[0].Name)
		}
	})
	t.Run("rollout: a long-running Job under the upgrader of the app's namespace", func(t *testing.T) {
		m := parseManifests(t, mustHelm(t, "template", "exp", chartDir, "-n", "ns1", "-f", valuesFile,
			"--set", "tasks={ready,http,assess,rollout},loops=6,interval=1m,rollout.release=shop/app,rollout.steps={20,50,100}").stdout)
		var job batchv1.Job
		m.decode(t, "Job/exp-iter8-run-1", &job)
		if pod := job.Spec.Template.Spec; len(job.Annotations) != 0 || pod.ServiceAccountName != "exp-iter8-upgrader" {
			t.Errorf("Job annotations %v, account %s: want no hook, the upgrader", job.Annotations, pod.ServiceAccountName)
		}
		var role rbacv1.Role
		m.decode(t, "Role/exp-iter8-upgrader", &role)
		if role.Namespace != "shop" {
			t.Errorf("upgrader Role in namespace %q, want the app's, shop", role.Namespace)
		}
		ts, spec := specTasks(t, m, "exp")
		want := map[string]any{"release": "shop/app", "steps": []any{float64(20), float64(50), float64(100)}}
		if len(ts) != 4 || ts[3].Task != "rollout" || !reflect.DeepEqual(ts[3].With, want) {
			t.Errorf("tasks %+v, want the rollout last with %v:\n%s", ts, want, spec)
		}
	})
	t.Run("existing ServiceAccount, image and resources", func(t *testing.T) {
		out := mustHelm(t, "template", "exp", chartDir, "-n", "ns1", "-f", valuesFile,
			"--set", "serviceAccountName=ci-runner",
			"--set", "image.repository=registry.example:5000/iter8/iter8,image.tag=7,image.pullPolicy=Always",
			"--set", "resources.requests.cpu=2,resources.limits.memory=1Gi").stdout
		m := parseManifests(t, out)
		if _, ok := m["ServiceAccount/exp-iter8"]; ok {
			t.Errorf("a ServiceAccount was rendered although serviceAccountName names one")
		}
		var rb rbacv1.RoleBinding
		m.decode(t, "RoleBinding/exp-iter8", &rb)
		if want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "ci-runner", Namespace: "ns1"}}; !reflect.DeepEqual(rb.Subjects, want) {
			t.Errorf("RoleBinding subjects: got %+v, want %+v", rb.Subjects, want)
		}
		var job batchv1.Job
		m.decode(t, "Job/exp-iter8-run", &job)
		spec := job.Spec.Template.Spec
		c := spec.Containers[0]
		if spec.ServiceAccountName != "ci-runner" {
			t.Errorf("serviceAccountName: got %q, want ci-runner", spec.ServiceAccountName)
		}
		if c.Image != "registry.example:5000/iter8/iter8:7" || c.ImagePullPolicy != corev1.PullAlways {
			t.Errorf("image: got %q (%s), want registry.example:5000/iter8/iter8:7 (Always)", c.Image, c.ImagePullPolicy)
		}
		if got := c.Resources.Requests[corev1.ResourceCPU]; got.Cmp(resource.MustParse("2")) != 0 {
			t.Errorf("cpu request: got %s, want 2", got.String())
		}
		if got := c.Resources.Limits[corev1.ResourceMemory]; got.Cmp(resource.MustParse("1Gi")) != 0 {
			t.Errorf("memory limit: got %s, want 1Gi", got.String())
		}
	})
}

// specTask is one task of a rendered experiment spec.
type specTask struct {
	Task string         `json:"task"`
	With map[string]any `json:"with"`
}

// specTasks are the tasks of the spec in release's spec Secret, and the
// spec's text.
func specTasks(t *testing.T, m manifests, release string) ([]specTask, string) {
	t.Helper()
	var secret corev1.Secret
	m.decode(t, "Secret/"+release+"-spec", &secret)
	spec := secret.StringData["experiment.yaml"]
	var exp struct {
		Spec struct {
			Tasks []specTask `json:"tasks"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(spec), &exp); err != nil {
		t.Fatalf("spec: %v\n%s", err, spec)
	}
	return exp.Spec.Tasks, spec
}

// checkMeta checks an object's labels and that it has no annotations.
func checkMeta(t *testing.T, key string, labels, annotations, want map[string]string) {
	t.Helper()
	if !reflect.DeepEqual(labels, want) {
		t.Errorf("%s labels: got %v, want %v", key, labels, want)
	}
	if len(annotations) != 0 {
		t.Errorf("%s annotations: got %v, want none", key, annotations)
	}
}

func equalResources(a, b corev1.ResourceRequirements) bool {
	eq := func(x, y corev1.ResourceList) bool {
		if len(x) != len(y) {
			return false
		}
		for k, q := range x {
			if r, ok := y[k]; !ok || q.Cmp(r) != 0 {
				return false
			}
		}
		return true
	}
	return eq(a.Requests, b.Requests) && eq(a.Limits, b.Limits) && len(a.Claims) == 0
}
