package testbed

import (
	"context"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Object is one object found in a namespace.
type Object struct {
	// Kind/Name, with the group for kinds outside the core group
	// (Job.batch/perf-iter8-run).
	ID              string
	UID             types.UID
	ResourceVersion string
	Owners          []metav1.OwnerReference
}

// Objects lists every object in namespace ns, of every namespaced resource
// type that discovery reports as listable, sorted by ID.
func (e *Env) Objects(ctx context.Context, ns string) ([]Object, error) {
	// Listing every type includes deprecated ones (v1 Endpoints), whose
	// warnings say nothing about the test.
	cfg := rest.CopyConfig(e.Config)
	cfg.WarningHandler = rest.NoWarnings{}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	lists, err := disco.ServerPreferredNamespacedResources()
	if err != nil {
		return nil, fmt.Errorf("discover namespaced resources: %w", err)
	}
	var out []Object
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			return nil, err
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			items, err := dyn.Resource(gv.WithResource(r.Name)).Namespace(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, fmt.Errorf("list %s in %s: %w", r.Name, ns, err)
			}
			kind := r.Kind
			if gv.Group != "" {
				kind += "." + gv.Group
			}
			for _, it := range items.Items {
				out = append(out, Object{
					ID: kind + "/" + it.GetName(), UID: it.GetUID(),
					ResourceVersion: it.GetResourceVersion(), Owners: it.GetOwnerReferences(),
				})
			}
		}
	}
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Uncollectable returns the IDs of objects that a garbage collector would
// not remove: those without owner references, or with an owner that still
// exists and is not itself collectable. The collector removes an object
// once every owner is gone, so collection is followed through chains
// (a Pod of a Job owned by a deleted Secret goes too).
func Uncollectable(objs []Object) []string {
	byUID := map[types.UID]Object{}
	for _, o := range objs {
		byUID[o.UID] = o
	}
	collectable := map[types.UID]bool{}
	for changed := true; changed; {
		changed = false
		for _, o := range objs {
			if collectable[o.UID] || len(o.Owners) == 0 {
				continue
			}
			gone := true
			for _, ref := range o.Owners {
				if _, exists := byUID[ref.UID]; exists && !collectable[ref.UID] {
					gone = false
					break
				}
			}
			if gone {
				collectable[o.UID], changed = true, true
			}
		}
	}
	var out []string
	for _, o := range objs {
		if !collectable[o.UID] {
			out = append(out, o.ID)
		}
	}
	return out
}
