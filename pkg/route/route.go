package route

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/iter8-tools/iter8/pkg/jsonerr"
)

// The kinds of route the chart renders.
const (
	KindHTTPRoute      = "HTTPRoute"
	KindVirtualService = "VirtualService"
)

// The chart's contract on its route objects.
const (
	// LabelInstance names the Helm release that owns the route.
	LabelInstance = "app.kubernetes.io/instance"
	// LabelApp names the application on every object of a release.
	LabelApp = "iter8.tools/app"
	// LabelVersion names a version on its Deployment and Service.
	LabelVersion = "iter8.tools/version"
	// AnnotationReceiving lists, as JSON, the versions that get traffic.
	AnnotationReceiving = "iter8.tools/receiving"
	// AnnotationStrategy is the release's strategy.
	AnnotationStrategy = "iter8.tools/strategy"
	// WeightsRule is the name of the rule (HTTPRoute) or http entry
	// (VirtualService) that weighs every version.
	WeightsRule = "weights"
	// MatchSuffix ends the name of a version's rule of header matches:
	// "<version>-match".
	MatchSuffix = "-match"
	// AnnotationTraefikMirroring says, as JSON, what the TraefikService in
	// an HTTPRoute's weights rule stands for (dataPlane traefik, strategy
	// mirror): the serving version's Service and the mirrored ones.
	AnnotationTraefikMirroring = "iter8.tools/traefik-mirroring"
)

// Route is what a release's route sends where.
type Route struct {
	// Kind is KindHTTPRoute or KindVirtualService.
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	// Release is the Helm release that owns the route (its
	// app.kubernetes.io/instance label); "" when the label is missing.
	Release string `json:"release,omitempty"`
	// App is the route's iter8.tools/app label.
	App string `json:"app,omitempty"`
	// Strategy is the release's strategy annotation.
	Strategy Strategy `json:"strategy,omitempty"`
	// Receiving lists the versions that get traffic, from the annotation.
	Receiving []string `json:"receiving"`
	// Backends are the weights rule's backends in order, then any backend
	// that only a match rule or a mirror names.
	Backends []Backend `json:"backends"`
	// Conditions are those a controller reported (an HTTPRoute's
	// status.parents[*].conditions); empty when none did.
	Conditions []Condition `json:"conditions,omitempty"`
}

// Backend is one Service the route sends traffic to.
type Backend struct {
	// Name is the Service's name (for Istio, the first label of the
	// destination host).
	Name string `json:"name"`
	Port int    `json:"port"`
	// Weight is the backend's weight in the weights rule: for an HTTPRoute
	// relative to the others, for a VirtualService a percentage.
	Weight int `json:"weight"`
	// Matches are the header sets (name to exact value) of the backend's
	// match rules; each set reaches it whatever the weights.
	Matches []map[string]string `json:"matches,omitempty"`
	// Mirror is the percent of the weighted traffic copied to it.
	Mirror int `json:"mirror,omitempty"`
}

// Condition is a condition a controller set on the route.
type Condition struct {
	// Parent is the Gateway the condition is about (HTTPRoute), if any.
	Parent  string                 `json:"parent,omitempty"`
	Type    string                 `json:"type"`
	Status  metav1.ConditionStatus `json:"status"`
	Reason  string                 `json:"reason,omitempty"`
	Message string                 `json:"message,omitempty"`
}

// Weights returns the backends' weights, in order.
func (r *Route) Weights() []int {
	ws := make([]int, len(r.Backends))
	for i, b := range r.Backends {
		ws[i] = b.Weight
	}
	return ws
}

// Backend returns the backend of the Service name, or nil.
func (r *Route) Backend(name string) *Backend {
	for i := range r.Backends {
		if r.Backends[i].Name == name {
			return &r.Backends[i]
		}
	}
	return nil
}

