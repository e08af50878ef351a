package action

import (
	"context"

	"github.com/iter8-tools/iter8/pkg/store"
)

// List lists the experiments in a cluster.
type List struct {
	cfg *Configuration
	// AllNamespaces lists every namespace instead of the chosen one.
	AllNamespaces bool
}

// NewList returns a List action.
func NewList(cfg *Configuration) *List {
	return &List{cfg: cfg}
}

// Run returns the experiments, sorted by namespace and name.
func (a *List) Run(ctx context.Context) ([]store.Summary, error) {
	cl, err := a.cfg.cluster()
	if err != nil {
		return nil, err
	}
	ns := cl.Namespace
	if a.AllNamespaces {
		ns = ""
	}
	return store.ListExperiments(ctx, cl.Client, ns)
}
