package kube

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// ReadinessState is the readiness gate's verdict on one version of an app.
// Its words are those `release status -o json` prints, which scripts read.
type ReadinessState string

// The verdicts of the readiness rule.
const (
	StateReady    ReadinessState = "ready"
	StateNotReady ReadinessState = "not ready"
	// StateUnknown is the verdict on a version with neither a Deployment
	// nor a Service: nothing says whether it could serve.
	StateUnknown ReadinessState = "unknown"
)

// VersionReadiness is the readiness rule's verdict on one version, with
// what it counted.
type VersionReadiness struct {
	State ReadinessState
	// Reason says why the version is not ready, or unknown; "" when ready.
	Reason string
	// ReadyEndpoints counts the Service's ready endpoints; -1 when the
	// Service does not exist.
	ReadyEndpoints int
}

// Readiness applies the readiness rule to one version of an app: its
// Deployment (nil when there is none) Available at its current generation,
// and, when its Service exists, at least one ready endpoint among the
// Service's EndpointSlices (counted by ReadyEndpoints). version and service
// only name things in the reason.
//
// It is pure, so that `release status` (which reads the objects on demand)
// and the A/B/n service's watcher (which reads them from informers) cannot
// disagree on what ready means.
func Readiness(version string, d *appsv1.Deployment, service string, serviceExists bool, slices []discoveryv1.EndpointSlice) VersionReadiness {
	out := VersionReadiness{ReadyEndpoints: -1}
	var reasons []string
	if d != nil {
		available := false
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
				available = true
			}
		}
		switch {
		// A condition reported for an older generation says nothing about
		// the Pods of the current template.
		case d.Status.ObservedGeneration < d.Generation:
			reasons = append(reasons, fmt.Sprintf("deployment %s: generation %d not yet observed", d.Name, d.Generation))
		case !available:
			reasons = append(reasons, fmt.Sprintf("deployment %s: not Available", d.Name))
		}
	}
	if serviceExists {
		out.ReadyEndpoints, _ = ReadyEndpoints(slices)
		if out.ReadyEndpoints == 0 {
			reasons = append(reasons, fmt.Sprintf("service %s: no ready endpoints", service))
		}
	}
	switch {
	case d == nil && !serviceExists:
		out.State = StateUnknown
		out.Reason = fmt.Sprintf("no Deployment of version %s and no Service %s", version, service)
	case len(reasons) > 0:
		out.State = StateNotReady
		out.Reason = strings.Join(reasons, "; ")
	default:
		out.State = StateReady
	}
	return out
}
