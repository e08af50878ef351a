package action

import (
	"context"
	"errors"
	"fmt"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/store"
)

// Report reads an experiment's result: a release's in the cluster, or a
// local one.
type Report struct {
	cfg *Configuration
	// SpecPath is a local experiment's spec; the result is read from beside
	// it.
	SpecPath string
	// Release, when set, names an experiment in the cluster instead.
	Release string
	// Revision, with Release, picks the result of that revision; 0 is the
	// newest.
	Revision int
}

// NewReport returns a Report action.
func NewReport(cfg *Configuration) *Report {
	return &Report{cfg: cfg, SpecPath: store.DefaultSpecFile}
}

// Run returns the result; the error wraps store.ErrNoResult when there is
// none yet.
func (a *Report) Run(ctx context.Context) (*experiment.Result, error) {
	return a.cfg.result(ctx, a.SpecPath, a.Release, a.Revision)
}

// Log returns the log lines kept with an experiment's result.
type Log struct {
	cfg      *Configuration
	SpecPath string
	// Release, when set, names an experiment in the cluster instead.
	Release string
	// Revision, with Release, picks the run of that revision; 0 is the
	// newest.
	Revision int
}

// NewLog returns a Log action.
func NewLog(cfg *Configuration) *Log {
	return &Log{cfg: cfg, SpecPath: store.DefaultSpecFile}
}

// Run returns the log lines.
func (a *Log) Run(ctx context.Context) ([]string, error) {
	r, err := a.cfg.result(ctx, a.SpecPath, a.Release, a.Revision)
	switch {
	case a.Release == "":
	case err == nil && len(r.Log) == 0, errors.Is(err, store.ErrNoResult):
		// The run stored no log (it failed before it could): the Pod's
		// log, where a kubelet serves it, says why.
		cl, cerr := a.cfg.cluster()
		if cerr != nil {
			return nil, cerr
		}
		lines, perr := podLog(ctx, cl, a.Release, a.Revision)
		if perr == nil {
			return lines, nil
		}
		if err == nil {
			err = fmt.Errorf("the result of experiment %s holds no log", a.Release)
		}
		return nil, fmt.Errorf("%w; and the pod log: %w", err, perr)
	}
	if err != nil {
		return nil, err
	}
	return r.Log, nil
}

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
