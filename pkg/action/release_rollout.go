package action

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/route"
	"github.com/iter8-tools/iter8/pkg/store"
	"github.com/iter8-tools/iter8/pkg/task/metrics"
)

// ReleaseRollout steps an app's candidate version through weights from
// this process: an experiment of built-in load to each version's own URL
// and/or Prometheus queries of its real traffic, SLOs on the candidate
// (assess) and the rollout task, a loop every interval, with its spec and
// result in local files. It changes the release only by the rollout task's
// helm upgrades.
type ReleaseRollout struct {
	cfg *Configuration
	// App names the route; its release is the route's
	// app.kubernetes.io/instance label.
	App string
	// Version is the candidate; Baseline the version it is compared with
	// ("" is the release's first).
	Version, Baseline string
	// Steps are the candidate's weights, ascending, the last 100.
	Steps []int
	// Interval is the time from one step's start to the next's.
	Interval time.Duration
	// URLs are the versions' own addresses, by version: each loop sends
	// Requests requests to each. The candidate's is required unless
	// Prometheus is given.
	URLs     map[string]string
	Requests int
	// Prometheus is a Prometheus server's URL; each loop reads Queries
	// there for every version, over the last interval, as metrics
	// prometheus/NAME. A query is a PromQL template that sees .version and
	// .window (the interval, such as 5m0s), and selects one series.
	Prometheus string
	Queries    map[string]string
	// SLOs hold the candidate to objectives on the load's or Prometheus'
	// metrics, such as "http/error-rate<=0.01", "http/latency-p99<=250" or
	// "prometheus/error-rate<=0.01".
	SLOs []string
	// Timeout bounds each upgrade, its gates included; ProgressDeadline
	// how long the rollout may pause for an unready candidate.
	Timeout, ProgressDeadline time.Duration
	// SpecPath is where the rollout's spec is written (its result beside
	// it); Force replaces a file there that is not one of ours.
	SpecPath string
	Force    bool
}

// NewReleaseRollout returns a ReleaseRollout action with the defaults.
func NewReleaseRollout(cfg *Configuration) *ReleaseRollout {
	return &ReleaseRollout{cfg: cfg, Steps: []int{10, 25, 50, 100}, Interval: 5 * time.Minute, Requests: 200,
		Timeout: DefaultTimeout, ProgressDeadline: 10 * time.Minute}
}

