package release_test

import (
	"maps"
	"slices"
	"testing"
)

// TestBlueGreen installs v1 at 100, adds v2 at 0, and flips to v2, with the
// readiness gate on: each upgrade first checks that the versions that will
// get traffic are ready. Both data planes.
func TestBlueGreen(t *testing.T) {
	for _, plane := range planes {
		t.Run(plane, func(t *testing.T) {
			ns := namespace(t, "bg-"+plane)
			steps := []struct {
				name     string
				versions []version
				want     map[string]int64
			}{
				{"install v1", []version{deployed("v1", 100)}, map[string]int64{"app-v1": 100}},
				{"add v2 at 0", []version{deployed("v1", 100), deployed("v2", 0)}, map[string]int64{"app-v1": 100, "app-v2": 0}},
				{"flip to v2", []version{deployed("v1", 0), deployed("v2", 100)}, map[string]int64{"app-v1": 0, "app-v2": 100}},
			}
			for _, s := range steps {
				mustUpgrade(t, ns, "app", valuesFile(t, plane, "blue-green", s.versions, nil), "--wait")
				wantWeights(t, s.name, readRoute(t, plane, ns, "app"), s.want)
			}
		})
	}
}

// TestCanary adds v2, sends testers (a header) to it, then 90/10, 50/50,
// and promotes v2.
func TestCanary(t *testing.T) {
	tester := []any{map[string]any{"headers": map[string]any{"x-user": "tester"}}}
	for _, plane := range planes {
		t.Run(plane, func(t *testing.T) {
			ns := namespace(t, "canary-"+plane)
			steps := []struct {
				name     string
				versions []version
				want     map[string]int64
				matched  bool
			}{
				{"install v1", []version{deployed("v1", 100)}, map[string]int64{"app-v1": 100}, false},
				// v2 gets no traffic until it is ready: the readiness gate
				// refuses a match to a version that does not exist yet.
				{"add v2", []version{deployed("v1", 100), deployed("v2", 0)}, map[string]int64{"app-v1": 100, "app-v2": 0}, false},
				{"testers to v2", []version{deployed("v1", 100), deployed("v2", 0, "match", tester)}, map[string]int64{"app-v1": 100, "app-v2": 0}, true},
				{"90/10", []version{deployed("v1", 90), deployed("v2", 10, "match", tester)}, map[string]int64{"app-v1": 90, "app-v2": 10}, true},
				{"50/50", []version{deployed("v1", 50), deployed("v2", 50)}, map[string]int64{"app-v1": 50, "app-v2": 50}, false},
				{"promote", []version{deployed("v1", 0), deployed("v2", 100)}, map[string]int64{"app-v1": 0, "app-v2": 100}, false},
			}
			for _, s := range steps {
				mustUpgrade(t, ns, "app", valuesFile(t, plane, "canary", s.versions, nil), "--wait")
				r := readRoute(t, plane, ns, "app")
				wantWeights(t, s.name, r, s.want)
				var want map[string][]map[string]string
				if s.matched {
					want = map[string][]map[string]string{"app-v2": {{"x-user": "tester"}}}
				}
				if !maps.EqualFunc(r.matched, want, func(a, b []map[string]string) bool {
					return slices.EqualFunc(a, b, func(x, y map[string]string) bool { return maps.Equal(x, y) })
				}) {
					t.Errorf("%s: header matches %v, want %v", s.name, r.matched, want)
				}
			}
		})
	}
}

// TestMirror adds v2, then copies 40% of v1's traffic to it.
func TestMirror(t *testing.T) {
	for _, plane := range planes {
		t.Run(plane, func(t *testing.T) {
			ns := namespace(t, "mirror-"+plane)
			mustUpgrade(t, ns, "app", valuesFile(t, plane, "mirror", []version{deployed("v1", 100)}, nil), "--wait")
			mustUpgrade(t, ns, "app", valuesFile(t, plane, "mirror", []version{deployed("v1", 100), deployed("v2", 0)}, nil), "--wait")
			mustUpgrade(t, ns, "app", valuesFile(t, plane, "mirror", []version{deployed("v1", 100), deployed("v2", 0, "mirror", 40)}, nil), "--wait")
			r := readRoute(t, plane, ns, "app")
			wantWeights(t, "mirror", r, map[string]int64{"app-v1": 100, "app-v2": 0})
			if !maps.Equal(r.mirrors, map[string]int64{"app-v2": 40}) {
				t.Errorf("mirrors %v, want app-v2 at 40%%", r.mirrors)
			}
		})
	}
}
