// Package upgrade is what the tasks that move an app release's weights by
// helm upgrade (bandit, rollout) share: finding the release, reading its
// weights as percentages, marking each loop's upgrade so that a retried
// attempt of the loop does not upgrade twice, and rolling back an upgrade
// that an earlier attempt left pending when its process died.
package upgrade

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/route"
)

// Target is one task's app release and how it upgrades it.
type Target struct {
	// Task names the task in errors, logs and revision descriptions.
	Task string
	// Namespace ("" is the experiment's) and Release name the release.
	Namespace, Release string
	// Timeout bounds each upgrade, its gates included.
	Timeout time.Duration
}

// Conn is a Target connected to the cluster.
type Conn struct {
	Target
	Releases experiment.Releases
	// Name is the release as namespace/name, for messages.
	Name string
}

// Connect finds the release's namespace and the cluster's releases.
func (t Target) Connect(env *experiment.Env) (*Conn, error) {
	if env.Releases == nil || env.Kube == nil {
		return nil, fmt.Errorf("%s: no cluster: the %s changes a release's weights by helm upgrade; run the experiment in the cluster", t.Task, t.Task)
	}
	if t.Namespace == "" {
		_, def, err := env.Kube()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Task, err)
		}
		t.Namespace = def
	}
	rels, err := env.Releases()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Task, err)
	}
	return &Conn{Target: t, Releases: rels, Name: t.Namespace + "/" + t.Release}, nil
}

// State reads the release's newest revision; a revision that an earlier
// attempt of this run left pending is rolled back first (see recover).
func (c *Conn) State(ctx context.Context, env *experiment.Env) (experiment.ReleaseState, error) {
	state, err := c.Releases.Weights(ctx, c.Namespace, c.Release)
	if err != nil {
		return state, fmt.Errorf("%s: release %s: %w", c.Task, c.Name, err)
	}
	// This run's own upgrade (of a loop, of a watch between loops, after a
	// failure) left pending by a process that died: its label is this
	// run's and was set by that upgrade, not copied by Helm from an
	// earlier revision into someone else's.
	if state.Pending && strings.HasPrefix(state.Step, runLabel(env.Result)) && state.Step != state.PreviousStep {
		return c.recover(ctx, env, state)
	}
	return state, nil
}

// Ours says whether the release's newest revision is one this run made or
// read last (revision): anything else is someone else's change, which a
// task must leave alone.
func (c *Conn) Ours(s experiment.ReleaseState, r *experiment.Result, revision int) bool {
	return s.Revision == revision || strings.HasPrefix(s.Description, c.runMarker(r))
}

// Read reads the release's newest revision (see State) and refuses one
// that an operation holds, that is not deployed, that does not split
// traffic by weight, or whose versions are not the experiment's: the task
// then stops and changes nothing. It returns the state with its weights
// as percentages and its versions' readiness, by name.
func (c *Conn) Read(ctx context.Context, env *experiment.Env, versions []string) (experiment.ReleaseState, map[string]int, map[string]bool, error) {
	state, err := c.State(ctx, env)
	if err != nil {
		return state, nil, nil, err
	}
	if err := c.CheckDeployed(state); err != nil {
		return state, nil, nil, err
	}
	if state.Strategy != string(route.Canary) && state.Strategy != string(route.None) {
		return state, nil, nil, fmt.Errorf("%s: release %s has strategy %q: the %s splits traffic by weight, which needs strategy canary (or none)", c.Task, c.Name, state.Strategy, c.Task)
	}
	names := make([]string, len(state.Versions))
	for i, v := range state.Versions {
		names[i] = v.Name
	}
	if !slices.Equal(slices.Sorted(slices.Values(names)), slices.Sorted(slices.Values(versions))) {
		return state, nil, nil, fmt.Errorf("%s: release %s has versions %s, the experiment %s: the versions changed, so the %s stops and changes nothing",
			c.Task, c.Name, strings.Join(names, ", "), strings.Join(versions, ", "), c.Task)
	}
	weights, ready, err := Percentages(state)
	if err != nil {
		return state, nil, nil, fmt.Errorf("%s: release %s: %w", c.Task, c.Name, err)
	}
	return state, weights, ready, nil
}