// sloPattern is METRIC<=NUMBER or METRIC>=NUMBER.
var sloPattern = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_./-]*)(<=|>=)(.+)$`)

// Validate checks the fields before any cluster I/O.
func (a *ReleaseRollout) Validate() error {
	if err := validateApp(a.App); err != nil {
		return err
	}
	for _, v := range []struct{ name, value string }{{"version", a.Version}, {"baseline", a.Baseline}} {
		if v.value == "" && v.name == "baseline" {
			continue
		}
		if errs := validation.IsDNS1123Label(v.value); len(errs) > 0 {
			return fmt.Errorf("%s %q: %s", v.name, v.value, strings.Join(errs, "; "))
		}
	}
	if a.Baseline == a.Version {
		return fmt.Errorf("baseline %s: the candidate %s must differ from it", a.Baseline, a.Version)
	}
	if err := checkRolloutSteps(a.Steps); err != nil {
		return err
	}
	switch {
	case a.Interval <= 0 || a.Interval > experiment.MaxDuration:
		return fmt.Errorf("interval %v: want above 0 and at most %v", a.Interval, experiment.MaxDuration)
	case a.Timeout <= 0 || a.Timeout > experiment.MaxDuration:
		return fmt.Errorf("timeout %v: want above 0 and at most %v", a.Timeout, experiment.MaxDuration)
	case a.ProgressDeadline <= 0 || a.ProgressDeadline > experiment.MaxDuration:
		return fmt.Errorf("progress deadline %v: want above 0 and at most %v", a.ProgressDeadline, experiment.MaxDuration)
	case a.Requests < 1 || a.Requests > 1_000_000:
		return fmt.Errorf("requests %d: want 1 to 1000000 per version and loop", a.Requests)
	case a.Prometheus == "" && len(a.Queries) > 0:
		return errors.New("query: no Prometheus to send it to: give its URL (--prometheus)")
	case a.URLs[a.Version] == "" && a.Prometheus == "":
		return fmt.Errorf("url: none for the candidate %s: give VERSION=URL of each version's own address (its Service), at least the candidate's, or Prometheus queries", a.Version)
	case a.Prometheus != "" && len(a.Queries) == 0:
		return fmt.Errorf("prometheus %s: no query: give NAME=PROMQL, such as error-rate=sum(rate(errors_total{version=\"{{.version}}\"}[{{.window}}]))", a.Prometheus)
	case len(a.SLOs) == 0:
		return errors.New("slo: none: give at least one, such as http/error-rate<=0.01")
	case a.SpecPath == "":
		return errors.New("spec: empty: want the file to write the rollout's spec to")
	}
	for _, v := range slices.Sorted(maps.Keys(a.URLs)) {
		if errs := validation.IsDNS1123Label(v); len(errs) > 0 {
			return fmt.Errorf("url %s=...: version %q: %s", v, v, strings.Join(errs, "; "))
		}
		u, err := url.Parse(a.URLs[v])
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("url %s=%s: want an absolute http or https URL, such as http://app-%s.ns:8080/", v, a.URLs[v], v)
		}
	}
	if a.Prometheus != "" {
		if u, err := url.Parse(a.Prometheus); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("prometheus %s: want an absolute http or https URL, such as http://prometheus.monitoring:9090", a.Prometheus)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(a.Queries)) {
		if !queryNamePattern.MatchString(name) {
			return fmt.Errorf("query %s=...: name %q: want lowercase letters, digits and -_. (it becomes the metric prometheus/%s)", name, name, name)
		}
		if strings.TrimSpace(a.Queries[name]) == "" {
			return fmt.Errorf("query %s=: empty PromQL", name)
		}
		if err := metrics.ParseQuery(a.Queries[name]); err != nil {
			return fmt.Errorf("query %s=...: not a template: %w", name, err)
		}
	}
	for _, s := range a.SLOs {
		if _, _, _, err := parseSLO(s); err != nil {
			return err
		}
	}
	return nil
}

// checkPrometheus asks the Prometheus at base for vector(1) through the
// instant-query API that the metrics task uses.
func checkPrometheus(ctx context.Context, base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("prometheus %s: %w", base, err)
	}
	q := u.JoinPath("api/v1/query")
	q.RawQuery = url.Values{"query": {"vector(1)"}}.Encode()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, q.String(), nil)
	if err != nil {
		return fmt.Errorf("prometheus %s: %w", base, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("prometheus %s: unreachable: %w", base, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.Status != "success" {
		return fmt.Errorf("prometheus %s: GET %s answered %s, not a Prometheus query result (status success)", base, q.Redacted(), resp.Status)
	}
	return nil
}

// queryNamePattern is a metric name the metrics task accepts.
var queryNamePattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$`)

// checkRolloutSteps wants weights from 1 to 100, strictly ascending, the
// last 100.
func checkRolloutSteps(steps []int) error {
	const want = "want weights from 1 to 100, strictly ascending, the last 100, such as 10,25,50,100"
	if len(steps) == 0 || steps[len(steps)-1] != 100 {
		return fmt.Errorf("steps %v: %s", steps, want)
	}
	for i, s := range steps {
		if s < 1 || s > 100 || (i > 0 && s <= steps[i-1]) {
			return fmt.Errorf("steps %v: step %d is %d: %s", steps, i+1, s, want)
		}
	}
	return nil
}

