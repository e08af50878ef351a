package route

import (
	"fmt"
	"math"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// virtualService holds the fields of an Istio VirtualService
// (networking.istio.io/v1) that Parse reads, with Istio's JSON names. It is
// written here rather than taken from istio.io/client-go, whose types pull
// in Istio's protobuf API and its dependencies for these few fields.
type virtualService struct {
	Spec struct {
		HTTP []istioHTTP `json:"http"`
	} `json:"spec"`
	Status struct {
		Conditions []metav1.Condition `json:"conditions"`
	} `json:"status"`
}

// istioHTTP is an entry of spec.http (Istio's HTTPRoute).
type istioHTTP struct {
	Name  string `json:"name"`
	Match []struct {
		Headers map[string]struct {
			Exact string `json:"exact"`
		} `json:"headers"`
	} `json:"match"`
	Route []struct {
		Destination *istioDestination `json:"destination"`
		Weight      *int32            `json:"weight"`
	} `json:"route"`
	Mirror           *istioDestination `json:"mirror"`
	MirrorPercentage *istioPercent     `json:"mirrorPercentage"`
	Mirrors          []struct {
		Destination *istioDestination `json:"destination"`
		Percentage  *istioPercent     `json:"percentage"`
	} `json:"mirrors"`
}

type istioDestination struct {
	Host string `json:"host"`
	Port *struct {
		Number uint32 `json:"number"`
	} `json:"port"`
}

type istioPercent struct {
	Value float64 `json:"value"`
}

// percent is an Istio percentage, rounded; 100 when absent, as Istio takes
// it.
func (pc *istioPercent) percent() int {
	if pc == nil {
		return 100
	}
	return int(math.Round(pc.Value))
}

// virtualService reads the weights entry, then the mirrors of that entry and
// the match entries, then the conditions.
func (p *parser) virtualService(vs *virtualService, r *Route) error {
	https := vs.Spec.HTTP
	names := make([]string, len(https))
	for i, h := range https {
		names[i] = h.Name
	}
	weights, err := p.weightsEntry("spec.http", "http entry", names)
	if err != nil {
		return err
	}
	routes := https[weights].Route
	for j, rt := range routes {
		rp := fmt.Sprintf("spec.http[%d].route[%d]", weights, j)
		b, err := p.destination(rt.Destination, rp+".destination")
		if err != nil {
			return err
		}
		switch {
		case rt.Weight != nil:
			b.Weight = int(*rt.Weight)
		case len(routes) == 1:
			b.Weight = 100 // a single destination without a weight takes all traffic
		}
		if r.Backend(b.Name) != nil {
			return p.errorf(rp+".destination.host", "backend %s appears twice", b.Name)
		}
		r.Backends = append(r.Backends, b)
	}
	for i, h := range https {
		path := fmt.Sprintf("spec.http[%d]", i)
		switch {
		case i == weights:
			err = p.istioMirrors(h, path, r)
		case strings.HasSuffix(h.Name, MatchSuffix):
			err = p.istioMatch(h, path, r)
		}
		if err != nil {
			return err
		}
	}
	for _, c := range vs.Status.Conditions {
		r.Conditions = append(r.Conditions, condition("", c))
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
func (p *parser) destination(d *istioDestination, path string) (Backend, error) {
	switch {
	case d == nil:
		return Backend{}, p.errorf(path, "missing")
	case d.Host == "":
		return Backend{}, p.errorf(path+".host", "missing")
	}
	b := Backend{Name: serviceOfHost(d.Host)}
	if d.Port != nil {
		b.Port = int(d.Port.Number)
	}
	return b, nil
}

func (p *parser) istioMirrors(h istioHTTP, path string, r *Route) error {
	if h.Mirror != nil {
		mb, err := p.destination(h.Mirror, path+".mirror")
		if err != nil {
			return err
		}
		backend(r, mb.Name, mb.Port).Mirror = h.MirrorPercentage.percent()
	}
	for k, m := range h.Mirrors {
		mb, err := p.destination(m.Destination, fmt.Sprintf("%s.mirrors[%d].destination", path, k))
		if err != nil {
			return err
		}
		backend(r, mb.Name, mb.Port).Mirror = m.Percentage.percent()
	}
	return nil
}

func (p *parser) istioMatch(h istioHTTP, path string, r *Route) error {
	if len(h.Route) != 1 {
		return p.errorf(path+".route", "a match entry has one destination, not %d", len(h.Route))
	}
	mb, err := p.destination(h.Route[0].Destination, path+".route[0].destination")
	if err != nil {
		return err
	}
	b := backend(r, mb.Name, mb.Port)
	for _, m := range h.Match {
		set := map[string]string{}
		for name, v := range m.Headers {
			set[name] = v.Exact
		}
		b.Matches = append(b.Matches, set)
	}
	return nil
}