// CheckDeployed refuses a release that an operation holds or that is not
// deployed: the task then changes nothing.
func (c *Conn) CheckDeployed(s experiment.ReleaseState) error {
	switch {
	case s.Pending:
		return fmt.Errorf("%s: release %s: an operation on it is in progress (status %s): the weights are left as they are", c.Task, c.Name, s.Status)
	case s.Status != "deployed":
		return fmt.Errorf("%s: release %s is %s, not deployed: fix or roll it back; the weights are left as they are", c.Task, c.Name, s.Status)
	}
	return nil
}

// Set upgrades the release to weights, describing the new revision with
// this loop's marker and why, and returns the new revision.
func (c *Conn) Set(ctx context.Context, env *experiment.Env, revision int, weights map[string]int, why string) (int, error) {
	return c.SetMarked(ctx, c.Marks(env.Result, "", ""), revision, weights, why)
}

// SetOrAfter is Set; when the upgrade fails it also returns the release's
// revision and weights after it (Helm rolled the failed upgrade back to a
// new revision), or nil weights when they cannot be read.
func (c *Conn) SetOrAfter(ctx context.Context, env *experiment.Env, revision int, weights map[string]int, why string) (int, map[string]int, error) {
	rev, err := c.Set(ctx, env, revision, weights, why)
	if err == nil {
		return rev, weights, nil
	}
	now, rerr := c.Releases.Weights(ctx, c.Namespace, c.Release)
	if rerr != nil {
		return 0, nil, err
	}
	after, _, perr := Percentages(now)
	if perr != nil {
		return 0, nil, err
	}
	return now.Revision, after, err
}

// Marks are what an upgrade's revision carries to tell whose it is.
type Marks struct {
	// Marker starts the description; Label is the StepLabel.
	Marker, Label string
}

// Marks are the marks of this loop's own upgrade, or with what and tag
// (such as "watch" and "w") those of an upgrade made beside it, which
// DoneEarlier then does not take for the loop's and whose label differs.
func (c *Conn) Marks(r *experiment.Result, what, tag string) Marks {
	m := Marks{Marker: c.marker(r), Label: StepLabel(r)}
	if what != "" {
		m.Marker += " (" + what + ")"
		m.Label += "-" + tag
	}
	return m
}

// SetMarked is Set with marks read earlier: for an upgrade made while
// other tasks change the result.
func (c *Conn) SetMarked(ctx context.Context, m Marks, revision int, weights map[string]int, why string) (int, error) {
	// An upgrade in flight is not cut short by an interrupt (the pod's
	// SIGTERM): a half-done one would leave the release pending, which
	// refuses every later move. Helm's own timeout bounds it.
	return c.Releases.SetWeights(context.WithoutCancel(ctx), c.Namespace, c.Release, experiment.WeightChange{
		Revision: revision, Weights: weights, Timeout: c.Timeout, Description: m.Marker + ": " + why, Step: m.Label,
	})
}

// DoneEarlier returns why this loop's upgrade was made, when the release's
// newest revision is it: an earlier attempt of the loop (a retried pod)
// made it, and upgrading again would take two steps in one loop.
func (c *Conn) DoneEarlier(s experiment.ReleaseState, r *experiment.Result) (string, bool) {
	return strings.CutPrefix(s.Description, c.marker(r)+": ")
}

// marker names a loop of a run in the description of the revision that
// the loop's upgrade makes.
func (c *Conn) marker(r *experiment.Result) string {
	return fmt.Sprintf("%s loop %d", c.runMarker(r), r.Loop)
}

// runMarker starts the description of every upgrade of a run. The run's
// start tells runs apart whose revisions repeat (an experiment
// uninstalled and installed again).
func (c *Conn) runMarker(r *experiment.Result) string {
	return fmt.Sprintf("iter8 %s: experiment %s run %d (started %d)", c.Task, r.Experiment, r.Revision, r.StartTime.Unix())
}

