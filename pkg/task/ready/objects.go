package ready

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/kube"
)

// Object is a Kubernetes object that the task waits for.
type Object struct {
	// Resource is the object's API group, version and resource (plural).
	Resource schema.GroupVersionResource
	Name     string
	// Namespace is empty for the experiment's namespace: the default
	// namespace of the Kubernetes connection.
	Namespace string
	// Conditions must each hold (see the package doc); empty means that the
	// object only has to exist.
	Conditions []string
	// Endpoints, only for core v1 Services, asks that the Service also have
	// a ready endpoint: one whose conditions.ready is true or unset, in one
	// of its EndpointSlices (discovery.k8s.io/v1, labelled
	// kubernetes.io/service-name=<name>).
	Endpoints bool
}

// ID names the object as resource.group namespace/name, such as
// "deployments.apps default/app"; ns is the namespace of an object that
// names none (empty: the name alone).
func (o Object) ID(ns string) string {
	if o.Namespace != "" {
		ns = o.Namespace
	}
	gr := o.Resource.GroupResource().String()
	if ns == "" {
		return gr + " " + o.Name
	}
	return gr + " " + ns + "/" + o.Name
}

type objectInputs struct {
	Group      string   `json:"group"`
	Version    string   `json:"version"`
	Resource   string   `json:"resource"`
	Name       string   `json:"name"`
	Namespace  string   `json:"namespace,omitempty"`
	Conditions []string `json:"conditions,omitempty"`
	Endpoints  bool     `json:"endpoints,omitempty"`
}

var (
	// serviceResource is the only resource that takes endpoints.
	serviceResource = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	// endpointSliceResource is where a Service's endpoints are listed.
	endpointSliceResource = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
)

// serviceNameLabel names the Service of an EndpointSlice.
const serviceNameLabel = "kubernetes.io/service-name"

