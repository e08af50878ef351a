package traefik_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iter8-tools/iter8/test/traefik"
)

func TestAddresses(t *testing.T) {
	pod := func(ns, app, version string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Labels: map[string]string{
			"iter8.tools/app": app, "iter8.tools/version": version}}}
	}
	var a traefik.Addresses
	if got := a.PodAddress(pod("ns", "app", "v1")); got != "" {
		t.Errorf("zero Addresses: got %q, want \"\"", got)
	}
	remove := a.Set("ns", "app", "v1", "10.77.1.2")
	a.Set("ns", "app", "v2", "10.77.2.2")
	for _, c := range []struct {
		pod  *corev1.Pod
		want string
	}{
		{pod("ns", "app", "v1"), "10.77.1.2"},
		{pod("ns", "app", "v2"), "10.77.2.2"},
		{pod("other", "app", "v1"), ""},
		{pod("ns", "other", "v1"), ""},
		{&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}}, ""},
	} {
		if got := a.PodAddress(c.pod); got != c.want {
			t.Errorf("PodAddress(%s %v) = %q, want %q", c.pod.Namespace, c.pod.Labels, got, c.want)
		}
	}
	remove()
	if got := a.PodAddress(pod("ns", "app", "v1")); got != "" {
		t.Errorf("after remove: got %q, want \"\"", got)
	}
	if got := a.PodAddress(pod("ns", "app", "v2")); got != "10.77.2.2" {
		t.Errorf("v2 after removing v1: got %q", got)
	}
}
