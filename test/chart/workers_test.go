package chart_test

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/podworkers"
	"github.com/iter8-tools/iter8/pkg/task"
)

// workerObjects are the objects that workers above 1 add to release in ns.
func workerObjects(release, ns string) []string {
	return []string{
		"Role/" + release + "-iter8-worker",
		"RoleBinding/" + release + "-iter8-worker",
		"ServiceAccount/" + release + "-iter8-worker",
		"ValidatingAdmissionPolicy/iter8-workers." + ns + "." + release,
		"ValidatingAdmissionPolicy/iter8-workers-job." + ns + "." + release,
		"ValidatingAdmissionPolicyBinding/iter8-workers." + ns + "." + release,
		"ValidatingAdmissionPolicyBinding/iter8-workers-job." + ns + "." + release,
	}
}

// jobPolicyMessages are the messages of the policy on the run's Job
// creates, in order, for release perf with secretEnv's Secrets secrets.
func jobPolicyMessages(secrets string) []string {
	const p = "the run of experiment perf may only create "
	return []string{
		p + "the Job perf-workers",
		p + "Jobs whose pods run as perf-iter8-worker",
		p + "Jobs of one container of image ghcr.io/iter8-tools/iter8:v0.1.0-test",
		p + "Jobs without init or ephemeral containers",
		p + "Jobs without volumes",
		p + "Jobs without envFrom",
		p + "Jobs whose env is from the Secrets of secretEnv (" + secrets + ") and no ConfigMap",
		p + "Jobs without hostNetwork, hostPID or hostIPC",
		p + "Jobs without privileged containers",
		p + "Jobs whose pod securityContext is the run's: runAsNonRoot, runAsUser 65532, runAsGroup 65532, seccompProfile RuntimeDefault",
		p + "Jobs whose container securityContext is the run's: allowPrivilegeEscalation false, readOnlyRootFilesystem true, capabilities drop ALL and none added, no runAsUser, runAsGroup, runAsNonRoot or seccompProfile of its own",
		p + "Jobs without nodeName",
		p + "Jobs without hostPort",
		p + "Jobs without priorityClassName or runtimeClassName",
	}
}

// typicalKeys are the objects that typical.yaml renders for release perf.
var typicalKeys = []string{
	"Job/perf-iter8-run",
	"Role/perf-iter8",
	"RoleBinding/perf-iter8",
	"Secret/perf-result",
	"Secret/perf-spec",
	"ServiceAccount/perf-iter8",
}

// decodeSpec decodes the spec in release's spec Secret as the run does.
func decodeSpec(t *testing.T, m manifests, release string) (*experiment.Plan, error) {
	t.Helper()
	var secret corev1.Secret
	m.decode(t, "Secret/"+release+"-spec", &secret)
	return experiment.Decode([]byte(secret.StringData["experiment.yaml"]), experiment.DecodeOptions{Registry: task.Registry()})
}

