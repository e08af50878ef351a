package kube

import (
	"slices"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// ReadyEndpoints counts the distinct endpoints of a Service's EndpointSlices
// and the ready ones. An endpoint listed in several slices, as it may be
// while they change, counts once, ready when any copy says so; an unset
// conditions.ready means ready, as the EndpointSlice API documents. The
// ready task and `release status` both count this way.
func ReadyEndpoints(eps []discoveryv1.EndpointSlice) (ready, total int) {
	seen := map[string]bool{}
	for _, s := range eps {
		for _, ep := range s.Endpoints {
			key := string(s.AddressType) + " " + strings.Join(slices.Sorted(slices.Values(ep.Addresses)), " ")
			seen[key] = seen[key] || ep.Conditions.Ready == nil || *ep.Conditions.Ready
		}
	}
	for _, r := range seen {
		if r {
			ready++
		}
	}
	return ready, len(seen)
}
