package kube

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestReadiness(t *testing.T) {
	dep := func(gen, observed int64, available bool) *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "app-v1", Generation: gen}}
		d.Status.ObservedGeneration = observed
		if available {
			d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}}
		}
		return d
	}
	no := false
	readySlice := []discoveryv1.EndpointSlice{{Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}}}}
	notReadySlice := []discoveryv1.EndpointSlice{{Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &no}}}}}
	for _, tc := range []struct {
		name   string
		d      *appsv1.Deployment
		svc    bool
		slices []discoveryv1.EndpointSlice
		want   VersionReadiness
	}{
		{"ready", dep(2, 2, true), true, readySlice, VersionReadiness{State: StateReady, ReadyEndpoints: 1}},
		{"deployment only", dep(1, 1, true), false, nil, VersionReadiness{State: StateReady, ReadyEndpoints: -1}},
		{"service only", nil, true, readySlice, VersionReadiness{State: StateReady, ReadyEndpoints: 1}},
		{"neither", nil, false, nil, VersionReadiness{State: StateUnknown, ReadyEndpoints: -1,
			Reason: "no Deployment of version v1 and no Service app-v1"}},
		{"old generation", dep(3, 2, true), true, notReadySlice, VersionReadiness{State: StateNotReady,
			Reason: "deployment app-v1: generation 3 not yet observed; service app-v1: no ready endpoints"}},
		{"not available", dep(1, 1, false), true, readySlice, VersionReadiness{State: StateNotReady, ReadyEndpoints: 1,
			Reason: "deployment app-v1: not Available"}},
		{"no slices", dep(1, 1, true), true, nil, VersionReadiness{State: StateNotReady,
			Reason: "service app-v1: no ready endpoints"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Readiness("v1", tc.d, "app-v1", tc.svc, tc.slices); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
