// Package apps says which applications the A/B/n service serves: each
// application's versions in its release's order, their weights and
// readiness, and the header that routes a request to one version. A
// Source answers from memory, so that Lookup never waits on a cluster.
package apps

import "github.com/iter8-tools/iter8/pkg/abn/assign"

// App is one application.
type App struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Versions in the release's order; the first is the baseline.
	Versions []Version `json:"versions"`
	// Header is the request header of the route's per-version matches; ""
	// when the release renders none.
	Header string `json:"header,omitempty"`
}

// Version is one version of an application.
type Version struct {
	Name string `json:"name"`
	// Weight is the version's weight in the route.
	Weight int `json:"weight"`
	// Ready is the readiness gate's rule: its Deployment Available at its
	// current generation, and its Service with a ready endpoint.
	Ready bool `json:"ready"`
	// HeaderValue of App.Header routes a request to this version; "" when
	// the route has no such match for it.
	HeaderValue string `json:"headerValue,omitempty"`
}

// Candidates are the versions that may get users: ready, with weight.
func (a *App) Candidates() []assign.Candidate {
	var cs []assign.Candidate
	for _, v := range a.Versions {
		if v.Ready && v.Weight > 0 {
			cs = append(cs, assign.Candidate{Name: v.Name, Weight: float64(v.Weight)})
		}
	}
	return cs
}

// Index is the position of a version, or -1.
func (a *App) Index(version string) int {
	for i, v := range a.Versions {
		if v.Name == version {
			return i
		}
	}
	return -1
}

// Source finds applications by namespace and name.
type Source interface {
	// App returns the application, or false when there is none.
	App(namespace, name string) (App, bool)
	// Synced says whether the source has read the cluster once (readiness).
	Synced() bool
}

// Static is a fixed set of applications, keyed "namespace/name".
type Static map[string]App

// App implements Source.
func (s Static) App(namespace, name string) (App, bool) {
	a, ok := s[namespace+"/"+name]
	return a, ok
}

// Synced implements Source.
func (Static) Synced() bool { return true }
