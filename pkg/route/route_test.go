package route

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func parseYAML(t *testing.T, doc string) (*Route, error) {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		t.Fatalf("bad test YAML: %v", err)
	}
	return Parse(&unstructured.Unstructured{Object: obj})
}

const httpMeta = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: app
  namespace: team
  labels:
    app.kubernetes.io/instance: rel
    iter8.tools/app: app
`

const vsMeta = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: app
  namespace: team
  labels:
    app.kubernetes.io/instance: rel
    iter8.tools/app: app
`

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want Route
	}{
		{
			name: "httproute blue-green with conditions",
			doc: httpMeta + `  annotations:
    iter8.tools/receiving: '["v1"]'
    iter8.tools/strategy: blue-green
spec:
  parentRefs: [{name: gateway, namespace: infra}]
  rules:
  - name: weights
    backendRefs:
    - {name: app-v1, port: 80, weight: 100}
    - {name: app-v2, port: 80, weight: 0}
status:
  parents:
  - parentRef: {name: gateway, namespace: infra}
    controllerName: example.com/gw
    conditions:
    - {type: Accepted, status: "True", reason: Accepted, message: ok}
    - {type: ResolvedRefs, status: "False", reason: BackendNotFound, message: no app-v2}
`,
			want: Route{Kind: KindHTTPRoute, Name: "app", Namespace: "team", Release: "rel", App: "app", Strategy: BlueGreen,
				Receiving: []string{"v1"},
				Backends:  []Backend{{Name: "app-v1", Port: 80, Weight: 100}, {Name: "app-v2", Port: 80}},
				Conditions: []Condition{
					{Parent: "infra/gateway", Type: "Accepted", Status: "True", Reason: "Accepted", Message: "ok"},
					{Parent: "infra/gateway", Type: "ResolvedRefs", Status: "False", Reason: "BackendNotFound", Message: "no app-v2"},
				}},
		},
		{
			name: "httproute canary with matches",
			doc: httpMeta + `  annotations:
    iter8.tools/receiving: '["v1","v2"]'
    iter8.tools/strategy: canary
spec:
  rules:
  - name: v2-match
    matches:
    - headers:
      - {type: Exact, name: x-user, value: tester}
      - {type: Exact, name: x-beta, value: "1"}
    - headers:
      - {type: Exact, name: x-user, value: qa}
    backendRefs:
    - {name: app-v2, port: 80}
  - name: weights
    backendRefs:
    - {name: app-v1, port: 80, weight: 90}
    - {name: app-v2, port: 80, weight: 10}
`,
			want: Route{Kind: KindHTTPRoute, Name: "app", Namespace: "team", Release: "rel", App: "app", Strategy: Canary,
				Receiving: []string{"v1", "v2"},
				Backends: []Backend{{Name: "app-v1", Port: 80, Weight: 90}, {Name: "app-v2", Port: 80, Weight: 10,
					Matches: []map[string]string{{"x-user": "tester", "x-beta": "1"}, {"x-user": "qa"}}}}},
		},
		{
			name: "httproute mirror through a TraefikService",
			doc: httpMeta + `  annotations:
    iter8.tools/receiving: '["v1","v2"]'
    iter8.tools/strategy: mirror
    iter8.tools/traefik-mirroring: '{"traefikService":"app","service":"app-v1","port":80,"mirrors":[{"service":"app-v2","port":80,"percent":30}]}'
spec:
  rules:
  - name: weights
    backendRefs:
    - {group: traefik.io, kind: TraefikService, name: team-app@kubernetescrd, weight: 100}
    - {name: app-v2, port: 80, weight: 0}
    - {name: app-v3, port: 80, weight: 0}
`,
			want: Route{Kind: KindHTTPRoute, Name: "app", Namespace: "team", Release: "rel", App: "app", Strategy: Mirror,
				Receiving: []string{"v1", "v2"},
				Backends: []Backend{{Name: "app-v1", Port: 80, Weight: 100}, {Name: "app-v2", Port: 80, Mirror: 30},
					{Name: "app-v3", Port: 80}}},
		},
		{
			name: "httproute mirror",
			doc: httpMeta + `  annotations:
    iter8.tools/receiving: '["v1","v2","v3"]'
    iter8.tools/strategy: mirror
spec:
  rules:
  - name: weights
    backendRefs:
    - {name: app-v1, port: 80, weight: 100}
    - {name: app-v2, port: 80, weight: 0}
    - {name: app-v3, port: 80, weight: 0}
    filters:
    - type: RequestMirror
      requestMirror:
        backendRef: {name: app-v2, port: 80}
        percent: 40
    - type: RequestMirror
      requestMirror:
        backendRef: {name: app-v3, port: 80}
        fraction: {numerator: 1, denominator: 4}
`,
			want: Route{Kind: KindHTTPRoute, Name: "app", Namespace: "team", Release: "rel", App: "app", Strategy: Mirror,
				Receiving: []string{"v1", "v2", "v3"},
				Backends:  []Backend{{Name: "app-v1", Port: 80, Weight: 100}, {Name: "app-v2", Port: 80, Mirror: 40}, {Name: "app-v3", Port: 80, Mirror: 25}}},
		},
		{
			name: "httproute none, default weight, no annotations",
			doc: httpMeta + `spec:
  rules:
  - name: weights
    backendRefs:
    - {name: app-v1, port: 8080}
    - {name: existing, port: 80, weight: 3}
`,
			want: Route{Kind: KindHTTPRoute, Name: "app", Namespace: "team", Release: "rel", App: "app",
				Receiving: []string{},
				Backends:  []Backend{{Name: "app-v1", Port: 8080, Weight: 1}, {Name: "existing", Port: 80, Weight: 3}}},
		},
		{
			name: "virtualservice blue-green",
			doc: vsMeta + `  annotations:
    iter8.tools/receiving: '["v2"]'
    iter8.tools/strategy: blue-green
spec:
  hosts: [app]
  http:
  - name: weights
    route:
    - destination: {host: app-v1.team.svc.cluster.local, port: {number: 80}}
      weight: 0
    - destination: {host: app-v2.team.svc.cluster.local, port: {number: 80}}
      weight: 100
`,
			want: Route{Kind: KindVirtualService, Name: "app", Namespace: "team", Release: "rel", App: "app", Strategy: BlueGreen,
				Receiving: []string{"v2"},
				Backends:  []Backend{{Name: "app-v1", Port: 80}, {Name: "app-v2", Port: 80, Weight: 100}}},
		},
		{
			name: "virtualservice canary",
			doc: vsMeta + `  annotations:
    iter8.tools/receiving: '["v1","v2"]'
    iter8.tools/strategy: canary
spec:
  http:
  - name: v2-match
    match:
    - headers:
        x-user: {exact: tester}
    route:
    - destination: {host: app-v2.team.svc.cluster.local, port: {number: 80}}
  - name: weights
    route:
    - destination: {host: app-v1.team.svc.cluster.local, port: {number: 80}}
      weight: 67
    - destination: {host: app-v2.team.svc.cluster.local, port: {number: 80}}
      weight: 33
`,
			want: Route{Kind: KindVirtualService, Name: "app", Namespace: "team", Release: "rel", App: "app", Strategy: Canary,
				Receiving: []string{"v1", "v2"},
				Backends: []Backend{{Name: "app-v1", Port: 80, Weight: 67},
					{Name: "app-v2", Port: 80, Weight: 33, Matches: []map[string]string{{"x-user": "tester"}}}}},
		},
		{
			name: "virtualservice one mirror",
			doc: vsMeta + `  annotations:
    iter8.tools/receiving: '["v1","v2"]'
    iter8.tools/strategy: mirror
spec:
  http:
  - name: weights
    route:
    - destination: {host: app-v1.team.svc.cluster.local, port: {number: 80}}
      weight: 100
    - destination: {host: app-v2.team.svc.cluster.local, port: {number: 80}}
      weight: 0
    mirror: {host: app-v2.team.svc.cluster.local, port: {number: 80}}
    mirrorPercentage: {value: 40}
`,
			want: Route{Kind: KindVirtualService, Name: "app", Namespace: "team", Release: "rel", App: "app", Strategy: Mirror,
				Receiving: []string{"v1", "v2"},
				Backends:  []Backend{{Name: "app-v1", Port: 80, Weight: 100}, {Name: "app-v2", Port: 80, Mirror: 40}}},
		},
		{
			name: "virtualservice mirrors list",
			doc: vsMeta + `  annotations:
    iter8.tools/strategy: mirror
spec:
  http:
  - name: weights
    route:
    - destination: {host: app-v1.team.svc.cluster.local, port: {number: 80}}
      weight: 100
    - destination: {host: app-v2.team.svc.cluster.local, port: {number: 80}}
      weight: 0
    mirrors:
    - destination: {host: app-v2.team.svc.cluster.local, port: {number: 80}}
      percentage: {value: 10}
    - destination: {host: other.team.svc.cluster.local, port: {number: 8080}}
      percentage: {value: 20.4}
`,
			want: Route{Kind: KindVirtualService, Name: "app", Namespace: "team", Release: "rel", App: "app", Strategy: Mirror,
				Receiving: []string{},
				Backends: []Backend{{Name: "app-v1", Port: 80, Weight: 100}, {Name: "app-v2", Port: 80, Mirror: 10},
					{Name: "other", Port: 8080, Mirror: 20}}},
		},
		{
			name: "virtualservice none",
			doc: vsMeta + `  annotations:
    iter8.tools/receiving: '["v1","v2"]'
    iter8.tools/strategy: none
spec:
  http:
  - name: weights
    route:
    - destination: {host: app-v1, port: {number: 80}}
      weight: 50
    - destination: {host: app-v2.team, port: {number: 80}}
      weight: 50
`,
			want: Route{Kind: KindVirtualService, Name: "app", Namespace: "team", Release: "rel", App: "app", Strategy: None,
				Receiving: []string{"v1", "v2"},
				Backends:  []Backend{{Name: "app-v1", Port: 80, Weight: 50}, {Name: "app-v2", Port: 80, Weight: 50}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseYAML(t, tt.doc)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("Parse:\n got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"no weights rule", httpMeta + "spec:\n  rules:\n  - name: other\n    backendRefs: [{name: x, port: 80}]\n",
			"parse HTTPRoute team/app: spec.rules: no rule named weights"},
		{"no weights entry", vsMeta + "spec:\n  http: []\n", "parse VirtualService team/app: spec.http: no http entry named weights"},
		{"weight not a number", httpMeta + "spec:\n  rules:\n  - name: weights\n    backendRefs: [{name: x, port: 80, weight: heavy}]\n",
			"spec.rules[0].backendRefs[0].weight: got string, want a whole number"},
		{"rules not a list", httpMeta + "spec:\n  rules: {name: weights}\n", "spec.rules: got object, want a list"},
		{"backend without name", httpMeta + "spec:\n  rules:\n  - name: weights\n    backendRefs: [{port: 80}]\n",
			"spec.rules[0].backendRefs[0].name: missing"},
		{"backend twice", httpMeta + "spec:\n  rules:\n  - name: weights\n    backendRefs: [{name: x, port: 80}, {name: x, port: 80}]\n",
			"backend x appears twice"},
		{"two weights rules", httpMeta + "spec:\n  rules:\n  - name: weights\n  - name: weights\n", "spec.rules[1].name: a second rule named weights"},
		{"bad receiving", httpMeta + "  annotations:\n    iter8.tools/receiving: v1\nspec:\n  rules:\n  - name: weights\n",
			"metadata.annotations[iter8.tools/receiving]: not a JSON list"},
		{"match rule with two backends", httpMeta + `spec:
  rules:
  - name: v2-match
    backendRefs: [{name: a, port: 80}, {name: b, port: 80}]
  - name: weights
`, "spec.rules[0].backendRefs: a match rule has one backend, not 2"},
		{"mirror without backend", httpMeta + `spec:
  rules:
  - name: weights
    filters: [{type: RequestMirror, requestMirror: {percent: 3}}]
`, "spec.rules[0].filters[0].requestMirror.backendRef.name: missing"},
		{"destination without host", vsMeta + "spec:\n  http:\n  - name: weights\n    route: [{destination: {port: {number: 80}}, weight: 100}]\n",
			"spec.http[0].route[0].destination.host: missing"},
		{"fractional weight", vsMeta + "spec:\n  http:\n  - name: weights\n    route: [{destination: {host: a}, weight: 2.5}]\n",
			"spec.http[0].route[0].weight: got number 2.5, want a whole number"},
		{"weight out of range", httpMeta + "spec:\n  rules:\n  - name: weights\n    backendRefs: [{name: x, port: 80, weight: 3000000000}]\n",
			"spec.rules[0].backendRefs[0].weight: got number 3000000000, want a whole number"},
		{"mirror filter without requestMirror", httpMeta + "spec:\n  rules:\n  - name: weights\n    filters: [{type: RequestMirror}]\n",
			"spec.rules[0].filters[0].requestMirror: missing"},
		{"header name missing", httpMeta + `spec:
  rules:
  - name: v2-match
    matches: [{headers: [{value: x}]}]
    backendRefs: [{name: a, port: 80}]
  - name: weights
`, "spec.rules[0].matches[0].headers[0].name: missing"},
		{"label not a string", httpMeta + "    iter8.tools/tier: 3\nspec:\n  rules:\n  - name: weights\n",
			"metadata.labels[iter8.tools/tier]: got number, want a string"},
		{"condition time not a string", httpMeta + `spec:
  rules:
  - name: weights
status:
  parents:
  - parentRef: {name: gw}
    conditions: [{type: Accepted, status: "True", lastTransitionTime: 5}]
`, "lastTransitionTime: got number, want a string"},
		{"istio header not an object", vsMeta + `spec:
  http:
  - name: v2-match
    match: [{headers: {x-user: tester}}]
    route: [{destination: {host: a}}]
  - name: weights
`, "spec.http[0].match[0].headers[x-user]: got string, want an object"},
		{"istio destination missing", vsMeta + "spec:\n  http:\n  - name: weights\n    mirrors: [{percentage: {value: 3}}]\n",
			"spec.http[0].mirrors[0].destination: missing"},
		{"istio second weights entry", vsMeta + "spec:\n  http:\n  - name: weights\n  - name: weights\n",
			"spec.http[1].name: a second http entry named weights"},
		{"TraefikService without its annotation", httpMeta + "spec:\n  rules:\n  - name: weights\n    backendRefs: [{kind: TraefikService, name: team-app@kubernetescrd}]\n",
			"spec.rules[0].backendRefs[0]: a TraefikService backend needs the annotation iter8.tools/traefik-mirroring"},
		{"traefik-mirroring not JSON", httpMeta + "  annotations:\n    iter8.tools/traefik-mirroring: app\nspec:\n  rules:\n  - name: weights\n    backendRefs: [{kind: TraefikService, name: x}]\n",
			"metadata.annotations[iter8.tools/traefik-mirroring]: not JSON"},
		{"traefik-mirroring without service", httpMeta + "  annotations:\n    iter8.tools/traefik-mirroring: '{\"port\": 80}'\nspec:\n  rules:\n  - name: weights\n    backendRefs: [{kind: TraefikService, name: x}]\n",
			"metadata.annotations[iter8.tools/traefik-mirroring].service: missing"},
		{"traefik-mirroring percent above 100", httpMeta + "  annotations:\n    iter8.tools/traefik-mirroring: '{\"service\": \"a\", \"mirrors\": [{\"service\": \"b\", \"percent\": 150}]}'\nspec:\n  rules:\n  - name: weights\n    backendRefs: [{kind: TraefikService, name: x}]\n",
			"metadata.annotations[iter8.tools/traefik-mirroring].mirrors[0]: want a service and a percent from 0 to 100"},
		{"two TraefikServices", httpMeta + "  annotations:\n    iter8.tools/traefik-mirroring: '{\"service\": \"a\"}'\nspec:\n  rules:\n  - name: weights\n    backendRefs: [{kind: TraefikService, name: x}, {kind: TraefikService, name: z}]\n",
			"spec.rules[0].backendRefs[1]: a second TraefikService"},
		{"unknown kind", "apiVersion: v1\nkind: Service\nmetadata: {name: app}\n", `kind "Service" is neither HTTPRoute nor VirtualService`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseYAML(t, tt.doc)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
