package route

import (
	"encoding/json"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// httpRoute reads the weights rule, then the mirrors of that rule and the
// match rules (which may name backends the weights rule does not), then
// the conditions of each parent Gateway. mirroringAnnotation is the route's
// AnnotationTraefikMirroring, "" when it has none.
func (p *parser) httpRoute(hr *gatewayv1.HTTPRoute, mirroringAnnotation string, r *Route) error {
	rules := hr.Spec.Rules
	names := make([]string, len(rules))
	for i, rule := range rules {
		if rule.Name != nil {
			names[i] = string(*rule.Name)
		}
	}
	weights, err := p.weightsEntry("spec.rules", "rule", names)
	if err != nil {
		return err
	}
	var mirroring *traefikMirroring
	for j, ref := range rules[weights].BackendRefs {
		rp := fmt.Sprintf("spec.rules[%d].backendRefs[%d]", weights, j)
		var b Backend
		if isTraefikService(ref.BackendObjectReference) {
			if mirroring != nil {
				return p.errorf(rp, "a second TraefikService; the chart renders one")
			}
			if mirroring, err = p.traefikMirroring(mirroringAnnotation, rp); err != nil {
				return err
			}
			b = Backend{Name: mirroring.Service, Port: mirroring.Port}
		} else if b, err = p.backendRef(ref.BackendObjectReference, rp); err != nil {
			return err
		}
		b.Weight = 1 // the Gateway API's default
		if ref.Weight != nil {
			b.Weight = int(*ref.Weight)
		}
		if r.Backend(b.Name) != nil {
			return p.errorf(rp+".name", "backend %s appears twice", b.Name)
		}
		r.Backends = append(r.Backends, b)
	}
	if mirroring != nil {
		for k, m := range mirroring.Mirrors {
			if m.Service == "" || m.Percent < 0 || m.Percent > 100 {
				return p.errorf(fmt.Sprintf("metadata.annotations[%s].mirrors[%d]", AnnotationTraefikMirroring, k),
					"want a service and a percent from 0 to 100, got %+v", m)
			}
			backend(r, m.Service, m.Port).Mirror = m.Percent
		}
	}
	for i, rule := range rules {
		path := fmt.Sprintf("spec.rules[%d]", i)
		switch {
		case i == weights:
			err = p.httpMirrors(rule.Filters, path, r)
		case strings.HasSuffix(names[i], MatchSuffix):
			err = p.httpMatchRule(rule, path, r)
		}
		if err != nil {
			return err
		}
	}
	for _, parent := range hr.Status.Parents {
		name := string(parent.ParentRef.Name)
		if ns := parent.ParentRef.Namespace; ns != nil && *ns != "" {
			name = string(*ns) + "/" + name
		}
		for _, c := range parent.Conditions {
			r.Conditions = append(r.Conditions, condition(name, c))
		}
	}
	return nil
}

// traefikMirroring is the JSON of AnnotationTraefikMirroring.
type traefikMirroring struct {
	TraefikService string `json:"traefikService"`
	Service        string `json:"service"`
	Port           int    `json:"port"`
	Mirrors        []struct {
		Service string `json:"service"`
		Port    int    `json:"port"`
		Percent int    `json:"percent"`
	} `json:"mirrors"`
}

func isTraefikService(ref gatewayv1.BackendObjectReference) bool {
	return ref.Kind != nil && *ref.Kind == "TraefikService"
}

// traefikMirroring reads the annotation that says what the TraefikService
// at path stands for.
func (p *parser) traefikMirroring(annotation, path string) (*traefikMirroring, error) {
	field := "metadata.annotations[" + AnnotationTraefikMirroring + "]"
	if annotation == "" {
		return nil, p.errorf(path, "a TraefikService backend needs the annotation %s that says what it stands for", AnnotationTraefikMirroring)
	}
	var m traefikMirroring
	if err := json.Unmarshal([]byte(annotation), &m); err != nil {
		return nil, p.errorf(field, "not JSON {traefikService, service, port, mirrors}: %v", err)
	}
	if m.Service == "" {
		return nil, p.errorf(field+".service", "missing: the serving version's Service")
	}
	return &m, nil
}

func condition(parent string, c metav1.Condition) Condition {
	return Condition{Parent: parent, Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message}
}

// backendRef reads a Gateway API backendRef's Service name and port.
func (p *parser) backendRef(ref gatewayv1.BackendObjectReference, path string) (Backend, error) {
	if ref.Name == "" {
		return Backend{}, p.errorf(path+".name", "missing")
	}
	b := Backend{Name: string(ref.Name)}
	if ref.Port != nil {
		b.Port = int(*ref.Port)
	}
	return b, nil
}

func (p *parser) httpMirrors(filters []gatewayv1.HTTPRouteFilter, path string, r *Route) error {
	for k, f := range filters {
		if f.Type != gatewayv1.HTTPRouteFilterRequestMirror {
			continue
		}
		fp := fmt.Sprintf("%s.filters[%d].requestMirror", path, k)
		m := f.RequestMirror
		if m == nil {
			return p.errorf(fp, "missing")
		}
		mb, err := p.backendRef(m.BackendRef, fp+".backendRef")
		if err != nil {
			return err
		}
		// Without percent or fraction, a RequestMirror copies every request.
		pct := 100
		switch {
		case m.Percent != nil:
			pct = int(*m.Percent)
		case m.Fraction != nil:
			den := int32(100)
			if m.Fraction.Denominator != nil {
				den = *m.Fraction.Denominator
			}
			if den <= 0 {
				return p.errorf(fp+".fraction.denominator", "must be above 0")
			}
			pct = int(m.Fraction.Numerator) * 100 / int(den)
		}
		backend(r, mb.Name, mb.Port).Mirror = pct
	}
	return nil
}

func (p *parser) httpMatchRule(rule gatewayv1.HTTPRouteRule, path string, r *Route) error {
	if len(rule.BackendRefs) != 1 {
		return p.errorf(path+".backendRefs", "a match rule has one backend, not %d", len(rule.BackendRefs))
	}
	mb, err := p.backendRef(rule.BackendRefs[0].BackendObjectReference, path+".backendRefs[0]")
	if err != nil {
		return err
	}
	b := backend(r, mb.Name, mb.Port)
	for k, m := range rule.Matches {
		set := map[string]string{}
		for h, hd := range m.Headers {
			if hd.Name == "" {
				return p.errorf(fmt.Sprintf("%s.matches[%d].headers[%d].name", path, k, h), "missing")
			}
			set[string(hd.Name)] = hd.Value
		}
		b.Matches = append(b.Matches, set)
	}
	return nil
}
