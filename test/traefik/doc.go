// Package traefik runs a real Gateway API data plane for the test bed's
// routing tests: Traefik (built by scripts/testbed.sh from
// test/traefik/tools) pointed at the test API server, and the versions'
// backends (the sample app) inside network namespaces that the tests make.
//
// [Start] creates what Traefik's Kubernetes Gateway provider needs (a
// ServiceAccount with a TokenRequest token, a ClusterRole and its binding, a
// GatewayClass of controller [ControllerName] and a Gateway whose HTTP
// listener is Traefik's entrypoint on 127.0.0.1), starts Traefik on the host
// and waits until it answers its ping and has programmed the Gateway.
// [Traefik.Stop] ends the process and deletes those objects.
//
// The API server refuses loopback addresses in EndpointSlices, so a version's
// backend cannot listen on 127.0.0.1: [StartBackend] makes a network
// namespace joined to the host by a veth pair (host end 10.77.N.1/24, the
// namespace's end 10.77.N.2/24) and runs the sample app there, on the
// namespace's address; Traefik on the host reaches it through the veth.
// Subnets are allocated under a file lock per N, so that test processes
// running at the same time never share one, and leftovers of a killed run
// holding the same N are removed first.
//
// The node harness writes the EndpointSlices of the Deployments' Services;
// [Addresses.PodAddress], passed as node.Config.PodAddress, gives a Pod the
// address of the backend set for its version with [Addresses.Set], so that
// the slices point at the real backends.
//
// Everything needs root (ip netns, veth links). This is test code only,
// never shipped.
package traefik
