package kube

import (
	"context"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

var endpointSlices = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}

func slice(ns, name, service string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("discovery.k8s.io/v1")
	u.SetKind("EndpointSlice")
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetLabels(map[string]string{"kubernetes.io/service-name": service})
	return u
}

// TestList shows that List keeps to the namespace and the label selector.
func TestList(t *testing.T) {
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{endpointSlices: "EndpointSliceList"},
		slice("team-a", "app-a", "app"), slice("team-a", "app-b", "app"), slice("team-a", "web-a", "web"), slice("other", "app-c", "app"))
	tests := []struct {
		ns, selector string
		want         []string
	}{
		{"team-a", "kubernetes.io/service-name=app", []string{"app-a", "app-b"}},
		{"team-a", "kubernetes.io/service-name=none", nil},
		{"team-a", "", []string{"app-a", "app-b", "web-a"}},
		{"other", "kubernetes.io/service-name=app", []string{"app-c"}},
	}
	for _, tc := range tests {
		list, err := Objects(client).List(context.Background(), endpointSlices, tc.ns, tc.selector)
		if err != nil {
			t.Fatalf("List(%s, %q): %v", tc.ns, tc.selector, err)
		}
		var got []string
		for _, item := range list.Items {
			got = append(got, item.GetName())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("List(%s, %q) = %q, want %q", tc.ns, tc.selector, got, tc.want)
		}
	}
}

func TestObjectsNil(t *testing.T) {
	if r := Objects(nil); r != nil {
		t.Errorf("Objects(nil) = %v, want nil", r)
	}
}