// conditionType is what metav1.Condition allows in a condition's type:
// an optional DNS-subdomain prefix and a name such as Available.
var conditionType = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$`)

// decodeObjects validates the objects, reporting every problem with its path.
func decodeObjects(in []json.RawMessage, path *field.Path) ([]Object, field.ErrorList) {
	var errs field.ErrorList
	var out []Object
	seen := map[string]int{}
	for i, raw := range in {
		p := path.Index(i)
		var oi objectInputs
		if derrs := experiment.DecodeStrict(raw, &oi, p); len(derrs) > 0 {
			errs = append(errs, derrs...)
			continue
		}
		o := Object{
			Resource:   schema.GroupVersionResource{Group: oi.Group, Version: oi.Version, Resource: oi.Resource},
			Name:       oi.Name,
			Namespace:  oi.Namespace,
			Conditions: oi.Conditions,
			Endpoints:  oi.Endpoints,
		}
		switch {
		case strings.Contains(oi.Group, "/"):
			errs = append(errs, field.Invalid(p.Child("group"), oi.Group, "want the API group alone, such as apps; the version goes in version"))
		case oi.Group != "":
			for _, msg := range validation.IsDNS1123Subdomain(oi.Group) {
				errs = append(errs, field.Invalid(p.Child("group"), oi.Group, msg+` (the core group is "")`))
			}
		}
		errs = append(errs, checkName(oi.Version, p.Child("version"), validation.IsDNS1035Label, "an API version such as v1")...)
		switch {
		case oi.Resource == "":
			errs = append(errs, field.Required(p.Child("resource"), "a resource (lowercase plural) such as deployments"))
		case len(validation.IsDNS1123Label(oi.Resource)) > 0:
			errs = append(errs, field.Invalid(p.Child("resource"), oi.Resource, "want a resource: the lowercase plural of the kind, such as deployments"))
		}
		errs = append(errs, checkName(oi.Name, p.Child("name"), validation.IsDNS1123Subdomain, "the object's name")...)
		errs = append(errs, checkName(oi.Namespace, p.Child("namespace"), validation.IsDNS1123Label, "")...)
		if oi.Endpoints && o.Resource != serviceResource {
			errs = append(errs, field.Invalid(p.Child("endpoints"), oi.Endpoints,
				`only for Services (group "", version v1, resource services): other objects have no EndpointSlices`))
		}
		conds := map[string]bool{}
		for j, c := range oi.Conditions {
			cp := p.Child("conditions").Index(j)
			switch {
			case c == "":
				errs = append(errs, field.Required(cp, "a condition type such as Available or Ready"))
			case len(c) > 316 || !conditionType.MatchString(c):
				errs = append(errs, field.Invalid(cp, c, "want a condition type such as Available or Ready"))
			case conds[c]:
				errs = append(errs, field.Duplicate(cp, c))
			}
			conds[c] = true
		}
		key := oi.Group + "/" + oi.Resource + "/" + oi.Namespace + "/" + oi.Name
		if j, dup := seen[key]; dup && oi.Name != "" {
			errs = append(errs, field.Duplicate(p, fmt.Sprintf("%s (as objects[%d])", o.ID(""), j)))
		} else {
			seen[key] = i
		}
		out = append(out, o)
	}
	return out, errs
}

// checkName checks a name field with one of apimachinery's validation
// functions; required describes an empty one ("" when it may be empty).
func checkName(v string, p *field.Path, valid func(string) []string, required string) field.ErrorList {
	switch {
	case v == "" && required != "":
		return field.ErrorList{field.Required(p, required)}
	case v == "":
		return nil
	}
	var errs field.ErrorList
	for _, msg := range valid(v) {
		errs = append(errs, field.Invalid(p, v, msg))
	}
	return errs
}

// state is what a check found: what the object lacks ("" when it is
// ready), and whether that is an error on the way to the object rather than
// an answer about it.
type state struct {
	lack      string
	transient bool
	// answered says that the API server answered; unreachable, set with
	// transient, that no connection to it could be made (see failed).
	answered, unreachable bool
}

// check reads the object and says what it lacks. The error is for failures
// that waiting cannot mend, such as a missing permission.
func (o Object) check(ctx context.Context, kube experiment.ObjectReader, ns string) (state, error) {
	if o.Namespace != "" {
		ns = o.Namespace
	}
	obj, err := kube.Get(ctx, o.Resource, ns, o.Name)
	switch {
	case err == nil:
		lack := unmet(obj, o.Conditions)
		if !o.Endpoints {
			return state{lack: lack, answered: true}, nil
		}
		st, err := o.checkEndpoints(ctx, kube, ns)
		st.answered = true // to the Get, whatever the list met
		if err != nil || st.transient {
			return st, err
		}
		if lack != "" && st.lack != "" {
			st.lack = lack + "; " + st.lack
		} else {
			st.lack += lack
		}
		return st, nil
	case apierrors.IsNotFound(err):
		var se apierrors.APIStatus
		if errors.As(err, &se) {
			if d := se.Status().Details; d == nil || d.Name == "" {
				// The API server knows no such resource: its CRD may be
				// missing, or is still being installed.
				return state{lack: fmt.Sprintf("the API server serves no resource %s in %s", o.Resource.Resource, o.Resource.GroupVersion()), answered: true}, nil
			}
		}
		return state{lack: "not found", answered: true}, nil
	default:
		return failed(err, "get "+o.ID(ns), "")
	}
}

// failed says what a failed Get or List (op) means. A missing permission
// or a request that the API server refuses is an error: waiting cannot
// mend it. Anything else (the API server is busy or unreachable, the
// deadline passed) may pass, so it is a transient state whose lack is
// prefix and the error; or, when no connection to the API server could be
// made (refused, no such host, a failed TLS handshake: client-go's
// *url.Error) rather than an answer, a client-side limit or the deadline,
// that the cluster is unreachable.
func failed(err error, op, prefix string) (state, error) {
	var se apierrors.APIStatus
	var ue *url.Error
	switch {
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err), apierrors.IsBadRequest(err),
		apierrors.IsInvalid(err), apierrors.IsMethodNotSupported(err), apierrors.IsNotAcceptable(err):
		return state{}, fmt.Errorf("%s: %w", op, err)
	case errors.As(err, &se):
		return state{lack: prefix + err.Error(), transient: true, answered: true}, nil
	case !errors.As(err, &ue), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return state{lack: prefix + err.Error(), transient: true}, nil
	}
	// The server alone: the request's path says nothing more, and its
	// query could hold anything.
	server := "the configured server"
	if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
		server = u.Scheme + "://" + u.Host
	}
	return state{lack: fmt.Sprintf("Kubernetes cluster at %s unreachable: %v", server, ue.Err), transient: true, unreachable: true}, nil
}

// checkEndpoints lists the Service's EndpointSlices and says what they lack
// for the Service to have a ready endpoint; errors as in check.
func (o Object) checkEndpoints(ctx context.Context, kube experiment.ObjectReader, ns string) (state, error) {
	list, err := kube.List(ctx, endpointSliceResource, ns, serviceNameLabel+"="+o.Name)
	switch {
	case err == nil:
		return state{lack: unready(list.Items)}, nil
	case apierrors.IsNotFound(err):
		// Served since Kubernetes 1.21; an API server without it answers
		// 404 to the list.
		return state{lack: "the API server serves no resource endpointslices in discovery.k8s.io/v1"}, nil
	default:
		return failed(err, "list the EndpointSlices of "+o.ID(ns), "list its EndpointSlices: ")
	}
}

// unready says what a Service's EndpointSlices lack for it to have a ready
// endpoint ("" when one is ready), counted as kube.ReadyEndpoints counts.
func unready(list []unstructured.Unstructured) string {
	if len(list) == 0 {
		return "no EndpointSlice"
	}
	typed := make([]discoveryv1.EndpointSlice, 0, len(list))
	for _, u := range list {
		var s discoveryv1.EndpointSlice
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &s); err != nil {
			return fmt.Sprintf("EndpointSlice %s unreadable: %v", u.GetName(), err)
		}
		typed = append(typed, s)
	}
	ready, total := kube.ReadyEndpoints(typed)
	switch {
	case ready > 0:
		return ""
	case total == 0:
		return fmt.Sprintf("no endpoints in %s", plural(len(list), "EndpointSlice"))
	}
	return fmt.Sprintf("0 of %s ready", plural(total, "endpoint"))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// unmet says what obj lacks for each of conditions to hold, joined by "; ";
// "" when they all hold. A condition holds when status.conditions has it
// with status "True" and both the object's status.observedGeneration and
// the condition's own observedGeneration, where present, are at least
// metadata.generation. Malformed status fields count as missing.
func unmet(obj *unstructured.Unstructured, conditions []string) string {
	if len(conditions) == 0 {
		return ""
	}
	content := obj.UnstructuredContent()
	generation, hasGeneration := intField(content, "metadata", "generation")
	observed, hasObserved := intField(content, "status", "observedGeneration")
	raw, _, _ := unstructured.NestedFieldNoCopy(content, "status", "conditions")
	list, _ := raw.([]any)

	var lacks []string
	for _, want := range conditions {
		var cond map[string]any
		for _, item := range list {
			if c, ok := item.(map[string]any); ok && c["type"] == want {
				cond = c
				break
			}
		}
		if cond == nil {
			lacks = append(lacks, "condition "+want+" is missing")
			continue
		}
		status, _ := cond["status"].(string)
		if status != string(metav1.ConditionTrue) {
			if status == "" {
				status = "not set"
			}
			lacks = append(lacks, "condition "+want+" is "+status+why(cond))
			continue
		}
		if !hasGeneration {
			continue
		}
		if hasObserved && observed < generation {
			lacks = append(lacks, fmt.Sprintf("condition %s is True but stale (status.observedGeneration %d < metadata.generation %d)", want, observed, generation))
			continue
		}
		if g, ok := intField(cond, "observedGeneration"); ok && g < generation {
			lacks = append(lacks, fmt.Sprintf("condition %s is True but stale (its observedGeneration %d < metadata.generation %d)", want, g, generation))
		}
	}
	return strings.Join(lacks, "; ")
}

// why gives a condition's reason and message, shortened, in parentheses.
func why(cond map[string]any) string {
	reason, _ := cond["reason"].(string)
	msg, _ := cond["message"].(string)
	const maxMsg = 200
	if utf8.RuneCountInString(msg) > maxMsg {
		msg = string([]rune(msg)[:maxMsg]) + "…"
	}
	switch {
	case reason != "" && msg != "":
		return " (" + reason + ": " + msg + ")"
	case reason != "" || msg != "":
		return " (" + reason + msg + ")"
	}
	return ""
}

// intField reads an integer field of decoded JSON, whatever number type the
// decoder chose.
func intField(m map[string]any, fields ...string) (int64, bool) {
	v, found, err := unstructured.NestedFieldNoCopy(m, fields...)
	if !found || err != nil {
		return 0, false
	}
	return kube.WholeNumber(v)
}