// TestTemplateWorkers checks what workers (N, the largest of the http and
// grpc tasks' in tasks) add to the chart: nothing for N = 1; for N > 1 the
// workers' account, Role and admission policy, the run's rights on the
// worker Job and the parts, and the Job's --workers-account.
func TestTemplateWorkers(t *testing.T) {
	const release, ns = "perf", "team-a"
	valuesFile := absPath(t, typicalValues)
	render := func(t *testing.T, set ...string) manifests {
		t.Helper()
		args := []string{"template", release, chartDir, "--namespace", ns, "-f", valuesFile}
		for _, s := range set {
			args = append(args, "--set", s)
		}
		return parseManifests(t, mustHelm(t, args...).stdout)
	}
	wantCmd := func(extra ...string) []string {
		return append([]string{"iter8", "run", "--namespace", ns, "--experiment", release, "--revision", "1", "--job", "perf-iter8-run"}, extra...)
	}

	for _, tc := range []struct{ name, set string }{
		{"workers 1", "http.workers=1"},
		{"workers of a task not in tasks", "grpc.workers=4"},
	} {
		t.Run(tc.name+" adds nothing", func(t *testing.T) {
			m := render(t, tc.set)
			if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, typicalKeys) {
				t.Fatalf("rendered objects:\n got %v\nwant %v", got, typicalKeys)
			}
			var role rbacv1.Role
			m.decode(t, "Role/perf-iter8", &role)
			if !reflect.DeepEqual(role.Rules, baseRules(release)) {
				t.Errorf("Role/perf-iter8 rules:\n got %+v\nwant %+v", role.Rules, baseRules(release))
			}
			var job batchv1.Job
			m.decode(t, "Job/perf-iter8-run", &job)
			if got := job.Spec.Template.Spec.Containers[0].Command; !slices.Equal(got, wantCmd()) {
				t.Errorf("command: got %q, want %q", got, wantCmd())
			}
		})
	}

	t.Run("workers 4", func(t *testing.T) {
		m := render(t, "http.workers=4")
		want := slices.Sorted(slices.Values(append(slices.Clone(typicalKeys), workerObjects(release, ns)...)))
		if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, want) {
			t.Fatalf("rendered objects:\n got %v\nwant %v", got, want)
		}
		labels := wantLabels(t, release)
		parts := []string{"perf-part-0", "perf-part-1", "perf-part-2", "perf-part-3"}

		if _, err := decodeSpec(t, m, release); err != nil {
			t.Fatalf("the run refuses the rendered spec: %v", err)
		}
		if ts, spec := specTasks(t, m, release); ts[1].Task != "http" || ts[1].With["workers"] != float64(4) {
			t.Errorf("http task %+v: want workers 4 in its inputs\n%s", ts[1], spec)
		}

		var job batchv1.Job
		m.decode(t, "Job/perf-iter8-run", &job)
		if got, want := job.Spec.Template.Spec.Containers[0].Command, wantCmd("--workers-account", "perf-iter8-worker"); !slices.Equal(got, want) {
			t.Errorf("command: got %q, want %q", got, want)
		}
		if sa := job.Spec.Template.Spec.ServiceAccountName; sa != "perf-iter8" {
			t.Errorf("the run's Job runs as %s, want its own account perf-iter8", sa)
		}

		var role rbacv1.Role
		m.decode(t, "Role/perf-iter8", &role)
		wantRules := []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"perf-spec"}, Verbs: []string{"get"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"perf-result"}, Verbs: []string{"get", "update"}},
			{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, ResourceNames: []string{"perf-iter8-run"}, Verbs: []string{"get", "patch"}},
			{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"create"}},
			{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, ResourceNames: []string{"perf-workers"}, Verbs: []string{"get", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: parts, Verbs: []string{"get"}},
		}
		if !reflect.DeepEqual(role.Rules, wantRules) {
			t.Errorf("Role/perf-iter8 rules:\n got %+v\nwant %+v", role.Rules, wantRules)
		}

		var sa corev1.ServiceAccount
		m.decode(t, "ServiceAccount/perf-iter8-worker", &sa)
		checkMeta(t, "ServiceAccount/perf-iter8-worker", sa.Labels, sa.Annotations, labels)
		var wrole rbacv1.Role
		m.decode(t, "Role/perf-iter8-worker", &wrole)
		checkMeta(t, "Role/perf-iter8-worker", wrole.Labels, wrole.Annotations, labels)
		wantWorker := []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"perf-spec"}, Verbs: []string{"get"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: parts, Verbs: []string{"update"}},
		}
		if !reflect.DeepEqual(wrole.Rules, wantWorker) {
			t.Errorf("Role/perf-iter8-worker rules:\n got %+v\nwant %+v", wrole.Rules, wantWorker)
		}
		var rb rbacv1.RoleBinding
		m.decode(t, "RoleBinding/perf-iter8-worker", &rb)
		checkMeta(t, "RoleBinding/perf-iter8-worker", rb.Labels, rb.Annotations, labels)
		wantRef := rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "perf-iter8-worker"}
		wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "perf-iter8-worker", Namespace: ns}}
		if rb.RoleRef != wantRef || !reflect.DeepEqual(rb.Subjects, wantSubjects) {
			t.Errorf("RoleBinding/perf-iter8-worker: roleRef %+v, subjects %+v; want %+v, %+v", rb.RoleRef, rb.Subjects, wantRef, wantSubjects)
		}

		const policy = "iter8-workers.team-a.perf"
		var vap admissionv1.ValidatingAdmissionPolicy
		m.decode(t, "ValidatingAdmissionPolicy/"+policy, &vap)
		checkMeta(t, "ValidatingAdmissionPolicy/"+policy, vap.Labels, vap.Annotations, labels)
		fail := admissionv1.Fail
		wantSpec := admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
					Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"}},
				},
			}}},
			MatchConditions: []admissionv1.MatchCondition{{
				Name:       "worker-account",
				Expression: `request.userInfo.username == "system:serviceaccount:team-a:perf-iter8-worker"`,
			}},
			Validations: []admissionv1.Validation{
				{
					Expression: `has(object.metadata.name) && object.metadata.name.matches("^perf-part-(0|[1-9][0-9]{0,2})$") && int(object.metadata.name.substring(size("perf-part-"))) < 4`,
					Message:    "the workers of experiment perf may only write Secrets named perf-part-<index>, index 0 to 3",
				},
				{
					Expression: `has(object.type) && object.type == 'Opaque'`,
					Message:    "the workers of experiment perf may only write Secrets of type Opaque",
				},
				{
					Expression: `has(object.metadata.labels) && 'iter8.tools/experiment' in object.metadata.labels && object.metadata.labels['iter8.tools/experiment'] == "perf"`,
					Message:    "the workers of experiment perf may only write Secrets labelled iter8.tools/experiment=perf",
				},
			},
		}
		if !reflect.DeepEqual(vap.Spec, wantSpec) {
			t.Errorf("ValidatingAdmissionPolicy spec:\n got %+v\nwant %+v", vap.Spec, wantSpec)
		}
		var binding admissionv1.ValidatingAdmissionPolicyBinding
		m.decode(t, "ValidatingAdmissionPolicyBinding/"+policy, &binding)
		checkMeta(t, "ValidatingAdmissionPolicyBinding/"+policy, binding.Labels, binding.Annotations, labels)
		wantBinding := admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns},
			}},
		}
		if !reflect.DeepEqual(binding.Spec, wantBinding) {
			t.Errorf("ValidatingAdmissionPolicyBinding spec:\n got %+v\nwant %+v", binding.Spec, wantBinding)
		}

		// The policy on the run's Job creates (its expressions are tried on
		// the test bed: TestWorkersAdmission).
		const jobPolicy = "iter8-workers-job.team-a.perf"
		var jvap admissionv1.ValidatingAdmissionPolicy
		m.decode(t, "ValidatingAdmissionPolicy/"+jobPolicy, &jvap)
		checkMeta(t, "ValidatingAdmissionPolicy/"+jobPolicy, jvap.Labels, jvap.Annotations, labels)
		if jvap.Spec.FailurePolicy == nil || *jvap.Spec.FailurePolicy != admissionv1.Fail {
			t.Errorf("%s failurePolicy %v, want Fail", jobPolicy, jvap.Spec.FailurePolicy)
		}
		wantJobMatch := &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
			RuleWithOperations: admissionv1.RuleWithOperations{
				Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
				Rule:       admissionv1.Rule{APIGroups: []string{"batch"}, APIVersions: []string{"v1"}, Resources: []string{"jobs"}},
			},
		}}}
		if !reflect.DeepEqual(jvap.Spec.MatchConstraints, wantJobMatch) {
			t.Errorf("%s matchConstraints:\n got %+v\nwant %+v", jobPolicy, jvap.Spec.MatchConstraints, wantJobMatch)
		}
		wantConds := []admissionv1.MatchCondition{
			{Name: "run-account", Expression: `request.userInfo.username == "system:serviceaccount:team-a:perf-iter8"`},
			{Name: "not-the-run-job-update", Expression: `request.operation == 'CREATE' || request.name != "perf-iter8-run"`},
		}
		if !reflect.DeepEqual(jvap.Spec.MatchConditions, wantConds) {
			t.Errorf("%s matchConditions:\n got %+v\nwant %+v", jobPolicy, jvap.Spec.MatchConditions, wantConds)
		}
		var msgs []string
		for _, v := range jvap.Spec.Validations {
			msgs = append(msgs, v.Message)
		}
		if want := jobPolicyMessages("slack"); !slices.Equal(msgs, want) {
			t.Errorf("%s messages:\n got %q\nwant %q", jobPolicy, msgs, want)
		}
		if !strings.Contains(jvap.Spec.Validations[6].Expression, `in ["slack"]`) {
			t.Errorf("%s env validation %q: want the names of secretEnv's Secrets", jobPolicy, jvap.Spec.Validations[6].Expression)
		}
		var jbinding admissionv1.ValidatingAdmissionPolicyBinding
		m.decode(t, "ValidatingAdmissionPolicyBinding/"+jobPolicy, &jbinding)
		checkMeta(t, "ValidatingAdmissionPolicyBinding/"+jobPolicy, jbinding.Labels, jbinding.Annotations, labels)
		wantBinding.PolicyName = jobPolicy
		if !reflect.DeepEqual(jbinding.Spec, wantBinding) {
			t.Errorf("ValidatingAdmissionPolicyBinding/%s spec:\n got %+v\nwant %+v", jobPolicy, jbinding.Spec, wantBinding)
		}
	})

	t.Run("secretEnv's Secrets once each, or none", func(t *testing.T) {
		m := render(t, "http.workers=2", "secretEnv[0].name=A,secretEnv[0].secretName=s2,secretEnv[0].key=a",
			"secretEnv[1].name=B,secretEnv[1].secretName=s1,secretEnv[1].key=b,secretEnv[2].name=C,secretEnv[2].secretName=s2,secretEnv[2].key=c")
		var vap admissionv1.ValidatingAdmissionPolicy
		m.decode(t, "ValidatingAdmissionPolicy/iter8-workers-job.team-a.perf", &vap)
		if v := vap.Spec.Validations[6]; !strings.Contains(v.Expression, `in ["s1","s2"]`) || v.Message != jobPolicyMessages("s1, s2")[6] {
			t.Errorf("env validation %+v: want Secrets s1 and s2", v)
		}
		m = render(t, "http.workers=2", "secretEnv=null", "tasks={http}")
		m.decode(t, "ValidatingAdmissionPolicy/iter8-workers-job.team-a.perf", &vap)
		if v := vap.Spec.Validations[6]; !strings.Contains(v.Expression, `in []`) || v.Message != jobPolicyMessages("none")[6] {
			t.Errorf("env validation %+v: want no Secrets", v)
		}
	})

	// A rollout's account may create Jobs (its app chart's hooks) in the
	// app's namespace: the policy on Job creates is left out there, as it
	// would refuse them.
	t.Run("a rollout", func(t *testing.T) {
		for _, tc := range []struct {
			app     string
			account string // "": no policy on Job creates
		}{{"shop", ""}, {"team-a/shop", ""}, {"other/shop", "perf-iter8-upgrader"}} {
			m := render(t, "tasks={ready,http,assess,rollout},loops=5,interval=10s,http.workers=2", "rollout.release="+tc.app)
			_, ok := m["ValidatingAdmissionPolicy/iter8-workers-job.team-a.perf"]
			_, bok := m["ValidatingAdmissionPolicyBinding/iter8-workers-job.team-a.perf"]
			if _, wok := m["ValidatingAdmissionPolicy/iter8-workers.team-a.perf"]; !wok {
				t.Errorf("app %s: no policy on the workers' Secrets", tc.app)
			}
			if ok != (tc.account != "") || bok != ok {
				t.Errorf("app %s: policy on Job creates %v, binding %v; want %v", tc.app, ok, bok, tc.account != "")
				continue
			}
			if !ok {
				continue
			}
			var vap admissionv1.ValidatingAdmissionPolicy
			m.decode(t, "ValidatingAdmissionPolicy/iter8-workers-job.team-a.perf", &vap)
			want := `request.userInfo.username == "system:serviceaccount:team-a:` + tc.account + `"`
			if got := vap.Spec.MatchConditions[0].Expression; got != want {
				t.Errorf("app %s: match %q, want %q", tc.app, got, want)
			}
		}
	})

	t.Run("N is the largest of http's and grpc's", func(t *testing.T) {
		m := render(t, "tasks={http,grpc}", "http.workers=2",
			"grpc.host=app:9000,grpc.version=v1,grpc.call=helloworld.Greeter/SayHello,grpc.workers=3,grpc.duration=10s")
		var role rbacv1.Role
		m.decode(t, "Role/perf-iter8-worker", &role)
		if got, want := role.Rules[2].ResourceNames, []string{"perf-part-0", "perf-part-1", "perf-part-2"}; !slices.Equal(got, want) {
			t.Errorf("worker may update %v, want %v", got, want)
		}
		if _, err := decodeSpec(t, m, release); err != nil {
			t.Errorf("the run refuses the rendered spec: %v", err)
		}
	})

	t.Run("a long release name", func(t *testing.T) {
		long := strings.Repeat("a", 53) // Helm's longest
		out := mustHelm(t, "template", long, chartDir, "-n", ns, "-f", valuesFile, "--set", "http.workers=2").stdout
		m := parseManifests(t, out)
		var job batchv1.Job
		m.decode(t, "Job/"+long+"-iter8-run", &job)
		cmd := job.Spec.Template.Spec.Containers[0].Command
		account := cmd[len(cmd)-1]
		if len(account) > 63 || !strings.HasPrefix(account, long[:50]) || cmd[len(cmd)-2] != "--workers-account" {
			t.Fatalf("command %q: want --workers-account and a name of at most 63 characters", cmd)
		}
		for _, kind := range []string{"ServiceAccount", "Role", "RoleBinding"} {
			if _, ok := m[kind+"/"+account]; !ok {
				t.Errorf("no %s/%s among %v", kind, account, slices.Sorted(maps.Keys(m)))
			}
		}
	})

	// Policy names are DNS subdomains of at most 253 characters: with the
	// longest namespace (63) and release (53) they are 135.
	t.Run("a long namespace and release", func(t *testing.T) {
		long, longNS := strings.Repeat("a", 53), strings.Repeat("n", 63)
		m := parseManifests(t, mustHelm(t, "template", long, chartDir, "-n", longNS, "-f", valuesFile, "--set", "http.workers=2").stdout)
		for _, name := range []string{"iter8-workers." + longNS + "." + long, "iter8-workers-job." + longNS + "." + long} {
			if len(name) > 253 {
				t.Errorf("%s: %d characters", name, len(name))
			}
			for _, kind := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
				if _, ok := m[kind+"/"+name]; !ok {
					t.Errorf("no %s/%s among %v", kind, name, slices.Sorted(maps.Keys(m)))
				}
			}
		}
	})
}

