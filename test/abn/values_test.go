package abn_test

import (
	"reflect"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestBadValuesAreRefusedNamingThem renders charts/abn with values that
// cannot work: each fails before anything is installed, naming the value.
func TestBadValuesAreRefusedNamingThem(t *testing.T) {
	ch, err := loader.Load(abnChart)
	if err != nil {
		t.Fatal(err)
	}
	redis := map[string]any{"bolt": map[string]any{"enabled": false}, "redis": map[string]any{"address": "redis:6379"}}
	for _, tt := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"two replicas on bbolt", map[string]any{"replicas": 2}, "replicas: 2 replicas cannot share a bbolt file"},
		{"both ledgers", map[string]any{"ledger": map[string]any{"redis": map[string]any{"address": "redis:6379"}}}, "ledger: both"},
		{"no ledger", map[string]any{"ledger": map[string]any{"bolt": map[string]any{"enabled": false}}}, "ledger: neither"},
		{"namespaces and allNamespaces", map[string]any{"namespaces": []any{"a"}, "allNamespaces": true}, "namespaces and allNamespaces"},
		{"unknown value", map[string]any{"replica": 2}, "additional properties 'replica' not allowed"},
		{"redis address without a port", map[string]any{"ledger": map[string]any{"bolt": map[string]any{"enabled": false}, "redis": map[string]any{"address": "redis"}}}, "/ledger/redis/address"},
		{"retention not a duration", map[string]any{"retention": "a month"}, "/retention"},
		{"bucket width not a duration", map[string]any{"bucketWidth": "a minute"}, "/bucketWidth"},
		{"password secret without a key", map[string]any{"ledger": map[string]any{"bolt": map[string]any{"enabled": false},
			"redis": map[string]any{"address": "redis:6379", "passwordSecret": map[string]any{"name": "redis"}}}}, "ledger.redis.passwordSecret: want both name and key"},
		{"env without a name", map[string]any{"env": []any{map[string]any{"value": "x"}}}, "missing property 'name'"},
		{"env valueFrom from nowhere", map[string]any{"env": []any{map[string]any{"name": "A", "valueFrom": map[string]any{"fieldref": "x"}}}}, "/env/0/valueFrom"},
		{"env named twice", map[string]any{"env": []any{map[string]any{"name": "A", "value": "1"}, map[string]any{"name": "A", "value": "2"}}},
			"env[1] (A): named twice"},
		{"env name not a variable's", map[string]any{"env": []any{map[string]any{"name": "GOGC=400"}}}, "/env/0/name"},
		{"env value not a string", map[string]any{"env": []any{map[string]any{"name": "GOGC", "value": 400}}}, "/env/0/value"},
		{"env with value and valueFrom", map[string]any{"env": []any{map[string]any{"name": "A", "value": "1",
			"valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "metadata.name"}}}}}, "env[0] (A): want value or valueFrom, not both"},
		{"env setting the chart's password", map[string]any{"env": []any{map[string]any{"name": "ITER8_ABN_REDIS_PASSWORD", "value": "x"}}},
			"env[0]: ITER8_ABN_REDIS_PASSWORD is the chart's"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := render(ch, tt.values)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("values %v: %v, want an error with %q", tt.values, err, tt.want)
			}
		})
	}
	// And what works: two replicas on Redis.
	if _, err := render(ch, map[string]any{"replicas": 2, "ledger": redis}); err != nil {
		t.Errorf("two replicas on Redis: %v", err)
	}
}

// TestEnvReachesTheContainer renders env beside the password the chart
// sets, and no env at all without either.
func TestEnvReachesTheContainer(t *testing.T) {
	ch, err := loader.Load(abnChart)
	if err != nil {
		t.Fatal(err)
	}
	env := []any{map[string]any{"name": "GODEBUG", "value": "schedtrace=2147483647"},
		map[string]any{"name": "POD", "valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "metadata.name"}}}}
	redis := map[string]any{"bolt": map[string]any{"enabled": false},
		"redis": map[string]any{"address": "redis:6379", "passwordSecret": map[string]any{"name": "redis", "key": "password"}}}
	password := corev1.EnvVar{Name: "ITER8_ABN_REDIS_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "redis"}, Key: "password"}}}
	for _, tt := range []struct {
		name   string
		values map[string]any
		want   []corev1.EnvVar
	}{
		{"none", map[string]any{}, nil},
		{"the password", map[string]any{"ledger": redis}, []corev1.EnvVar{password}},
		{"env", map[string]any{"env": env}, []corev1.EnvVar{
			{Name: "GODEBUG", Value: "schedtrace=2147483647"},
			{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}},
		{"env and the password", map[string]any{"env": env[:1], "ledger": redis}, []corev1.EnvVar{
			password, {Name: "GODEBUG", Value: "schedtrace=2147483647"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := render(ch, tt.values)
			if err != nil {
				t.Fatal(err)
			}
			var d appsv1.Deployment
			if err := yaml.Unmarshal([]byte(out["abn/templates/deployment.yaml"]), &d); err != nil {
				t.Fatal(err)
			}
			if len(d.Spec.Template.Spec.Containers) != 1 {
				t.Fatalf("%d containers rendered, want 1", len(d.Spec.Template.Spec.Containers))
			}
			if got := d.Spec.Template.Spec.Containers[0].Env; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("env %v, want %v", got, tt.want)
			}
		})
	}
}

// render checks values against the schema and renders the chart, as helm
// install does before it sends anything.
func render(ch *chart.Chart, values map[string]any) (map[string]string, error) {
	rv, err := chartutil.ToRenderValues(ch, values, chartutil.ReleaseOptions{Name: "abn", Namespace: "shop", IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, rv)
}