// Parse reads a route the chart rendered. The error names the object and
// the field that is malformed.
func Parse(u *unstructured.Unstructured) (*Route, error) {
	if u == nil {
		return nil, fmt.Errorf("parse route: no object")
	}
	r := &Route{Kind: u.GetKind(), Name: u.GetName(), Namespace: u.GetNamespace()}
	p := &parser{obj: r.Kind + " " + r.Name}
	if r.Namespace != "" {
		p.obj = r.Kind + " " + r.Namespace + "/" + r.Name
	}
	labels := u.GetLabels()
	r.Release, r.App = labels[LabelInstance], labels[LabelApp]
	ann := u.GetAnnotations()
	r.Strategy = Strategy(ann[AnnotationStrategy])
	r.Receiving = []string{}
	if s, ok := ann[AnnotationReceiving]; ok && s != "" {
		if err := json.Unmarshal([]byte(s), &r.Receiving); err != nil {
			return nil, p.errorf("metadata.annotations["+AnnotationReceiving+"]", "not a JSON list of version names: %v", err)
		}
	}
	var err error
	switch r.Kind {
	case KindHTTPRoute:
		var hr gatewayv1.HTTPRoute
		if err = p.decode(u.Object, &hr); err == nil {
			err = p.httpRoute(&hr, ann[AnnotationTraefikMirroring], r)
		}
	case KindVirtualService:
		var vs virtualService
		if err = p.decode(u.Object, &vs); err == nil {
			err = p.virtualService(&vs, r)
		}
	default:
		return nil, fmt.Errorf("parse route %s: kind %q is neither %s nor %s", r.Name, r.Kind, KindHTTPRoute, KindVirtualService)
	}
	if err != nil {
		return nil, err
	}
	if r.Backends == nil {
		r.Backends = []Backend{}
	}
	return r, nil
}

// parser reads fields of one object and names them in errors.
type parser struct {
	obj string
}

func (p *parser) errorf(path, format string, args ...any) error {
	return fmt.Errorf("parse %s: %s: %s", p.obj, path, fmt.Sprintf(format, args...))
}

// decode converts obj into the typed struct into. It goes through JSON
// rather than runtime.DefaultUnstructuredConverter, whose errors name no
// field: a JSON type error has the offset of the mistyped value, which
// names its field with list indexes (spec.rules[0].backendRefs[1].weight).
func (p *parser) decode(obj map[string]any, into any) error {
	data, err := json.Marshal(obj)
	if err == nil {
		err = json.Unmarshal(data, into)
	}
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		if err != nil {
			return fmt.Errorf("parse %s: %w", p.obj, err)
		}
		return nil
	}
	path, ok := jsonerr.PathAt(data, te.Offset)
	// An Unmarshaler's own type error (metav1.Time's) has an offset within
	// its value only; then the decoder's dotted path of Go fields is right.
	if last := te.Field[strings.LastIndex(te.Field, ".")+1:]; !ok || !strings.Contains(path, last) {
		path = te.Field
	}
	return p.errorf(path, "got %s, want %s", te.Value, jsonerr.Want(te.Type))
}

// weightsEntry returns the index of the one entry of list (spec.rules or
// spec.http) named WeightsRule, the entry that weighs every version; what
// names an entry in errors.
func (p *parser) weightsEntry(list, what string, names []string) (int, error) {
	at := slices.Index(names, WeightsRule)
	if at < 0 {
		return 0, p.errorf(list, "no %s named %s: not a route of the release chart", what, WeightsRule)
	}
	if j := slices.Index(names[at+1:], WeightsRule); j >= 0 {
		return 0, p.errorf(fmt.Sprintf("%s[%d].name", list, at+1+j), "a second %s named %s (the first is %s[%d])", what, WeightsRule, list, at)
	}
	return at, nil
}

// backend returns r's backend of Service name, appending one when there is
// none yet.
func backend(r *Route, name string, port int) *Backend {
	if b := r.Backend(name); b != nil {
		return b
	}
	r.Backends = append(r.Backends, Backend{Name: name, Port: port})
	return &r.Backends[len(r.Backends)-1]
}