// TestWorkersMirrorRun checks that helm refuses exactly the workers that
// the run refuses: every value set here is rendered (with workers 1 when
// helm refuses it, then given its workers back) and decoded as the run
// decodes it.
func TestWorkersMirrorRun(t *testing.T) {
	const http = "tasks={http},http.url=http://app:8080/"
	const endpoint = "tasks={http},http.endpoints[0].url=http://app:8080/"
	const grpc = "tasks={grpc},grpc.host=app:9000,grpc.call=helloworld.Greeter/SayHello"
	tests := []struct {
		name    string
		base    string // sets tasks to the one load task first
		workers int
		set     string
		refused bool
	}{
		{"http default count", http, 4, "", false},
		{"http default count, workers above", http, 100, "http.numRequests=99", true},
		{"http numRequests equal", http, 4, "http.numRequests=4", false},
		{"http numRequests below", http, 5, "http.numRequests=4", true},
		{"http duration", http, 100, "http.duration=1m", false},
		{"http 1000 workers", http, 1000, "http.duration=1m", false},
		{"http default count, as many workers", http, 400, "", false},
		{"http default count, one worker more", http, 401, "", true},
		{"http rate 0.1 each", http, 3, "http.qps=0.3,http.duration=1m", false},
		{"http rate below 0.1 each", http, 4, "http.qps=0.3,http.duration=1m", true},
		{"http endpoint rate below", endpoint, 4, "http.endpoints[0].qps=0.2", true},
		{"http endpoint rate overrides a low task rate", endpoint, 4, "http.qps=0.2,http.endpoints[0].qps=4", false},
		{"http a low task rate that an endpoint inherits", endpoint, 4,
			"http.qps=0.2,http.endpoints[0].qps=4,http.endpoints[0].version=v1,http.endpoints[1].url=http://b:8080/,http.endpoints[1].version=v2,versions={v1,v2}", true},
		{"http duration within the stagger", http, 4, "http.qps=0.4,http.duration=10s", true},
		{"http duration past the stagger", http, 4, "http.qps=0.4,http.duration=11s", false},
		{"http as fast as possible", http, 50, "http.qps=0,http.duration=1s", false},
		{"grpc default count", grpc, 100, "", false},
		{"grpc total below", grpc, 3, "grpc.total=2", true},
		{"grpc rate below", grpc, 3, "grpc.rps=0.2", true},
		{"grpc duration within the stagger", grpc, 2, "grpc.rps=1,grpc.duration=2s", true},
		{"grpc duration past the stagger", grpc, 2, "grpc.rps=1,grpc.duration=2100ms", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			load := strings.TrimSuffix(strings.TrimPrefix(strings.SplitN(tc.base, ",", 2)[0], "tasks={"), "}")
			args := []string{"template", "exp", chartDir, "-n", "ns1", "--set", tc.base}
			if tc.set != "" {
				args = append(args, "--set", tc.set)
			}
			r := helm(t, append(args, "--set", fmt.Sprintf("%s.workers=%d", load, tc.workers))...)
			if refused := r.err != nil; refused != tc.refused {
				t.Fatalf("helm refuses: %v, want %v: %s", refused, tc.refused, r)
			}
			if !tc.refused {
				if _, err := decodeSpec(t, parseManifests(t, r.stdout), "exp"); err != nil {
					t.Errorf("helm takes it, the run refuses it: %v", err)
				}
				return
			}
			m := parseManifests(t, mustHelm(t, append(args, "--set", load+".workers=1")...).stdout)
			var secret corev1.Secret
			m.decode(t, "Secret/exp-spec", &secret)
			spec := secret.StringData["experiment.yaml"]
			if !strings.Contains(spec, "workers: 1\n") {
				t.Fatalf("spec has no workers: 1:\n%s", spec)
			}
			spec = strings.Replace(spec, "workers: 1\n", fmt.Sprintf("workers: %d\n", tc.workers), 1)
			if _, err := experiment.Decode([]byte(spec), experiment.DecodeOptions{Registry: task.Registry()}); err == nil {
				t.Errorf("helm refuses it (%s), the run takes it:\n%s", strings.TrimSpace(r.stderr), spec)
			}
		})
	}
}

