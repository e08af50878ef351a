package action

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	helmaction "helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/route"
)

// releases gives the bandit task (experiment.Releases) the weights of app
// releases in the cluster the configuration reaches.
type releases struct {
	cfg *Configuration
}

// releases returns what the bandit task changes releases through.
func (c *Configuration) releases() (experiment.Releases, error) {
	if c.Cluster == nil {
		return nil, ErrNeedsCluster
	}
	return &releases{cfg: c}, nil
}

// in returns the cluster and Helm's configuration in namespace.
func (r *releases) in(namespace string) (*Cluster, *helmaction.Configuration, error) {
	cl, err := r.cfg.cluster()
	if err != nil {
		return nil, nil, err
	}
	c := *cl
	c.Namespace = namespace
	helm, err := newHelmConfig(r.cfg, helmSettingsOf(r.cfg), &c)
	if err != nil {
		return nil, nil, err
	}
	// Init takes the namespace for the release's storage only; the kube
	// client would build the chart's objects in the getter's namespace
	// (the flags' or the Pod's) when the release lives in another.
	if kc, ok := helm.KubeClient.(*kube.Client); ok {
		kc.Namespace = namespace
	}
	return &c, helm, nil
}

// Weights reads the release's newest revision and its versions' readiness
// by the readiness gate's rule.
func (r *releases) Weights(ctx context.Context, namespace, rel string) (experiment.ReleaseState, error) {
	cl, helm, err := r.in(namespace)
	if err != nil {
		return experiment.ReleaseState{}, err
	}
	last, err := lastRelease(helm, rel, namespace)
	if err != nil {
		return experiment.ReleaseState{}, err
	}
	versions, strategy, err := releaseVersions(last)
	if err != nil {
		return experiment.ReleaseState{}, err
	}
	st := experiment.ReleaseState{Revision: last.Version, Strategy: string(strategy)}
	if last.Info != nil {
		st.Status, st.Pending, st.Description = string(last.Info.Status), last.Info.Status.IsPending(), last.Info.Description
		st.Updated = last.Info.LastDeployed.Time
	}
	st.Step = last.Labels[experiment.StepLabel]
	if last.Version > 1 {
		prev, err := helm.Releases.Get(rel, last.Version-1)
		if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
			return experiment.ReleaseState{}, fmt.Errorf("release %s in namespace %s: revision %d: %w", rel, namespace, last.Version-1, err)
		}
		if prev != nil {
			st.PreviousStep = prev.Labels[experiment.StepLabel]
		}
	}
	ready, err := readinessOf(ctx, cl, appOf(last.Name, last.Config, last.Chart.Values))
	if err != nil {
		return experiment.ReleaseState{}, fmt.Errorf("release %s in namespace %s: %w", rel, namespace, err)
	}
	for _, v := range versions {
		name := v["name"].(string)
		w, _ := intValue(v["weight"])
		rv := experiment.ReleaseVersion{Name: name, Weight: w, Reason: "not a backend of the app's route"}
		if s, ok := ready[name]; ok {
			rv.Ready, rv.Reason = s.Readiness == Ready, s.Reason
		}
		st.Versions = append(st.Versions, rv)
	}
	return st, nil
}

// appOf is the app's name: the release values' app.name, else the
// release's name (the chart's default).
func appOf(rel string, config, defaults map[string]any) string {
	for _, vals := range []map[string]any{config, defaults} {
		if app, ok := vals["app"].(map[string]any); ok {
			if name, _ := app["name"].(string); name != "" {
				return name
			}
		}
	}
	return rel
}

// readinessOf reads the readiness of each version of app's route.
func readinessOf(ctx context.Context, cl *Cluster, app string) (map[string]VersionStatus, error) {
	rt, err := findRoute(ctx, cl, app)
	if err != nil {
		return nil, err
	}
	w, err := readWorkloads(ctx, cl, app)
	if err != nil {
		return nil, err
	}
	out := map[string]VersionStatus{}
	for _, b := range rt.Backends {
		v := VersionStatus{Backend: b.Name, Version: w.versionOf(app, b.Name)}
		if err := w.readiness(ctx, cl, &v); err != nil {
			return nil, fmt.Errorf("version %s: %w", v.Version, err)
		}
		out[v.Version] = v
	}
	return out, nil
}