// StepLabel is the StepLabel of a loop's upgrade: a hash of the
// experiment's name, the run's revision and start, and the loop (a label
// value holds at most 63 characters). Helm keeps a release's labels in
// later revisions, so only this loop's own label marks its upgrade.
func StepLabel(r *experiment.Result) string {
	return fmt.Sprintf("%s%d", runLabel(r), r.Loop)
}

// runLabel starts the StepLabel of every upgrade of a run.
func runLabel(r *experiment.Result) string {
	h := fnv.New32a()
	h.Write([]byte(r.Experiment))
	return fmt.Sprintf("%08x-%d-%d-", h.Sum32(), r.Revision, r.StartTime.Unix())
}

// recover rolls back an upgrade that an earlier attempt of this run left
// pending when its process died, once the upgrade is older than twice the
// timeout (until then that attempt may still be running, as on a node cut
// off from the cluster), and returns the release's state after.
func (c *Conn) recover(ctx context.Context, env *experiment.Env, state experiment.ReleaseState) (experiment.ReleaseState, error) {
	if wait := time.Until(state.Updated.Add(2 * c.Timeout)); wait > 0 {
		env.Logger().Info(c.Task+": an earlier attempt's upgrade is pending; waiting before rolling it back", "release", c.Name, "revision", state.Revision, "wait", wait.Round(time.Second).String())
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return state, ctx.Err()
		}
	}
	if err := c.Releases.RollBackPending(context.WithoutCancel(ctx), c.Namespace, c.Release, state.Revision, c.Timeout); err != nil {
		return state, fmt.Errorf("%s: release %s: revision %d, which an earlier attempt of this run left pending: %w", c.Task, c.Name, state.Revision, err)
	}
	env.Logger().Info(c.Task+": rolled back the upgrade an earlier attempt left pending", "release", c.Name, "revision", state.Revision)
	now, err := c.Releases.Weights(ctx, c.Namespace, c.Release)
	if err != nil {
		return state, fmt.Errorf("%s: release %s: %w", c.Task, c.Name, err)
	}
	return now, nil
}

// Percentages are the release's weights as whole percentages (the chart
// takes relative weights) and its versions' readiness, by name.
func Percentages(s experiment.ReleaseState) (map[string]int, map[string]bool, error) {
	ws := make([]int, len(s.Versions))
	for i, v := range s.Versions {
		ws[i] = v.Weight
	}
	pc, err := route.Percentages(ws)
	if err != nil {
		return nil, nil, err
	}
	weights, ready := map[string]int{}, map[string]bool{}
	for i, v := range s.Versions {
		weights[v.Name], ready[v.Name] = pc[i], v.Ready
	}
	return weights, ready, nil
}

// Only gives version all traffic.
func Only(versions []string, version string) map[string]int {
	w := make(map[string]int, len(versions))
	for _, v := range versions {
		w[v] = 0
	}
	w[version] = 100
	return w
}

// Format writes weights in the versions' order: "v1 90, v2 10".
func Format(versions []string, w map[string]int) string {
	parts := make([]string, len(versions))
	for i, v := range versions {
		parts[i] = v + " " + strconv.Itoa(w[v])
	}
	return strings.Join(parts, ", ")
}

// ParseRelease reads a task's release field, NAME or NAMESPACE/NAME;
// namespace "" is the experiment's.
func ParseRelease(s string, p *field.Path) (namespace, name string, errs field.ErrorList) {
	if s == "" {
		return "", "", field.ErrorList{field.Required(p, "the app's release (charts/release), as NAME or NAMESPACE/NAME")}
	}
	namespace, name, found := strings.Cut(s, "/")
	if !found {
		namespace, name = "", s
	} else if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return "", "", field.ErrorList{field.Invalid(p, s, "namespace: "+strings.Join(errs, "; "))}
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 || len(name) > 53 {
		return "", "", field.ErrorList{field.Invalid(p, s, "a Helm release name: at most 53 lowercase letters, digits, '-' and '.'")}
	}
	return namespace, name, nil
}