// parseSLO reads METRIC<=NUMBER (an upper bound) or METRIC>=NUMBER.
func parseSLO(s string) (metric string, upper bool, bound float64, err error) {
	m := sloPattern.FindStringSubmatch(s)
	if m == nil {
		return "", false, 0, fmt.Errorf("slo %q: want METRIC<=NUMBER or METRIC>=NUMBER, such as http/error-rate<=0.01", s)
	}
	bound, err = strconv.ParseFloat(m[3], 64)
	if err != nil || math.IsNaN(bound) || math.IsInf(bound, 0) {
		return "", false, 0, fmt.Errorf("slo %q: %q is not a finite number", s, m[3])
	}
	return m[1], m[2] == "<=", bound, nil
}

// Rolled is where a rollout ended.
type Rolled struct {
	Release   string `json:"release"`
	Namespace string `json:"namespace"`
	// Spec and Result are the files of the rollout's experiment.
	Spec   string `json:"spec"`
	Result string `json:"result"`
	// Rollout is the rollout task's state; nil when it never ran (an
	// analysis task failed first).
	Rollout *experiment.Rollout `json:"rollout,omitempty"`
	// Stopped says why the run ended early; Failed names a failed task's
	// error.
	Stopped string `json:"stopped,omitempty"`
	Failed  string `json:"failed,omitempty"`
}

// ErrRolledBack is wrapped by the error of a rollout that rolled back or
// stopped short of 100 (interrupted, say).
var ErrRolledBack = errors.New("rollout not promoted")

// Run reads the app's release, writes the rollout's spec and runs it until
// the candidate is promoted, the rollout rolls back, or ctx ends (then the
// route stays at the last step, an upgrade in flight finished). It
// returns where the rollout ended, with an error wrapping ErrRolledBack
// unless the candidate was promoted.
func (a *ReleaseRollout) Run(ctx context.Context) (*Rolled, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	cl, _, rel, last, err := a.cfg.appRelease(ctx, a.App)
	if err != nil {
		return nil, err
	}
	versions, strategy, err := releaseVersions(last)
	if err != nil {
		return nil, fmt.Errorf("release %s in namespace %s: %w", rel, cl.Namespace, err)
	}
	if strategy != route.Canary && strategy != route.None {
		return nil, fmt.Errorf("release %s in namespace %s has strategy %q: a rollout splits traffic by weight, which needs strategy canary (or none)", rel, cl.Namespace, strategy)
	}
	names := make([]string, len(versions))
	for i, v := range versions {
		names[i], _ = v["name"].(string)
	}
	baseline := a.Baseline
	if baseline == "" && len(names) > 0 {
		baseline = names[0]
	}
	for _, v := range append([]string{a.Version, baseline}, slices.Sorted(maps.Keys(a.URLs))...) {
		if !slices.Contains(names, v) {
			return nil, fmt.Errorf("release %s in namespace %s: %w: %s is not one of its versions %s", rel, cl.Namespace, ErrUnknownVersion, v, strings.Join(names, ", "))
		}
	}
	if baseline == a.Version {
		return nil, fmt.Errorf("release %s in namespace %s: the candidate %s is its first version, the baseline: give --baseline", rel, cl.Namespace, a.Version)
	}
	spec, err := a.spec(cl.Namespace, rel, names, baseline)
	if err != nil {
		return nil, err
	}
	// The metrics task tolerates missing values (a candidate without
	// traffic has none), so a wrong URL would pass unnoticed until the
	// first step: ask once now.
	if a.Prometheus != "" {
		if err := checkPrometheus(ctx, a.Prometheus); err != nil {
			return nil, err
		}
	}
	// The tasks' own checks (metric names in --slo, say) before any file
	// is written.
	if _, err := decodeSpec(spec, a.cfg, ".", nil, nil); err != nil {
		return nil, fmt.Errorf("the rollout's experiment: %w", err)
	}
	f := &store.File{SpecPath: a.SpecPath}
	if err := checkReplace(f, a.Force, "release rollout"); err != nil {
		return nil, err
	}
	if _, err := writeSpecDroppingResult(f, append([]byte(rolloutSpecHeader), spec...)); err != nil {
		return nil, err
	}
	run := NewRun(a.cfg)
	run.Experiment = f
	res, runErr := run.Run(ctx)
	out := &Rolled{Release: rel, Namespace: cl.Namespace, Spec: a.SpecPath, Result: f.ResultPath()}
	if res != nil {
		out.Rollout, out.Stopped = res.Rollout, res.Stopped
		if i := slices.IndexFunc(res.Tasks, func(t experiment.TaskResult) bool { return t.State == experiment.TaskFailed }); i >= 0 {
			out.Failed = fmt.Sprintf("task %d (%s): %s", i, res.Tasks[i].Task, res.Tasks[i].Error)
		}
	}
	ro := out.Rollout
	switch {
	case runErr == nil && ro != nil && ro.Outcome == experiment.RolloutPromoted:
		return out, nil
	case ctx.Err() != nil:
		return out, fmt.Errorf("%w: interrupted; the route stays where the rollout took it (run again to go on)", ErrRolledBack)
	case runErr != nil && !errors.Is(runErr, experiment.ErrTaskFailed) && !errors.Is(runErr, experiment.ErrSLOsNotMet):
		return out, runErr // the result store failed, say
	case ro == nil:
		return out, fmt.Errorf("the rollout did not start: %s", cmp.Or(out.Failed, out.Stopped, "see the log above"))
	case ro.Outcome == "" && ro.Weights[a.Version] > 0:
		// The rollout task's RunFailed did not put the weights back: its
		// error is in the log.
		return out, fmt.Errorf("%w: the run failed (%s) and the weights from before the rollout were not put back: see the log above", ErrRolledBack, cmp.Or(out.Failed, out.Stopped))
	}
	return out, ErrRolledBack
}