// TestInstallBadWorkers shows that workers that the run would refuse fail
// `helm install` before anything exists in the cluster.
func TestInstallBadWorkers(t *testing.T) {
	const ns = "iter8-bad-workers"
	createNamespace(t, ns, nil)
	before := snapshot(t, ns)
	// typical.yaml: http at 25 qps for 20s.
	checkBadInstalls(t, ns, []string{"-f", absPath(t, typicalValues)}, before, []badValues{
		{"workers 0", []string{"http.workers=0"}, "at '/http/workers': minimum: got 0, want 1"},
		{"workers 1001", []string{"http.workers=1001"}, "at '/http/workers': maximum: got 1,001, want 1,000"},
		{"workers not a number", []string{"http.workers=many"}, "at '/http/workers': got string, want integer"},
		{"grpc workers 0", []string{"grpc.workers=0"}, "at '/grpc/workers': minimum: got 0, want 1"},
		{"rate too low for the workers", []string{"http.workers=300"},
			"http.qps: 25 split over 300 workers is 0.08333 per second each, below 0.1: raise it or use fewer workers"},
		{"endpoint rate too low for the workers", []string{"http.workers=4,http.endpoints[1].qps=0.2"},
			"http.endpoints[1].qps: 0.2 split over 4 workers is 0.05 per second each, below 0.1: raise it or use fewer workers"},
		{"duration within the workers' stagger", []string{"http.workers=10,http.qps=2,http.duration=5s"},
			"http.qps: 2 split over 10 workers, whose starts are spread over 5s, leaves the duration 5s too short: raise the rate or the duration, or use fewer workers"},
		// A user's account may be shared: the policy on the run's Job
		// creates, which matches the account's user name, would bind all.
		{"workers with serviceAccountName", []string{"http.workers=4,serviceAccountName=ci-runner"},
			`serviceAccountName "ci-runner" with workers 4: workers need the chart's own account: the admission policy that holds the run to creating only its workers' Job would bind every user of ci-runner`},
	})
	// A load of a number of requests.
	checkBadInstalls(t, ns, []string{"--set", "tasks={http},http.url=http://app:8080/"}, before, []badValues{
		{"workers above numRequests", []string{"http.workers=5,http.numRequests=4"},
			"http.workers: 5 is above numRequests 4: each worker needs at least one request: lower workers or raise numRequests"},
		{"workers above the default numRequests", []string{"http.workers=401"},
			"http.workers: 401 is above numRequests 400 (its default): each worker needs at least one request"},
	})
	checkBadInstalls(t, ns, []string{"--set", "tasks={grpc},grpc.host=app:9000,grpc.call=helloworld.Greeter/SayHello"}, before, []badValues{
		{"workers above total", []string{"grpc.workers=3,grpc.total=2"},
			"grpc.workers: 3 is above total 2: each worker needs at least one call: lower workers or raise total"},
		{"grpc rate too low for the workers", []string{"grpc.workers=3,grpc.rps=0.2"},
			"grpc.rps: 0.2 split over 3 workers is 0.06667 per second each, below 0.1"},
		{"grpc workers with serviceAccountName", []string{"grpc.workers=2,serviceAccountName=ci-runner"},
			`serviceAccountName "ci-runner" with workers 2: workers need the chart's own account: the admission policy that holds the run to creating only its workers' Job would bind every user of ci-runner`},
	})
}

