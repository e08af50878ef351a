package release_test

import (
	"maps"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var inferenceServices = schema.GroupVersionResource{Group: "serving.kserve.io", Version: "v1beta1", Resource: "inferenceservices"}

// TestInferenceServiceGate routes to an existing KServe InferenceService:
// the readiness gate refuses it weight until it is Ready.
func TestInferenceServiceGate(t *testing.T) {
	if o := kubectl(t, "", "apply", "-f", filepath.Join("testdata", "kserve-inferenceservice-crd.yaml")); o.Code != 0 {
		t.Fatal(o)
	}
	if err := waitEstablished(t.Context(), "inferenceservices.serving.kserve.io"); err != nil {
		t.Fatal(err)
	}
	ns := namespace(t, "isvc-gate")
	isvc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
		"metadata": map[string]any{"name": "model"},
		"spec":     map[string]any{"predictor": map[string]any{"model": map[string]any{"modelFormat": map[string]any{"name": "sklearn"}}}},
	}}
	created, err := dyn.Resource(inferenceServices).Namespace(ns).Create(t.Context(), isvc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	model := version{"name": "model", "inferenceService": map[string]any{"name": "model"}}
	withWeight := func(w int) version { m := maps.Clone(model); m["weight"] = w; return m }
	fast := map[string]any{"gates": map[string]any{"readiness": map[string]any{"enabled": true, "timeout": "3s"}}}
	mustUpgrade(t, ns, "app", valuesFile(t, "gateway-api", "canary", []version{deployed("v1", 100), withWeight(0)}, fast), "--wait")

	o := upgrade(t, ns, "app", valuesFile(t, "gateway-api", "canary", []version{deployed("v1", 90), withWeight(10)}, fast))
	if o.Code == 0 || !strings.Contains(o.Stderr, "pre-upgrade hooks failed") {
		t.Fatalf("weight for an InferenceService that is not Ready: want a failed gate: %s", o)
	}
	if res := gateResult(t, ns, "app-ready", 0); !strings.Contains(res.Tasks[0].Error, "model") {
		t.Errorf("gate error %q does not name the InferenceService", res.Tasks[0].Error)
	}

	// KServe reports Ready at the current generation.
	created.Object["status"] = map[string]any{
		"observedGeneration": created.GetGeneration(),
		"conditions":         []any{map[string]any{"type": "Ready", "status": "True"}},
	}
	if _, err := dyn.Resource(inferenceServices).Namespace(ns).UpdateStatus(t.Context(), created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	mustUpgrade(t, ns, "app", valuesFile(t, "gateway-api", "canary", []version{deployed("v1", 90), withWeight(10)}, fast))
	wantWeights(t, "model ready", readRoute(t, "gateway-api", ns, "app"), map[string]int64{"app-v1": 90, "model-predictor": 10})
}
