package action

import (
	"cmp"
	"context"
	"fmt"
	"time"

	helmaction "helm.sh/helm/v3/pkg/action"
)

// ReleaseRollback rolls an app's release back to an earlier revision, as
// helm rollback does.
type ReleaseRollback struct {
	cfg *Configuration
	// App names the route; its release is the route's
	// app.kubernetes.io/instance label.
	App string
	// Revision is the revision to go back to; 0 is the one before the
	// newest.
	Revision int
	// Wait waits for the release's objects to be ready.
	Wait bool
	// Timeout bounds the rollback, hooks included; 0 is DefaultTimeout.
	Timeout time.Duration
}

// NewReleaseRollback returns a ReleaseRollback action.
func NewReleaseRollback(cfg *Configuration) *ReleaseRollback {
	return &ReleaseRollback{cfg: cfg}
}

// Validate checks the fields.
func (a *ReleaseRollback) Validate() error {
	if err := validateApp(a.App); err != nil {
		return err
	}
	if a.Revision < 0 {
		return fmt.Errorf("revision %d: want at least 1 (or 0: the one before the newest)", a.Revision)
	}
	return validateTimeout(a.Timeout)
}

// RolledBack is what a rollback did.
type RolledBack struct {
	Release   string `json:"release"`
	Namespace string `json:"namespace"`
	// From is the newest revision before the rollback, To the revision
	// whose chart and values it restored, and Revision the new revision.
	From     int `json:"from"`
	To       int `json:"to"`
	Revision int `json:"revision"`
}

// Run rolls the release back.
func (a *ReleaseRollback) Run(ctx context.Context) (*RolledBack, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	cl, helm, rel, last, err := a.cfg.appRelease(ctx, a.App)
	if err != nil {
		return nil, err
	}
	out := &RolledBack{Release: rel, Namespace: cl.Namespace, From: last.Version, To: a.Revision}
	if out.To == 0 {
		out.To = last.Version - 1
	}
	if out.To < 1 {
		return nil, fmt.Errorf("release %s in namespace %s: revision %d is the first; there is none to roll back to", rel, cl.Namespace, last.Version)
	}
	if out.To >= last.Version {
		return nil, fmt.Errorf("release %s in namespace %s: revision %d is not before the newest (%d)", rel, cl.Namespace, out.To, last.Version)
	}
	rb := helmaction.NewRollback(helm)
	rb.Version, rb.Wait, rb.Timeout = out.To, a.Wait, cmp.Or(a.Timeout, DefaultTimeout)
	rerr := rb.Run(rel)
	if now, err := helmaction.NewGet(helm).Run(rel); err == nil {
		out.Revision = now.Version
	}
	if rerr != nil {
		return out, fmt.Errorf("roll back release %s in namespace %s to revision %d: %w", rel, cl.Namespace, out.To, rerr)
	}
	return out, nil
}