// TestWorkersAdmission installs a release with workers on the test bed's
// API server and acts as its workers' ServiceAccount: the account may
// create and update its parts, labelled with the release, and nothing else;
// the admission policy refuses what its Role cannot (create by name).
func TestWorkersAdmission(t *testing.T) {
	const ns, release = "iter8-workers", "perf"
	const policy = "iter8-workers." + ns + "." + release
	const jobPolicy = "iter8-workers-job." + ns + "." + release
	const account = release + "-iter8-worker"
	createNamespace(t, ns, nil)
	ctx := t.Context()
	mustHelm(t, "install", release, chartDir, "-n", ns, "-f", absPath(t, typicalValues), "--set", "http.workers=4", "--no-hooks")
	t.Cleanup(func() { helm(t, "uninstall", release, "-n", ns) })

	selector := "iter8.tools/experiment=" + release
	want := []string{"Role/perf-iter8", "Role/perf-iter8-worker", "RoleBinding/perf-iter8", "RoleBinding/perf-iter8-worker",
		"Secret/perf-result", "Secret/perf-spec", "ServiceAccount/perf-iter8", "ServiceAccount/perf-iter8-worker"}
	if got := objectsIn(t, ns, selector); !slices.Equal(got, want) {
		t.Fatalf("after install, objects labelled %s:\n got %v\nwant %v", selector, got, want)
	}
	admission := env.Clientset.AdmissionregistrationV1()
	if _, err := admission.ValidatingAdmissionPolicies().Get(ctx, policy, metav1.GetOptions{}); err != nil {
		t.Fatalf("get ValidatingAdmissionPolicy %s: %v", policy, err)
	}
	for _, p := range []string{policy, jobPolicy} {
		if _, err := admission.ValidatingAdmissionPolicies().Get(ctx, p, metav1.GetOptions{}); err != nil {
			t.Fatalf("get ValidatingAdmissionPolicy %s: %v", p, err)
		}
		if _, err := admission.ValidatingAdmissionPolicyBindings().Get(ctx, p, metav1.GetOptions{}); err != nil {
			t.Fatalf("get ValidatingAdmissionPolicyBinding %s: %v", p, err)
		}
	}

	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + ns + ":" + account,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	worker, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	secrets := worker.CoreV1().Secrets(ns)
	secret := func(name string, labels map[string]string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
			Data: map[string][]byte{"part": []byte(`{"worker":3}`)}}
	}
	labelled := map[string]string{"iter8.tools/experiment": release}
	const nameMsg = "the workers of experiment perf may only write Secrets named perf-part-<index>, index 0 to 3"
	const typeMsg = "the workers of experiment perf may only write Secrets of type Opaque"
	const labelMsg = "the workers of experiment perf may only write Secrets labelled iter8.tools/experiment=perf"

	// The policy takes effect once the API server has loaded it: until then,
	// a dry run of a create that it denies goes through.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := secrets.Create(ctx, secret("other", labelled), metav1.CreateOptions{DryRun: dryRun})
		if err != nil && strings.Contains(err.Error(), nameMsg) {
			if !strings.Contains(err.Error(), policy) {
				t.Errorf("denial does not name the policy %s: %v", policy, err)
			}
			t.Logf("denied: %v", err)
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("worker creates Secret other (dry run): got %v, want denied by %s saying %q", err, policy, nameMsg)
		}
		time.Sleep(100 * time.Millisecond)
	}

	t.Run("worker writes its part", func(t *testing.T) {
		s, err := secrets.Create(ctx, secret("perf-part-3", labelled), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("worker creates Secret perf-part-3 labelled %v: %v", labelled, err)
		}
		t.Cleanup(func() { _ = env.Clientset.CoreV1().Secrets(ns).Delete(ctx, "perf-part-3", metav1.DeleteOptions{}) })
		s.Data = map[string][]byte{"part": []byte(`{"worker":3,"retried":true}`)}
		if s, err = secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("worker updates its part: %v", err)
		}
		s.Labels = nil
		if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); !strings.Contains(fmt.Sprint(err), labelMsg) {
			t.Errorf("worker drops its part's label: got %v, want denied saying %q", err, labelMsg)
		}
	})

	denied := []struct {
		name   string
		secret *corev1.Secret
		want   string
	}{
		{"another name", secret("other", labelled), nameMsg},
		{"another release's part", secret("perf2-part-0", map[string]string{"iter8.tools/experiment": "perf2"}), nameMsg},
		{"a part without the label", secret("perf-part-2", nil), labelMsg},
		{"a part labelled for another release", secret("perf-part-2", map[string]string{"iter8.tools/experiment": "perf2"}), labelMsg},
		{"a part with other labels only", secret("perf-part-2", map[string]string{"app": "perf"}), labelMsg},
		{"part N (an index not below the workers)", secret("perf-part-4", labelled), nameMsg},
		{"a part of a large index", secret("perf-part-999", labelled), nameMsg},
		{"a part of a huge index", secret("perf-part-99999999999999999999", labelled), nameMsg},
		{"a part with a leading zero", secret("perf-part-03", labelled), nameMsg},
		{"a part typed as a service-account token", func() *corev1.Secret {
			s := secret("perf-part-2", labelled)
			s.Type = corev1.SecretTypeServiceAccountToken
			s.Annotations = map[string]string{corev1.ServiceAccountNameKey: "perf-iter8"}
			return s
		}(), typeMsg},
		{"a part of another type", func() *corev1.Secret {
			s := secret("perf-part-2", labelled)
			s.Type = "example.com/other"
			return s
		}(), typeMsg},
	}
	for _, d := range denied {
		t.Run("worker may not create "+d.name, func(t *testing.T) {
			_, err := secrets.Create(ctx, d.secret, metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), d.want) {
				t.Errorf("create Secret %s labelled %v: got %v, want denied saying %q", d.secret.Name, d.secret.Labels, err, d.want)
			}
		})
	}

	t.Run("others are not bound by the policy", func(t *testing.T) {
		if _, err := env.Clientset.CoreV1().Secrets(ns).Create(ctx, secret("other", nil), metav1.CreateOptions{DryRun: dryRun}); err != nil {
			t.Errorf("admin creates Secret other (dry run): %v", err)
		}
	})

	t.Run("worker reads only the spec", func(t *testing.T) {
		if _, err := secrets.Get(ctx, "perf-spec", metav1.GetOptions{}); err != nil {
			t.Errorf("worker gets the spec: %v", err)
		}
		for _, name := range []string{"perf-result", "perf-part-0"} {
			if _, err := secrets.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsForbidden(err) {
				t.Errorf("worker gets Secret %s: got %v, want Forbidden", name, err)
			}
		}
		if _, err := secrets.List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("worker lists Secrets: got %v, want Forbidden", err)
		}
		if _, err := worker.CoreV1().Secrets("default").Create(ctx, secret("perf-part-0", labelled), metav1.CreateOptions{DryRun: dryRun}); !apierrors.IsForbidden(err) {
			t.Errorf("worker creates a part in namespace default: got %v, want Forbidden", err)
		}
	})

	t.Run("the run's account", func(t *testing.T) {
		sa := "system:serviceaccount:" + ns + ":perf-iter8"
		checks := []struct {
			verb, group, resource, name string
			allowed                     bool
		}{
			{"get", "batch", "jobs", "perf-iter8-run", true},
			{"patch", "batch", "jobs", "perf-iter8-run", true},
			{"create", "batch", "jobs", "", true},
			{"get", "batch", "jobs", "perf-workers", true},
			{"delete", "batch", "jobs", "perf-workers", true},
			{"delete", "batch", "jobs", "perf-iter8-run", false},
			{"get", "batch", "jobs", "other", false},
			{"get", "", "secrets", "perf-part-0", true},
			{"delete", "", "secrets", "perf-part-3", false},
			{"get", "", "secrets", "perf-part-4", false},
			{"update", "", "secrets", "perf-part-0", false},
			{"create", "", "secrets", "", false},
		}
		for _, c := range checks {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: sa, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: c.verb, Group: c.group, Resource: c.resource, Name: c.name},
			}}
			got, err := env.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("review %s %s %s: %v", c.verb, c.resource, c.name, err)
			}
			if got.Status.Allowed != c.allowed {
				t.Errorf("%s may %s %s %q: got %v, want %v", sa, c.verb, c.resource, c.name, got.Status.Allowed, c.allowed)
			}
		}
	})

	t.Run("the run creates only the workers' Job", func(t *testing.T) {
		testRunJobAdmission(t, ns, release, jobPolicy)
	})

	// Uninstall removes the policy with the rest (the part is the garbage
	// collector's or iter8 delete's to remove: the subtest's cleanup did).
	mustHelm(t, "uninstall", release, "-n", ns)
	if got := objectsIn(t, ns, ""); len(got) != 0 {
		t.Errorf("after uninstall, namespace %s holds %v; want nothing", ns, got)
	}
	if _, err := admission.ValidatingAdmissionPolicies().Get(ctx, policy, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after uninstall, get ValidatingAdmissionPolicy %s: got %v, want NotFound", policy, err)
	}
	for _, p := range []string{policy, jobPolicy} {
		if _, err := admission.ValidatingAdmissionPolicies().Get(ctx, p, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("after uninstall, get ValidatingAdmissionPolicy %s: got %v, want NotFound", p, err)
		}
		if _, err := admission.ValidatingAdmissionPolicyBindings().Get(ctx, p, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("after uninstall, get ValidatingAdmissionPolicyBinding %s: got %v, want NotFound", p, err)
		}
	}
}

