// Package ready is the `ready` task: it waits until a URL answers as
// expected and Kubernetes objects exist with their conditions met, so that
// load starts only once the target is up.
//
// An object's condition holds when status.conditions has it with status
// "True" and the status describes the object's current spec: the object's
// status.observedGeneration, when it has one, and the condition's own
// observedGeneration (metav1.Condition), when it has one, are at least
// metadata.generation. A controller that has not yet seen a change of spec
// may still report the old spec as Available; that is not ready.
//
// A Service has no conditions: with endpoints, it is ready once one of its
// EndpointSlices (discovery.k8s.io/v1, labelled
// kubernetes.io/service-name=<service>) has an endpoint whose
// conditions.ready is true or unset, as the EndpointSlice API defines ready,
// so that load only starts once something can answer it.
//
// The task reaches objects through the experiment's Kubernetes client
// (experiment.Env.Kube); objects without a namespace are looked up in the
// client's default namespace, which in a cluster is the experiment's.
package ready