// spec is the rollout's experiment.
func (a *ReleaseRollout) spec(ns, rel string, versions []string, baseline string) ([]byte, error) {
	var endpoints []map[string]any
	for _, v := range versions {
		if u, ok := a.URLs[v]; ok {
			endpoints = append(endpoints, map[string]any{"version": v, "url": u})
		}
	}
	var slos []map[string]any
	for _, s := range a.SLOs {
		metric, upper, bound, _ := parseSLO(s)
		slo := map[string]any{"metric": metric, "version": a.Version}
		if upper {
			slo["upper"] = bound
		} else {
			slo["lower"] = bound
		}
		slos = append(slos, slo)
	}
	var tasks []any
	if len(endpoints) > 0 {
		tasks = append(tasks, map[string]any{"task": "http", "with": map[string]any{"endpoints": endpoints, "numRequests": a.Requests}})
	}
	if a.Prometheus != "" {
		var queries []map[string]any
		for _, name := range slices.Sorted(maps.Keys(a.Queries)) {
			queries = append(queries, map[string]any{"name": name, "query": a.Queries[name]})
		}
		// A candidate without traffic has no value: that is no failure
		// before its first step (the rollout judges measured values only),
		// and a failed SLO after it.
		tasks = append(tasks, map[string]any{"task": "metrics", "with": map[string]any{
			"provider": "prometheus", "endpoint": a.Prometheus, "queries": queries,
			"window": a.Interval.String(), "allowMissing": true}})
	}
	tasks = append(tasks,
		map[string]any{"task": "assess", "with": map[string]any{"slos": slos}},
		map[string]any{"task": "rollout", "with": map[string]any{
			"release": ns + "/" + rel, "candidate": a.Version, "baseline": baseline, "steps": a.Steps,
			"timeout": a.Timeout.String(), "progressDeadline": a.ProgressDeadline.String()}})
	// Room for a pause as long as the progress deadline: its loops, and
	// the loop that takes the step again.
	loops := len(a.Steps) + 1 + int((a.ProgressDeadline+a.Interval-1)/a.Interval) + 2
	exp := map[string]any{
		"apiVersion": "iter8.tools/v1", "kind": "Experiment",
		"metadata": map[string]any{"name": "rollout"},
		"spec": map[string]any{
			"versions": versions, "loops": min(loops, experiment.MaxLoops), "interval": a.Interval.String(),
			"tasks": tasks,
		},
	}
	return yaml.Marshal(exp)
}
