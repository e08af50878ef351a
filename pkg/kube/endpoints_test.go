package kube

import (
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
)

func TestReadyEndpoints(t *testing.T) {
	yes, no := true, false
	ep := func(ready *bool, addrs ...string) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: addrs, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
	}
	slice := func(eps ...discoveryv1.Endpoint) discoveryv1.EndpointSlice {
		return discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4, Endpoints: eps}
	}
	tests := []struct {
		name         string
		slices       []discoveryv1.EndpointSlice
		ready, total int
	}{
		{"none", nil, 0, 0},
		{"unset means ready", []discoveryv1.EndpointSlice{slice(ep(nil, "10.0.0.1"), ep(&no, "10.0.0.2"))}, 1, 2},
		{"one endpoint in two slices counts once", []discoveryv1.EndpointSlice{slice(ep(&yes, "10.0.0.1")), slice(ep(&yes, "10.0.0.1"))}, 1, 1},
		{"ready when any copy says so", []discoveryv1.EndpointSlice{slice(ep(&no, "10.0.0.1")), slice(ep(&yes, "10.0.0.1"))}, 1, 1},
	}
	for _, tt := range tests {
		if ready, total := ReadyEndpoints(tt.slices); ready != tt.ready || total != tt.total {
			t.Errorf("%s: ReadyEndpoints = %d of %d, want %d of %d", tt.name, ready, total, tt.ready, tt.total)
		}
	}
}
