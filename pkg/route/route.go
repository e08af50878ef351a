package route

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
	Parent  string `json:"parent,omitempty"`
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
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
		err = p.httpRoute(u.Object, r)
	case KindVirtualService:
		err = p.virtualService(u.Object, r)
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

// list reads the list at path (nil when absent).
func (p *parser) list(m map[string]any, path string, keys ...string) ([]map[string]any, error) {
	v, ok, err := unstructured.NestedFieldNoCopy(m, keys...)
	if err != nil {
		return nil, p.errorf(path, "%v", err)
	}
	if !ok || v == nil {
		return nil, nil
	}
	items, ok := v.([]any)
	if !ok {
		return nil, p.errorf(path, "want a list, got %T", v)
	}
	out := make([]map[string]any, len(items))
	for i, it := range items {
		if out[i], ok = it.(map[string]any); !ok {
			return nil, p.errorf(fmt.Sprintf("%s[%d]", path, i), "want an object, got %T", it)
		}
	}
	return out, nil
}

// str reads the string at keys ("" when absent).
func (p *parser) str(m map[string]any, path string, keys ...string) (string, error) {
	v, ok, err := unstructured.NestedFieldNoCopy(m, keys...)
	if err != nil {
		return "", p.errorf(path, "%v", err)
	}
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", p.errorf(path, "want a string, got %T", v)
	}
	return s, nil
}

