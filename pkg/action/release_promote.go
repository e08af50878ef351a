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
	"helm.sh/helm/v3/pkg/release"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/iter8-tools/iter8/pkg/route"
)

// ErrUnknownVersion is wrapped by the error of a promote whose version is
// not one of the release's versions.
var ErrUnknownVersion = errors.New("unknown version")

// ReleasePromote sends all of an app's traffic to one version: the
// equivalent of helm upgrade RELEASE CHART --reuse-values with that
// version's weight 100 and every other version's 0.
type ReleasePromote struct {
	cfg *Configuration
	// App names the route; its release is the route's
	// app.kubernetes.io/instance label.
	App string
	// Version is the version to promote.
	Version string
	// Atomic rolls the upgrade back if it fails (it implies Wait).
	Atomic bool
	// Wait waits for the release's objects to be ready.
	Wait bool
	// Timeout bounds the upgrade, hooks included; 0 is DefaultTimeout.
	Timeout time.Duration
}

// NewReleasePromote returns a ReleasePromote action.
func NewReleasePromote(cfg *Configuration) *ReleasePromote {
	return &ReleasePromote{cfg: cfg}
}

// Validate checks the fields.
func (a *ReleasePromote) Validate() error {
	if err := validateApp(a.App); err != nil {
		return err
	}
	if errs := validation.IsDNS1123Label(a.Version); len(errs) > 0 {
		return fmt.Errorf("version %q: %s", a.Version, strings.Join(errs, "; "))
	}
	return validateTimeout(a.Timeout)
}

// Promoted is what a promote did.
type Promoted struct {
	Release   string `json:"release"`
	Namespace string `json:"namespace"`
	Version   string `json:"version"`
	// From is the revision that was upgraded; Revision the new one (From
	// when nothing changed).
	From     int `json:"from"`
	Revision int `json:"revision"`
	// Changes are the values that changed; none when the version already
	// had all traffic, and then there was no upgrade.
	Changes []Change `json:"changes"`
}

// Change is one value that a promote changed.
type Change struct {
	Version string `json:"version"`
	// Field is "weight" or "mirror".
	Field string `json:"field"`
	From  int    `json:"from"`
	To    int    `json:"to"`
}

// Run upgrades the release with its own chart of its last revision. The
// error wraps ErrUnknownVersion, naming the versions, when Version is not
// one of them.
func (a *ReleasePromote) Run(ctx context.Context) (*Promoted, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	cl, helm, rel, last, err := a.cfg.appRelease(ctx, a.App)
	if err != nil {
		return nil, err
	}
	versions, strategy, err := releaseVersions(last)
	if err != nil {
		return nil, fmt.Errorf("release %s in namespace %s: %w", rel, cl.Namespace, err)
	}
	out := &Promoted{Release: rel, Namespace: cl.Namespace, Version: a.Version, From: last.Version, Revision: last.Version, Changes: []Change{}}
	next, changes, err := promoteValues(versions, a.Version)
	if err != nil {
		return nil, fmt.Errorf("release %s in namespace %s: %w", rel, cl.Namespace, err)
	}
	weights := make([]int, len(next))
	for i, v := range next {
		weights[i], _ = intValue(v["weight"])
	}
	if err := route.CheckWeights(strategy, weights); err != nil {
		return nil, fmt.Errorf("release %s in namespace %s: promote %s: %w", rel, cl.Namespace, a.Version, err)
	}
	if len(changes) == 0 {
		return out, nil
	}
	up := helmaction.NewUpgrade(helm)
	up.Namespace = cl.Namespace
	up.ReuseValues = true
	up.Atomic, up.Wait, up.Timeout = a.Atomic, a.Wait, cmp.Or(a.Timeout, DefaultTimeout)
	list := make([]any, len(next))
	for i, v := range next {
		list[i] = v
	}
	res, err := up.RunWithContext(ctx, rel, last.Chart, map[string]any{"versions": list})
	if res != nil {
		out.Revision = res.Version
	}
	if err != nil {
		return out, fmt.Errorf("upgrade release %s in namespace %s: %w", rel, cl.Namespace, err)
	}
	out.Changes = changes
	return out, nil
}

// releaseVersions returns the versions value that an upgrade with
// --reuse-values starts from (the release's values, else the chart's
// defaults), and the strategy.
func releaseVersions(rel *release.Release) ([]map[string]any, route.Strategy, error) {
	pick := func(key string) any {
		if v, ok := rel.Config[key]; ok {
			return v
		}
		return rel.Chart.Values[key]
	}
	strategy, _ := pick("strategy").(string)
	raw, ok := pick("versions").([]any)
	if !ok || len(raw) == 0 {
		return nil, "", errors.New("values: no versions")
	}
	out := make([]map[string]any, len(raw))
	for i, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, "", fmt.Errorf("values: versions[%d]: want an object, got %T", i, r)
		}
		if name, _ := m["name"].(string); name == "" {
			return nil, "", fmt.Errorf("values: versions[%d].name: missing", i)
		}
		out[i] = m
	}
	return out, route.Strategy(strategy), nil
}

// promoteValues returns a copy of versions with version's weight 100 (and
// no mirror of its own) and every other version's weight 0, and the
// changes.
func promoteValues(versions []map[string]any, version string) ([]map[string]any, []Change, error) {
	names := make([]string, len(versions))
	for i, v := range versions {
		names[i] = v["name"].(string)
	}
	if !slices.Contains(names, version) {
		return nil, nil, fmt.Errorf("%w %q: the versions are %s", ErrUnknownVersion, version, strings.Join(names, ", "))
	}
	next := make([]map[string]any, len(versions))
	var changes []Change
	for i, v := range versions {
		c := maps.Clone(v)
		want := 0
		if names[i] == version {
			want = 100
			if m, _ := intValue(c["mirror"]); m > 0 {
				// A version that serves traffic gets no mirror.
				c["mirror"] = 0
				changes = append(changes, Change{Version: names[i], Field: "mirror", From: m, To: 0})
			}
		}
		if w, _ := intValue(c["weight"]); w != want || c["weight"] == nil {
			changes = append(changes, Change{Version: names[i], Field: "weight", From: w, To: want})
		}
		c["weight"] = want
		next[i] = c
	}
	return next, changes, nil
}