// SetWeights upgrades the release to the change's weights, atomically (a
// failed upgrade, such as a gate that refuses, is rolled back by Helm),
// after checking that nothing changed since the change's revision.
func (r *releases) SetWeights(ctx context.Context, namespace, rel string, change experiment.WeightChange) (int, error) {
	revision, weights := change.Revision, change.Weights
	_, helm, err := r.in(namespace)
	if err != nil {
		return 0, err
	}
	last, err := lastRelease(helm, rel, namespace)
	if err != nil {
		return 0, err
	}
	switch {
	case last.Version != revision:
		return 0, fmt.Errorf("release %s in namespace %s is at revision %d, not %d as read: it changed meanwhile, so nothing is changed", rel, namespace, last.Version, revision)
	case last.Info == nil || last.Info.Status != release.StatusDeployed:
		// A failed revision's values are not what the route carries, and
		// Helm would reuse the last deployed revision's under them.
		return 0, fmt.Errorf("release %s in namespace %s is not deployed (status %s): fix or roll it back first", rel, namespace, statusOf(last))
	}
	versions, strategy, err := releaseVersions(last)
	if err != nil {
		return 0, fmt.Errorf("release %s in namespace %s: %w", rel, namespace, err)
	}
	next, list, err := withWeights(versions, weights)
	if err != nil {
		return 0, fmt.Errorf("release %s in namespace %s: %w", rel, namespace, err)
	}
	if err := route.CheckWeights(strategy, next); err != nil {
		return 0, fmt.Errorf("release %s in namespace %s: weights %v: %w", rel, namespace, next, err)
	}
	up := helmaction.NewUpgrade(helm)
	// Not --atomic, nor --wait: a weight change leaves the Deployments
	// as they are, and the readiness gate checked the versions before
	// anything changed; Helm's atomic rollback would wait for them and,
	// with a version that has just turned unready, time out and leave the
	// release failed. A failed upgrade is rolled back below, at once.
	up.Namespace, up.ReuseValues = namespace, true
	// Helm's own timeout bounds the hooks (the gates).
	up.Timeout = cmp.Or(change.Timeout, DefaultTimeout)
	up.Description = change.Description
	if change.Step != "" {
		up.Labels = map[string]string{experiment.StepLabel: change.Step}
	}
	res, err := up.RunWithContext(ctx, rel, last.Chart, map[string]any{"versions": list})
	if err != nil {
		return 0, r.rollBack(helm, namespace, rel, revision, up.Timeout, fmt.Errorf("upgrade release %s in namespace %s: %w", rel, namespace, err))
	}
	return res.Version, nil
}

// rollBack restores revision after a failed upgrade (whose new revision
// Helm marked failed), without waiting for the versions, and returns the
// upgrade's error, with the rollback's when that failed too.
func (r *releases) rollBack(helm *helmaction.Configuration, namespace, rel string, revision int, timeout time.Duration, upgradeErr error) error {
	last, err := lastRelease(helm, rel, namespace)
	if err != nil {
		return fmt.Errorf("%w; and reading it after: %w", upgradeErr, err)
	}
	if last.Version == revision && last.Info != nil && last.Info.Status == release.StatusDeployed {
		return upgradeErr // nothing was recorded: nothing to undo
	}
	rb := helmaction.NewRollback(helm)
	rb.Version, rb.Timeout = revision, timeout
	if err := rb.Run(rel); err != nil {
		return fmt.Errorf("%w; rolling back to revision %d failed too: %w", upgradeErr, revision, err)
	}
	return fmt.Errorf("%w (rolled back to revision %d)", upgradeErr, revision)
}

// RollBackPending rolls the release back from revision, left pending by a
// process that died in the middle of an upgrade, to the revision before.
func (r *releases) RollBackPending(ctx context.Context, namespace, rel string, revision int, timeout time.Duration) error {
	_, helm, err := r.in(namespace)
	if err != nil {
		return err
	}
	last, err := lastRelease(helm, rel, namespace)
	if err != nil {
		return err
	}
	if last.Version != revision || last.Info == nil || !last.Info.Status.IsPending() {
		return fmt.Errorf("release %s in namespace %s is at revision %d (%s), not %d pending: it changed meanwhile, so nothing is changed", rel, namespace, last.Version, statusOf(last), revision)
	}
	if revision < 2 {
		return fmt.Errorf("release %s in namespace %s: revision %d is pending and the first: there is none to roll back to", rel, namespace, revision)
	}
	rb := helmaction.NewRollback(helm)
	rb.Version, rb.Wait, rb.Timeout = revision-1, true, cmp.Or(timeout, DefaultTimeout)
	if err := rb.Run(rel); err != nil {
		return fmt.Errorf("roll back release %s in namespace %s to revision %d: %w", rel, namespace, revision-1, err)
	}
	return nil
}

// withWeights returns the versions value with each version's weight from
// weights (which must name exactly the versions), and the weights in order.
func withWeights(versions []map[string]any, weights map[string]int) ([]int, []any, error) {
	names := make([]string, len(versions))
	for i, v := range versions {
		names[i] = v["name"].(string)
	}
	if !slices.Equal(slices.Sorted(slices.Values(names)), slices.Sorted(maps.Keys(weights))) {
		return nil, nil, fmt.Errorf("versions %s, weights for %s: want the same versions", strings.Join(names, ", "), strings.Join(slices.Sorted(maps.Keys(weights)), ", "))
	}
	ws := make([]int, len(versions))
	list := make([]any, len(versions))
	for i, v := range versions {
		c := maps.Clone(v)
		c["weight"] = weights[names[i]]
		ws[i], list[i] = weights[names[i]], c
	}
	return ws, list, nil
}

// statusOf is a revision's status for messages.
func statusOf(r *release.Release) string {
	if r.Info == nil {
		return "unknown"
	}
	return string(r.Info.Status)
}