// testRunJobAdmission acts as the run's account of release (installed in ns
// with typical.yaml and workers): it may create the workers' Job as
// pkg/podworkers makes it from the run's own Job, and patch its own Job,
// and jobPolicy refuses every other Job it creates, saying why.
func testRunJobAdmission(t *testing.T, ns, release, jobPolicy string) {
	ctx := t.Context()
	const account = "perf-iter8"
	user := "system:serviceaccount:" + ns + ":" + account
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: "batch", Resource: "jobs"},
	}}
	if got, err := env.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{}); err != nil || !got.Status.Allowed {
		t.Fatalf("%s may create jobs: got %+v, %v; want allowed (by RBAC: the policy does the rest)", user, got.Status, err)
	}

	// The run's own Job, as the API server stores it (a hook: the install
	// left it out), for the workers' Job to be made from.
	m := parseManifests(t, mustHelm(t, "template", release, chartDir, "-n", ns, "-f", absPath(t, typicalValues), "--set", "http.workers=4").stdout)
	var own batchv1.Job
	m.decode(t, "Job/perf-iter8-run", &own)
	own.Namespace = ns
	admin := env.Clientset.BatchV1().Jobs(ns)
	background := metav1.DeleteOptions{PropagationPolicy: ptrTo(metav1.DeletePropagationBackground)}
	stored, err := admin.Create(ctx, &own, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("admin creates the run's Job: %v", err)
	}
	t.Cleanup(func() { _ = env.Clientset.BatchV1().Jobs(ns).Delete(context.Background(), own.Name, background) })
	result, err := env.Clientset.CoreV1().Secrets(ns).Get(ctx, "perf-result", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	run, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	jobs := run.BatchV1().Jobs(ns)

	// The run adopts its Job (store.AdoptJob): an update the policy lets by.
	patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"Secret","name":"perf-result","uid":%q}]}}`, result.UID)
	if _, err := jobs.Patch(ctx, own.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Errorf("the run patches its own Job: %v", err)
	}

	// The workers' Job as pkg/podworkers makes it.
	pool := &podworkers.Pool{Namespace: ns, Release: release, Revision: 1, Account: release + "-iter8-worker"}
	good, err := pool.WorkerJob(stored, metav1.OwnerReference{APIVersion: "v1", Kind: "Secret", Name: result.Name, UID: result.UID},
		experiment.Work{Task: 1, Workers: 4}, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatalf("podworkers.Pool.WorkerJob: %v", err)
	}
	if got := good.Spec.Template.Spec.Containers[0].Env; len(got) != 1 || got[0].ValueFrom.SecretKeyRef.Name != "slack" {
		t.Fatalf("the workers' Job's env %+v: want typical.yaml's secretEnv (Secret slack)", got)
	}

	msgs := jobPolicyMessages("slack")
	mutate := func(f func(j *batchv1.Job)) *batchv1.Job {
		j := good.DeepCopy()
		f(j)
		return j
	}
	pod := func(f func(p *corev1.PodSpec)) *batchv1.Job {
		return mutate(func(j *batchv1.Job) { f(&j.Spec.Template.Spec) })
	}
	secretRef := func(name string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: "k"}}
	}
	denied := []struct {
		name string
		job  *batchv1.Job
		want string
	}{
		{"another name", mutate(func(j *batchv1.Job) { j.Name = "other" }), msgs[0]},
		{"the run's own name", mutate(func(j *batchv1.Job) { j.Name = "perf-iter8-run-2" }), msgs[0]},
		{"another account", pod(func(p *corev1.PodSpec) { p.ServiceAccountName = account }), msgs[1]},
		{"the default account", pod(func(p *corev1.PodSpec) { p.ServiceAccountName = "" }), msgs[1]},
		{"another image", pod(func(p *corev1.PodSpec) { p.Containers[0].Image = "busybox:1.36" }), msgs[2]},
		{"two containers", pod(func(p *corev1.PodSpec) {
			p.Containers = append(p.Containers, *p.Containers[0].DeepCopy())
			p.Containers[1].Name = "second"
		}), msgs[2]},
		{"an init container", pod(func(p *corev1.PodSpec) {
			ic := *p.Containers[0].DeepCopy()
			ic.Name = "init"
			p.InitContainers = []corev1.Container{ic}
		}), msgs[3]},
		{"a hostPath volume", pod(func(p *corev1.PodSpec) {
			p.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
		}), msgs[4]},
		{"a secret volume", pod(func(p *corev1.PodSpec) {
			p.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "perf-result"}}}}
		}), msgs[4]},
		{"envFrom", pod(func(p *corev1.PodSpec) {
			p.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "slack"}}}}
		}), msgs[5]},
		{"env from a Secret not in secretEnv", pod(func(p *corev1.PodSpec) {
			p.Containers[0].Env = append(p.Containers[0].Env, corev1.EnvVar{Name: "STOLEN", ValueFrom: secretRef("perf-result")})
		}), msgs[6]},
		{"env from a ConfigMap", pod(func(p *corev1.PodSpec) {
			p.Containers[0].Env = append(p.Containers[0].Env, corev1.EnvVar{Name: "C", ValueFrom: &corev1.EnvVarSource{
				ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: "k"}}})
		}), msgs[6]},
		{"hostNetwork", pod(func(p *corev1.PodSpec) { p.HostNetwork = true }), msgs[7]},
		{"hostPID", pod(func(p *corev1.PodSpec) { p.HostPID = true }), msgs[7]},
		{"a privileged container", pod(func(p *corev1.PodSpec) {
			p.Containers[0].SecurityContext.Privileged = ptrTo(true)
			p.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptrTo(true)
			p.Containers[0].SecurityContext.Capabilities = nil
		}), msgs[8]},
		{"no pod securityContext", pod(func(p *corev1.PodSpec) { p.SecurityContext = nil }), msgs[9]},
		{"root", pod(func(p *corev1.PodSpec) {
			p.SecurityContext.RunAsUser = ptrTo(int64(0))
			p.SecurityContext.RunAsNonRoot = nil
		}), msgs[9]},
		{"runAsNonRoot false", pod(func(p *corev1.PodSpec) { p.SecurityContext.RunAsNonRoot = ptrTo(false) }), msgs[9]},
		{"another user", pod(func(p *corev1.PodSpec) { p.SecurityContext.RunAsUser = ptrTo(int64(1000)) }), msgs[9]},
		{"another group", pod(func(p *corev1.PodSpec) { p.SecurityContext.RunAsGroup = ptrTo(int64(0)) }), msgs[9]},
		{"no pod group", pod(func(p *corev1.PodSpec) { p.SecurityContext.RunAsGroup = nil }), msgs[9]},
		{"seccomp Unconfined", pod(func(p *corev1.PodSpec) {
			p.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
		}), msgs[9]},
		{"no seccomp profile", pod(func(p *corev1.PodSpec) { p.SecurityContext.SeccompProfile = nil }), msgs[9]},
		{"no container securityContext", pod(func(p *corev1.PodSpec) { p.Containers[0].SecurityContext = nil }), msgs[10]},
		{"privilege escalation", pod(func(p *corev1.PodSpec) { p.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptrTo(true) }), msgs[10]},
		{"no allowPrivilegeEscalation", pod(func(p *corev1.PodSpec) { p.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil }), msgs[10]},
		{"a writable root filesystem", pod(func(p *corev1.PodSpec) { p.Containers[0].SecurityContext.ReadOnlyRootFilesystem = ptrTo(false) }), msgs[10]},
		{"capabilities kept", pod(func(p *corev1.PodSpec) { p.Containers[0].SecurityContext.Capabilities = nil }), msgs[10]},
		{"some capabilities dropped", pod(func(p *corev1.PodSpec) {
			p.Containers[0].SecurityContext.Capabilities.Drop = []corev1.Capability{"NET_RAW"}
		}), msgs[10]},
		{"a capability added", pod(func(p *corev1.PodSpec) {
			p.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
		}), msgs[10]},
		{"the container as root", pod(func(p *corev1.PodSpec) {
			p.Containers[0].SecurityContext.RunAsUser = ptrTo(int64(0))
			p.Containers[0].SecurityContext.RunAsNonRoot = ptrTo(false)
		}), msgs[10]},
		{"the container's own group", pod(func(p *corev1.PodSpec) { p.Containers[0].SecurityContext.RunAsGroup = ptrTo(int64(0)) }), msgs[10]},
		{"the container unconfined", pod(func(p *corev1.PodSpec) {
			p.Containers[0].SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
		}), msgs[10]},
		{"nodeName", pod(func(p *corev1.PodSpec) { p.NodeName = "node-1" }), msgs[11]},
		{"a hostPort", pod(func(p *corev1.PodSpec) {
			p.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 8080}}
		}), msgs[12]},
		{"a hostPort on a second port", pod(func(p *corev1.PodSpec) {
			p.Containers[0].Ports = []corev1.ContainerPort{{Name: "a", ContainerPort: 8080}, {Name: "b", ContainerPort: 9090, HostPort: 9090}}
		}), msgs[12]},
		{"a priorityClassName", pod(func(p *corev1.PodSpec) { p.PriorityClassName = "system-node-critical" }), msgs[13]},
		{"a runtimeClassName", pod(func(p *corev1.PodSpec) { p.RuntimeClassName = ptrTo("unconfined") }), msgs[13]},
	}

	// The policy takes effect once the API server has loaded it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := jobs.Create(ctx, denied[0].job, metav1.CreateOptions{DryRun: dryRun})
		if err != nil && strings.Contains(err.Error(), msgs[0]) {
			if !strings.Contains(err.Error(), jobPolicy) {
				t.Errorf("denial does not name the policy %s: %v", jobPolicy, err)
			}
			t.Logf("denied: %v", err)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run creates Job other (dry run): got %v, want denied by %s saying %q", err, jobPolicy, msgs[0])
		}
		time.Sleep(100 * time.Millisecond)
	}

	t.Run("the workers' Job", func(t *testing.T) {
		if _, err := jobs.Create(ctx, good, metav1.CreateOptions{}); err != nil {
			t.Fatalf("the run creates the workers' Job: %v", err)
		}
		if err := jobs.Delete(ctx, good.Name, background); err != nil {
			t.Errorf("the run deletes the workers' Job: %v", err)
		}
		withoutEnv := pod(func(p *corev1.PodSpec) { p.Containers[0].Env = nil })
		if _, err := jobs.Create(ctx, withoutEnv, metav1.CreateOptions{DryRun: dryRun}); err != nil {
			t.Errorf("the run creates the workers' Job without env (dry run): %v", err)
		}
	})
	for _, d := range denied {
		t.Run("not "+d.name, func(t *testing.T) {
			_, err := jobs.Create(ctx, d.job, metav1.CreateOptions{DryRun: dryRun})
			if !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), d.want) {
				t.Errorf("the run creates Job %s: got %v, want denied saying %q", d.job.Name, err, d.want)
			}
		})
	}
	t.Run("others are not bound by the policy", func(t *testing.T) {
		if _, err := admin.Create(ctx, denied[0].job, metav1.CreateOptions{DryRun: dryRun}); err != nil {
			t.Errorf("admin creates Job other (dry run): %v", err)
		}
	})
}

func ptrTo[T any](v T) *T { return &v }
