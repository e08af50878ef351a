package abn_test

import (
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
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
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := render(ch, tt.values)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("values %v: %v, want an error with %q", tt.values, err, tt.want)
			}
		})
	}
	// And what works: two replicas on Redis.
	if err := render(ch, map[string]any{"replicas": 2, "ledger": redis}); err != nil {
		t.Errorf("two replicas on Redis: %v", err)
	}
}

// render checks values against the schema and renders the chart, as helm
// install does before it sends anything.
func render(ch *chart.Chart, values map[string]any) error {
	rv, err := chartutil.ToRenderValues(ch, values, chartutil.ReleaseOptions{Name: "abn", Namespace: "shop", IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		return err
	}
	_, err = engine.Render(ch, rv)
	return err
}
