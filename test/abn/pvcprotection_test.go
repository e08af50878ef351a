package abn_test

import (
	"context"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// pvcProtection is the finalizer that the API server's
// StorageObjectInUseProtection admission puts on every claim.
const pvcProtection = "kubernetes.io/pvc-protection"

// protectClaims plays kube-controller-manager's pvc-protection controller,
// which the test bed does not run and the node harness does not play: a
// deleted claim loses its kubernetes.io/pvc-protection finalizer once no
// Pod uses it, so that it goes away (without this, helm uninstall --wait
// waits for the chart's claim forever). It polls until ctx ends.
func protectClaims(ctx context.Context, cs kubernetes.Interface) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		claims, err := cs.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for _, c := range claims.Items {
			if c.DeletionTimestamp == nil || !slices.Contains(c.Finalizers, pvcProtection) || claimInUse(ctx, cs, &c) {
				continue
			}
			c.Finalizers = slices.DeleteFunc(c.Finalizers, func(f string) bool { return f == pvcProtection })
			_, _ = cs.CoreV1().PersistentVolumeClaims(c.Namespace).Update(ctx, &c, metav1.UpdateOptions{})
		}
	}
}

// claimInUse says whether a Pod of the claim's namespace that has not
// finished mounts it (or the Pods cannot be listed).
func claimInUse(ctx context.Context, cs kubernetes.Interface, c *corev1.PersistentVolumeClaim) bool {
	pods, err := cs.CoreV1().Pods(c.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return true
	}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == c.Name {
				return true
			}
		}
	}
	return false
}