// num reads the whole number at keys; def when absent.
func (p *parser) num(m map[string]any, def int, path string, keys ...string) (int, error) {
	v, ok, err := unstructured.NestedFieldNoCopy(m, keys...)
	if err != nil {
		return 0, p.errorf(path, "%v", err)
	}
	if !ok || v == nil {
		return def, nil
	}
	switch n := v.(type) {
	case int64:
		if n > math.MaxInt32 || n < math.MinInt32 {
			return 0, p.errorf(path, "%d is out of range", n)
		}
		return int(n), nil
	case int:
		return n, nil
	case int32:
		return int(n), nil
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > math.MaxInt32 {
			return 0, p.errorf(path, "%v is not a whole number", n)
		}
		return int(n), nil
	}
	return 0, p.errorf(path, "want a number, got %T", v)
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

func (p *parser) httpRoute(obj map[string]any, r *Route) error {
	rules, err := p.list(obj, "spec.rules", "spec", "rules")
	if err != nil {
		return err
	}
	weights := -1
	for i, rule := range rules {
		path := fmt.Sprintf("spec.rules[%d]", i)
		name, err := p.str(rule, path+".name", "name")
		if err != nil {
			return err
		}
		if name != WeightsRule {
			continue
		}
		if weights >= 0 {
			return p.errorf(path+".name", "a second rule named %s (the first is spec.rules[%d])", WeightsRule, weights)
		}
		weights = i
		refs, err := p.list(rule, path+".backendRefs", "backendRefs")
		if err != nil {
			return err
		}
		for j, ref := range refs {
			rp := fmt.Sprintf("%s.backendRefs[%d]", path, j)
			b, err := p.backendRef(ref, rp)
			if err != nil {
				return err
			}
			// The Gateway API's default weight is 1.
			if b.Weight, err = p.num(ref, 1, rp+".weight", "weight"); err != nil {
				return err
			}
			if r.Backend(b.Name) != nil {
				return p.errorf(rp+".name", "backend %s appears twice", b.Name)
			}
			r.Backends = append(r.Backends, b)
		}
	}
	if weights < 0 {
		return p.errorf("spec.rules", "no rule named %s: not a route of the release chart", WeightsRule)
	}
	for i, rule := range rules {
		path := fmt.Sprintf("spec.rules[%d]", i)
		name, _ := p.str(rule, path+".name", "name")
		switch {
		case i == weights:
			if err := p.httpMirrors(rule, path, r); err != nil {
				return err
			}
		case strings.HasSuffix(name, MatchSuffix):
			if err := p.httpMatchRule(rule, path, r); err != nil {
				return err
			}
		}
	}
	return p.httpConditions(obj, r)
}

// backendRef reads a Gateway API backendRef's Service name and port.
func (p *parser) backendRef(ref map[string]any, path string) (Backend, error) {
	var b Backend
	var err error
	if b.Name, err = p.str(ref, path+".name", "name"); err != nil {
		return b, err
	}
	if b.Name == "" {
		return b, p.errorf(path+".name", "missing")
	}
	if b.Port, err = p.num(ref, 0, path+".port", "port"); err != nil {
		return b, err
	}
	return b, nil
}

func (p *parser) httpMirrors(rule map[string]any, path string, r *Route) error {
	filters, err := p.list(rule, path+".filters", "filters")
	if err != nil {
		return err
	}
	for k, f := range filters {
		fp := fmt.Sprintf("%s.filters[%d]", path, k)
		typ, err := p.str(f, fp+".type", "type")
		if err != nil {
			return err
		}
		if typ != "RequestMirror" {
			continue
		}
		ref, ok := f["requestMirror"].(map[string]any)
		if !ok {
			return p.errorf(fp+".requestMirror", "missing")
		}
		refMap, ok := ref["backendRef"].(map[string]any)
		if !ok {
			return p.errorf(fp+".requestMirror.backendRef", "missing")
		}
		mb, err := p.backendRef(refMap, fp+".requestMirror.backendRef")
		if err != nil {
			return err
		}
		// Without percent or fraction, a RequestMirror copies every request.
		pct, err := p.num(ref, -1, fp+".requestMirror.percent", "percent")
		if err != nil {
			return err
		}
		if pct < 0 {
			pct = 100
			if _, ok := ref["fraction"]; ok {
				num, err := p.num(ref, 0, fp+".requestMirror.fraction.numerator", "fraction", "numerator")
				if err != nil {
					return err
				}
				den, err := p.num(ref, 100, fp+".requestMirror.fraction.denominator", "fraction", "denominator")
				if err != nil {
					return err
				}
				if den <= 0 {
					return p.errorf(fp+".requestMirror.fraction.denominator", "must be above 0")
				}
				pct = num * 100 / den
			}
		}
		backend(r, mb.Name, mb.Port).Mirror = pct
	}
	return nil
}

func (p *parser) httpMatchRule(rule map[string]any, path string, r *Route) error {
	refs, err := p.list(rule, path+".backendRefs", "backendRefs")
	if err != nil {
		return err
	}
	if len(refs) != 1 {
		return p.errorf(path+".backendRefs", "a match rule has one backend, not %d", len(refs))
	}
	mb, err := p.backendRef(refs[0], path+".backendRefs[0]")
	if err != nil {
		return err
	}
	matches, err := p.list(rule, path+".matches", "matches")
	if err != nil {
		return err
	}
	b := backend(r, mb.Name, mb.Port)
	for k, m := range matches {
		mp := fmt.Sprintf("%s.matches[%d].headers", path, k)
		headers, err := p.list(m, mp, "headers")
		if err != nil {
			return err
		}
		set := map[string]string{}
		for h, hd := range headers {
			hp := fmt.Sprintf("%s[%d]", mp, h)
			name, err := p.str(hd, hp+".name", "name")
			if err != nil {
				return err
			}
			if name == "" {
				return p.errorf(hp+".name", "missing")
			}
			if set[name], err = p.str(hd, hp+".value", "value"); err != nil {
				return err
			}
		}
		b.Matches = append(b.Matches, set)
	}
	return nil
}

func (p *parser) httpConditions(obj map[string]any, r *Route) error {
	parents, err := p.list(obj, "status.parents", "status", "parents")
	if err != nil {
		return err
	}
	for i, parent := range parents {
		pp := fmt.Sprintf("status.parents[%d]", i)
		name, err := p.str(parent, pp+".parentRef.name", "parentRef", "name")
		if err != nil {
			return err
		}
		ns, err := p.str(parent, pp+".parentRef.namespace", "parentRef", "namespace")
		if err != nil {
			return err
		}
		if ns != "" {
			name = ns + "/" + name
		}
		if err := p.conditions(parent, pp+".conditions", name, r, "conditions"); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) conditions(m map[string]any, path, parent string, r *Route, keys ...string) error {
	conds, err := p.list(m, path, keys...)
	if err != nil {
		return err
	}
	for j, c := range conds {
		cp := fmt.Sprintf("%s[%d]", path, j)
		cond := Condition{Parent: parent}
		for _, f := range []struct {
			dst *string
			key string
		}{{&cond.Type, "type"}, {&cond.Status, "status"}, {&cond.Reason, "reason"}, {&cond.Message, "message"}} {
			if *f.dst, err = p.str(c, cp+"."+f.key, f.key); err != nil {
				return err
			}
		}
		r.Conditions = append(r.Conditions, cond)
	}
	return nil
}

// serviceOfHost returns the Service a destination host names:
// "<svc>.<ns>.svc.cluster.local", "<svc>.<ns>" or "<svc>".
func serviceOfHost(host string) string {
	name, _, _ := strings.Cut(host, ".")
	return name
}

// destination reads an Istio destination's Service and port.
func (p *parser) destination(d map[string]any, path string) (Backend, error) {
	var b Backend
	host, err := p.str(d, path+".host", "host")
	if err != nil {
		return b, err
	}
	if host == "" {
		return b, p.errorf(path+".host", "missing")
	}
	b.Name = serviceOfHost(host)
	if b.Port, err = p.num(d, 0, path+".port.number", "port", "number"); err != nil {
		return b, err
	}
	return b, nil
}

// percent reads an Istio percentage ({value: 0..100}); 100 when absent, as
// Istio takes it.
func (p *parser) percent(m map[string]any, path string, keys ...string) (int, error) {
	v, ok, _ := unstructured.NestedFieldNoCopy(m, keys...)
	if !ok || v == nil {
		return 100, nil
	}
	pm, ok := v.(map[string]any)
	if !ok {
		return 0, p.errorf(path, "want an object, got %T", v)
	}
	raw, ok := pm["value"]
	if !ok {
		return 0, nil
	}
	switch n := raw.(type) {
	case float64:
		return int(math.Round(n)), nil
	case int64:
		return int(n), nil
	}
	return 0, p.errorf(path+".value", "want a number, got %T", raw)
}

func (p *parser) virtualService(obj map[string]any, r *Route) error {
	https, err := p.list(obj, "spec.http", "spec", "http")
	if err != nil {
		return err
	}
	weights := -1
	for i, h := range https {
		path := fmt.Sprintf("spec.http[%d]", i)
		name, err := p.str(h, path+".name", "name")
		if err != nil {
			return err
		}
		if name != WeightsRule {
			continue
		}
		if weights >= 0 {
			return p.errorf(path+".name", "a second http entry named %s (the first is spec.http[%d])", WeightsRule, weights)
		}
		weights = i
		routes, err := p.list(h, path+".route", "route")
		if err != nil {
			return err
		}
		for j, rt := range routes {
			rp := fmt.Sprintf("%s.route[%d]", path, j)
			d, ok := rt["destination"].(map[string]any)
			if !ok {
				return p.errorf(rp+".destination", "missing")
			}
			b, err := p.destination(d, rp+".destination")
			if err != nil {
				return err
			}
			// A single destination without a weight takes all traffic.
			def := 0
			if len(routes) == 1 {
				def = 100
			}
			if b.Weight, err = p.num(rt, def, rp+".weight", "weight"); err != nil {
				return err
			}
			if r.Backend(b.Name) != nil {
				return p.errorf(rp+".destination.host", "backend %s appears twice", b.Name)
			}
			r.Backends = append(r.Backends, b)
		}
	}
	if weights < 0 {
		return p.errorf("spec.http", "no http entry named %s: not a route of the release chart", WeightsRule)
	}
	for i, h := range https {
		path := fmt.Sprintf("spec.http[%d]", i)
		name, _ := p.str(h, path+".name", "name")
		switch {
		case i == weights:
			if err := p.istioMirrors(h, path, r); err != nil {
				return err
			}
		case strings.HasSuffix(name, MatchSuffix):
			if err := p.istioMatch(h, path, r); err != nil {
				return err
			}
		}
	}
	return p.conditions(obj, "status.conditions", "", r, "status", "conditions")
}

func (p *parser) istioMirrors(h map[string]any, path string, r *Route) error {
	if m, ok := h["mirror"]; ok && m != nil {
		d, ok := m.(map[string]any)
		if !ok {
			return p.errorf(path+".mirror", "want an object, got %T", m)
		}
		mb, err := p.destination(d, path+".mirror")
		if err != nil {
			return err
		}
		pct, err := p.percent(h, path+".mirrorPercentage", "mirrorPercentage")
		if err != nil {
			return err
		}
		backend(r, mb.Name, mb.Port).Mirror = pct
	}
	mirrors, err := p.list(h, path+".mirrors", "mirrors")
	if err != nil {
		return err
	}
	for k, m := range mirrors {
		mp := fmt.Sprintf("%s.mirrors[%d]", path, k)
		d, ok := m["destination"].(map[string]any)
		if !ok {
			return p.errorf(mp+".destination", "missing")
		}
		mb, err := p.destination(d, mp+".destination")
		if err != nil {
			return err
		}
		pct, err := p.percent(m, mp+".percentage", "percentage")
		if err != nil {
			return err
		}
		backend(r, mb.Name, mb.Port).Mirror = pct
	}
	return nil
}

func (p *parser) istioMatch(h map[string]any, path string, r *Route) error {
	routes, err := p.list(h, path+".route", "route")
	if err != nil {
		return err
	}
	if len(routes) != 1 {
		return p.errorf(path+".route", "a match entry has one destination, not %d", len(routes))
	}
	d, ok := routes[0]["destination"].(map[string]any)
	if !ok {
		return p.errorf(path+".route[0].destination", "missing")
	}
	mb, err := p.destination(d, path+".route[0].destination")
	if err != nil {
		return err
	}
	matches, err := p.list(h, path+".match", "match")
	if err != nil {
		return err
	}
	b := backend(r, mb.Name, mb.Port)
	for k, m := range matches {
		mp := fmt.Sprintf("%s.match[%d].headers", path, k)
		raw, ok := m["headers"]
		if !ok {
			b.Matches = append(b.Matches, map[string]string{})
			continue
		}
		headers, ok := raw.(map[string]any)
		if !ok {
			return p.errorf(mp, "want an object, got %T", raw)
		}
		set := map[string]string{}
		for name, v := range headers {
			vm, ok := v.(map[string]any)
			if !ok {
				return p.errorf(mp+"."+name, "want an object, got %T", v)
			}
			if set[name], err = p.str(vm, mp+"."+name+".exact", "exact"); err != nil {
				return err
			}
		}
		b.Matches = append(b.Matches, set)
	}
	return nil
}
