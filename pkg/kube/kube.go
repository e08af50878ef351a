// Package kube adapts client-go to the small interfaces of the experiment
// core, which imports no client-go (DESIGN §2).
package kube

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// Objects reads objects through a dynamic client; nil for a nil client.
func Objects(client dynamic.Interface) experiment.ObjectReader {
	if client == nil {
		return nil
	}
	return objects{client}
}

type objects struct{ client dynamic.Interface }

func (o objects) Get(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error) {
	return o.client.Resource(gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
}

// List asks for every match in one response (no Limit): the task's lists,
// such as the EndpointSlices of one Service, are short, and one response is
// one consistent snapshot.
func (o objects) List(ctx context.Context, gvr schema.GroupVersionResource, namespace, labelSelector string) (*unstructured.UnstructuredList, error) {
	return o.client.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: labelSelector})
}
