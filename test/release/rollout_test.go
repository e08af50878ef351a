package release_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/test/promtest"
	"github.com/iter8-tools/iter8/test/sampleapp"
	"github.com/iter8-tools/iter8/test/testbed"
	"github.com/iter8-tools/iter8/test/traefik"
)

// TestRollout is issue 18's acceptance on the test bed, each case with a
// Traefik, sample apps and namespace of its own: the experiment chart's
// long-running Job runs the http, assess and rollout tasks every loop
// under its upgrader account; the http task sends load to each version's
// own address, and assess holds v2 to an error rate of at most 5%.
func TestRollout(t *testing.T) {
	t.Run("a good v2 steps to 100", func(t *testing.T) {
		t.Parallel()
		testGoodRollout(t)
	})
	t.Run("a bad v2 gets no traffic", func(t *testing.T) {
		t.Parallel()
		testBadRollout(t)
	})
	t.Run("v2 unready mid-rollout", func(t *testing.T) {
		t.Parallel()
		testUnreadyRollout(t)
	})
	t.Run("release rollout from the command line", func(t *testing.T) {
		t.Parallel()
		testRolloutCommand(t)
	})
	t.Run("release rollout on Prometheus metrics: a bad v2", func(t *testing.T) {
		t.Parallel()
		testPrometheusRollout(t)
	})
}

// rolloutBed is an app release of v1 and v2 (v1 100, v2 0) behind Traefik.
type rolloutBed struct {
	ns, infra string
	url       string // Traefik's, for the app
	backends  map[string]*traefik.Backend
	client    *http.Client
}

func startRolloutBed(t *testing.T, ctx context.Context, name string, v2Args ...string) *rolloutBed {
	t.Helper()
	ns := namespace(t, name)
	infra := namespace(t, name+"-infra")
	tr, backends := startTrafficBed(t, ctx, ns, infra, "app", map[string]traefik.BackendConfig{
		"v1": {}, "v2": {Args: v2Args},
	}, false)
	more := map[string]any{"gatewayAPI": map[string]any{"parentRefs": []any{map[string]any{"name": "gateway", "namespace": infra}}}}
	mustUpgrade(t, ns, "app", valuesFile(t, "gateway-api", "canary", []version{deployed("v1", 100), deployed("v2", 0)}, more), "--wait")
	client := traefik.NewClient()
	t.Cleanup(client.CloseIdleConnections)
	return &rolloutBed{ns: ns, infra: infra, url: tr.URL + "/", backends: backends, client: client}
}

// install installs the rollout experiment: loops every interval, the
// steps, and more --set values.
func (b *rolloutBed) install(t *testing.T, loops int, interval, steps string, more ...string) {
	t.Helper()
	args := []string{"install", "rollout", experimentChart(t), "-n", b.ns,
		"--set", fmt.Sprintf("tasks={http,assess,rollout},versions={v1,v2},loops=%d,interval=%s", loops, interval),
		"--set", "http.endpoints[0].version=v1,http.endpoints[0].url=" + b.backends["v1"].URL + "/",
		"--set", "http.endpoints[1].version=v2,http.endpoints[1].url=" + b.backends["v2"].URL + "/",
		"--set", "http.numRequests=100,http.qps=200",
		"--set", "assess.slos[0].metric=http/error-rate,assess.slos[0].upper=0.05,assess.slos[0].version=v2",
		"--set", "rollout.release=app,rollout.timeout=1m,rollout.steps={" + steps + "}"}
	for _, m := range more {
		args = append(args, "--set", m)
	}
	mustHelm(t, args...)
}

// v2Weight is v2's weight in the app's HTTPRoute.
func (b *rolloutBed) v2Weight(t *testing.T) int64 {
	return readRoute(t, "gateway-api", b.ns, "app").weights["app-v2"]
}

// waitWeight waits until the route gives v2 weight w and returns when it
// saw it.
func (b *rolloutBed) waitWeight(t *testing.T, ctx context.Context, w int64) time.Time {
	t.Helper()
	waitUntil(t, ctx, 2*time.Minute, fmt.Sprintf("v2 at weight %d in the route", w), func() (bool, string) {
		got := b.v2Weight(t)
		return got == w, fmt.Sprintf("v2 at %d", got)
	})
	return time.Now()
}

// split waits until Traefik applies the route's split (200 requests within
// four standard deviations), then counts 1000 requests: v2 gets w% ±3%.
func (b *rolloutBed) split(t *testing.T, ctx context.Context, w int) {
	t.Helper()
	want := map[string]int{"v1": 1000 - 10*w, "v2": 10 * w}
	eventually(t, ctx, fmt.Sprintf("Traefik sends v2 %d%%", w), func() (bool, string) {
		counts, errs, first := traefik.Count(ctx, b.client, b.url, nil, 200)
		near := errs == 0
		for v, n := range want {
			near = near && abs(counts[v]-n/5) <= 16
		}
		return near, fmt.Sprintf("%v, %d errors (%v)", counts, errs, first)
	})
	for v, n := range want {
		if n == 0 {
			delete(want, v)
		}
	}
	wantCounts(t, ctx, b.client, b.url, nil, 1000, want, 30)
}

// rolloutRevisions are the app's revisions that the rollout made, oldest
// first: their v2 weights and descriptions.
func rolloutRevisions(t *testing.T, ns string) (weights []int, descriptions []string) {
	t.Helper()
	var history []struct {
		Revision    int    `json:"revision"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal([]byte(mustHelm(t, "history", "app", "-n", ns, "-o", "json", "--max", "100").Stdout), &history); err != nil {
		t.Fatal(err)
	}
	loops := map[string]int{}
	for _, h := range history {
		if !strings.HasPrefix(h.Description, "iter8 rollout: experiment rollout") {
			continue
		}
		// The marker names the run (its start) and the loop.
		i := strings.Index(h.Description, ") loop ")
		loop, _, _ := strings.Cut(h.Description[i:], ":")
		marker := h.Description[:i] + loop
		if loops[marker]++; loops[marker] > 1 {
			t.Errorf("revision %d: a second upgrade in %s", h.Revision, marker)
		}
		weights = append(weights, revisionWeights(t, ns, h.Revision)["v2"])
		descriptions = append(descriptions, h.Description)
	}
	return weights, descriptions
}

// testGoodRollout: v2 steps 10 → 25 → 50 → 100, each step's split checked
// in 1000 requests, while a sequential client sees no failure; the Job's
// pod is killed at 25% and its retry goes on; the run ends with v2
// promoted and release status says so.
func testGoodRollout(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	b := startRolloutBed(t, ctx, "rollout-good")
	load := startLoad(ctx, b.client, b.url)
	start := time.Now()
	b.install(t, 6, "10s", "10,25,50,100")
	for _, w := range []int{10, 25, 50, 100} {
		b.waitWeight(t, ctx, int64(w))
		t.Logf("step to %d%% at %v after install", w, time.Since(start).Round(100*time.Millisecond))
		b.split(t, ctx, w)
		if w == 25 {
			// The retried pod goes on from the stored result and the
			// route: no step twice (rolloutRevisions checks).
			if err := harness.KillJobPod(b.ns, "rollout-iter8-run-1"); err != nil {
				t.Fatalf("kill the Job's pod: %v", err)
			}
			t.Logf("killed the Job's pod (kill -9) at 25%%")
		}
	}
	res := waitEnd(t, ctx, b.ns, "rollout")
	sent, failed, first := load.stop()
	t.Logf("rollout: %s after loop %d of %d (%v after install); the sequential client sent %d requests, %d failed",
		res.Stopped, res.Loop, res.Loops, time.Since(start).Round(time.Second), sent, failed)
	if failed != 0 {
		t.Errorf("the sequential client saw %d of %d requests fail, first: %v", failed, sent, first)
	}
	if ro := res.Rollout; ro == nil || ro.Outcome != experiment.RolloutPromoted || ro.Weights["v2"] != 100 {
		t.Fatalf("rollout %+v (stopped %q), want v2 promoted at 100", res.Rollout, res.Stopped)
	}
	checkResumed(t, res, true)
	weights, descriptions := rolloutRevisions(t, b.ns)
	if fmt.Sprint(weights) != "[10 25 50 100]" {
		t.Errorf("the rollout's revisions give v2 %v, want [10 25 50 100]:\n%s", weights, strings.Join(descriptions, "\n"))
	}
	status := mustRun(t, ctx, iter8Bin(), "release", "status", "app", "-n", b.ns, "--kubeconfig", env.Kubeconfig).Stdout
	for _, want := range []string{"Rollouts:", "rollout (revision 1)", "v2 at step 4 of 4 (100%), promoted", "Verdict:  passed"} {
		if !strings.Contains(status, want) {
			t.Errorf("release status lacks %q:\n%s", want, status)
		}
	}
}

// testBadRollout: v2 answers 20% of requests with errors. The load sent to
// it directly in the first loop finds it, so it never gets a step: the
// run ends rolled back within one interval, no revision is made, and every
// request through Traefik reaches v1.
func testBadRollout(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	b := startRolloutBed(t, ctx, "rollout-bad", "--error-rate", "0.2")
	start := time.Now()
	b.install(t, 6, "10s", "10,25,50,100")
	res := waitEnd(t, ctx, b.ns, "rollout")
	took := time.Since(start)
	t.Logf("bad v2: %s after loop %d (%v after install)", res.State(), res.Loop, took.Round(100*time.Millisecond))
	ro := res.Rollout
	if ro == nil || ro.Outcome != experiment.RolloutRolledBack || res.Loop != 1 ||
		!strings.Contains(ro.Reason, "failed before its first step, so it gets no traffic: SLO http/error-rate") {
		t.Fatalf("rollout %+v after loop %d, want rolled back in loop 1 before its first step", ro, res.Loop)
	}
	if took > 10*time.Second+time.Minute { // the interval, and the Job's start on the harness
		t.Errorf("the rollout ended %v after install, want within one interval of its first loop", took)
	}
	if weights, _ := rolloutRevisions(t, b.ns); len(weights) != 0 {
		t.Errorf("the rollout made revisions giving v2 %v, want none", weights)
	}
	wantCounts(t, ctx, b.client, b.url, nil, 1000, map[string]int{"v1": 1000}, 0)
}

// testUnreadyRollout: at step 2 (25%) the harness holds v2's Pods
// unready. The rollout takes v2's weight away by an upgrade at the end of
// the loop, and pauses; requests fail only between v2 turning unready and
// Traefik applying that upgrade. Ready again, v2 goes back to 25% and on
// to 50%; held unready once more past progressDeadline, the rollout rolls
// back.
func testUnreadyRollout(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	b := startRolloutBed(t, ctx, "rollout-unready")
	b.install(t, 30, "5s", "10,25,50,100", "rollout.progressDeadline=30s")
	t.Cleanup(func() { harness.HoldUnready(b.ns, "app-v2", false) })

	b.waitWeight(t, ctx, 25)
	failures := startTimedLoad(ctx, b.client, b.url)
	unready := time.Now()
	harness.HoldUnready(b.ns, "app-v2", true)
	zero := b.waitWeight(t, ctx, 0)
	t.Logf("v2 unready at step 2: its weight-0 upgrade landed %v later", zero.Sub(unready).Round(100*time.Millisecond))
	// Once Traefik sends v1 everything, nothing fails.
	b.waitAllTo(t, ctx, "v1")
	applied := time.Now()
	wantCounts(t, ctx, b.client, b.url, nil, 1000, map[string]int{"v1": 1000}, 0)
	sent, failedTimes := failures.stop()
	var before, after int
	for _, at := range failedTimes {
		switch {
		case at.Before(unready):
			t.Errorf("a request failed at %v, before v2 turned unready", at.Format(time.StampMilli))
		case at.After(applied):
			after++
		default:
			before++
		}
	}
	t.Logf("while v2 was unready: %d of %d requests failed between its turning unready and Traefik applying weight 0 (%v), %d after",
		before, sent, applied.Sub(unready).Round(100*time.Millisecond), after)
	if after != 0 {
		t.Errorf("%d requests failed after the weight-0 upgrade took effect, want none", after)
	}
	// The pause reaches the stored result after the upgrade that made it.
	waitUntil(t, ctx, 30*time.Second, "the result to say the rollout paused", func() (bool, string) {
		ro := readResult(t, b.ns, "rollout").Rollout
		return ro != nil && ro.PausedSince != nil && strings.Contains(ro.Reason, "v2 is not ready"), fmt.Sprintf("rollout %+v", ro)
	})

	harness.HoldUnready(b.ns, "app-v2", false)
	b.waitWeight(t, ctx, 25)
	b.waitWeight(t, ctx, 50)
	t.Logf("v2 ready again: back at 25%%, then on to 50%%")

	harness.HoldUnready(b.ns, "app-v2", true)
	held := time.Now()
	res := waitEnd(t, ctx, b.ns, "rollout")
	t.Logf("held unready again: %s %v later: %s", res.State(), time.Since(held).Round(100*time.Millisecond), res.Rollout.Reason)
	if ro := res.Rollout; ro.Outcome != experiment.RolloutRolledBack || !strings.Contains(ro.Reason, "longer than progressDeadline 30s") {
		t.Fatalf("rollout %+v, want rolled back past progressDeadline", ro)
	}
	if w := b.v2Weight(t); w != 0 {
		t.Errorf("v2 at %d after the rollback, want 0", w)
	}
	weights, descriptions := rolloutRevisions(t, b.ns)
	if fmt.Sprint(weights) != "[10 25 0 25 50 0]" {
		t.Errorf("the rollout's revisions give v2 %v, want [10 25 0 25 50 0]:\n%s", weights, strings.Join(descriptions, "\n"))
	}
}

// testRolloutCommand: release rollout runs the rollout from the test's
// process. Bad flags change nothing; Ctrl-C leaves the route at its step,
// not pending; run again, it goes on from there to the promotion without
// taking a step twice; objectives the candidate cannot meet exit 1 with
// nothing changed.
func testRolloutCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	b := startRolloutBed(t, ctx, "rollout-cli")
	dir := t.TempDir()
	args := func(more ...string) []string {
		return append([]string{"release", "rollout", "app", "v2", "-n", b.ns, "--kubeconfig", env.Kubeconfig,
			"--url", "v1=" + b.backends["v1"].URL + "/", "--url", "v2=" + b.backends["v2"].URL + "/",
			"--slo", "http/error-rate<=0.05", "--requests", "50", "--interval", "3s", "--timeout", "1m",
			"--spec", filepath.Join(dir, "rollout.yaml")}, more...)
	}
	revisions := func() string {
		return strings.TrimSpace(mustHelm(t, "history", "app", "-n", b.ns, "-o", "json", "--max", "100").Stdout)
	}
	before := revisions()
	for _, bad := range [][]string{
		{"--steps", "10,5,100"}, {"--interval", "0s"}, {"--slo", "http/error-rate"}, {"--url", "v3=ftp://x/"},
		{"--baseline", "v3"}, // not one of the release's versions: found on reading it
	} {
		o := testbed.Run(t, ctx, exec.CommandContext(ctx, iter8Bin(), args(bad...)...))
		if o.Code != 2 || !strings.Contains(o.Stderr, "release rollout") {
			t.Errorf("%v: want exit 2 naming the flag: %s", bad, o)
		}
	}
	if after := revisions(); after != before {
		t.Fatalf("bad flags changed the release's history:\n%s\nwant\n%s", after, before)
	}

	// Interrupted once v2 has a step.
	cmd := exec.CommandContext(ctx, iter8Bin(), args("--steps", "20,40,60,80,100")...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b.waitWeight(t, ctx, 40)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(out.String(), "interrupted; the route stays where the rollout took it") {
		t.Fatalf("interrupted: %v, want exit 1 saying where the route stays:\n%s", err, out.String())
	}
	w := b.v2Weight(t)
	st := mustHelm(t, "status", "app", "-n", b.ns, "-o", "json").Stdout
	if (w != 40 && w != 60) || !strings.Contains(st, `"status":"deployed"`) {
		t.Fatalf("after Ctrl-C: v2 at %d, release %s; want a step (40 or 60) and deployed", w, st)
	}
	t.Logf("interrupted at v2 %d%%", w)

	// Again: on from the route's step to the promotion.
	o := testbed.Run(t, ctx, exec.CommandContext(ctx, iter8Bin(), args("--steps", "20,40,60,80,100")...))
	if o.Code != 0 || !strings.Contains(o.Stdout, "v2 at step 5 of 5 (100%), promoted") {
		t.Fatalf("run again: want exit 0 and promoted: %s", o)
	}
	weights, descriptions := rolloutRevisions(t, b.ns)
	if fmt.Sprint(weights) != "[20 40 60 80 100]" {
		t.Errorf("the rollouts' revisions give v2 %v, want [20 40 60 80 100] (no step twice):\n%s", weights, strings.Join(descriptions, "\n"))
	}
	b.split(t, ctx, 100)

	// Objectives v2 cannot meet: exit 1, nothing changed.
	mustUpgrade(t, b.ns, "app", valuesFile(t, "gateway-api", "canary", []version{deployed("v1", 100), deployed("v2", 0)},
		map[string]any{"gatewayAPI": map[string]any{"parentRefs": []any{map[string]any{"name": "gateway", "namespace": b.infra}}}}), "--wait")
	before = revisions()
	o = testbed.Run(t, ctx, exec.CommandContext(ctx, iter8Bin(), args("--slo", "http/latency-p50<=0.0001")...))
	if o.Code != 1 || !strings.Contains(o.Stdout, "rolled back") {
		t.Fatalf("unmeetable objective: want exit 1, rolled back: %s", o)
	}
	if after := revisions(); after != before {
		t.Errorf("a rollout that never started changed the release's history")
	}
}

// timedLoad sends requests one after another and records when each failed
// one was sent.
type timedLoad struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	sent   int
	failed []time.Time
}

func startTimedLoad(ctx context.Context, client *http.Client, url string) *timedLoad {
	ctx, cancel := context.WithCancel(ctx)
	l := &timedLoad{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for i := 0; i < 100000 && ctx.Err() == nil; i++ {
			at := time.Now()
			err := get(ctx, client, url)
			if ctx.Err() != nil {
				return
			}
			l.mu.Lock()
			l.sent++
			if err != nil {
				l.failed = append(l.failed, at)
			}
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *timedLoad) stop() (sent int, failed []time.Time) {
	l.cancel()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent, l.failed
}

// testPrometheusRollout: release rollout judges v2 only on its real
// traffic's error rate in Prometheus (scraping the sample apps), with v2
// failing 20% of its requests. Before its first step v2 has no traffic and
// so no value, which is no failure: it takes the first step; the next loop
// sees its errors and puts the weights back, within one interval. helm
// history shows both upgrades.
func testPrometheusRollout(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	b := startRolloutBed(t, ctx, "rollout-prom", "--error-rate", "0.2")
	prom := promtest.StartT(t, "v1="+strings.TrimPrefix(b.backends["v1"].URL, "http://"), "v2="+strings.TrimPrefix(b.backends["v2"].URL, "http://"))
	if err := prom.WaitUp(ctx, 2); err != nil {
		t.Fatal(err)
	}
	load := startTimedLoad(ctx, b.client, b.url)
	defer load.stop()
	const interval = 5 * time.Second
	// As README writes it: "or vector(0)" for errors that may have no
	// series (this sample app exports its error counter from the start).
	errorRate := fmt.Sprintf(`error-rate=(sum(rate(%[1]s{version="{{.version}}",error="true"}[{{.window}}])) or vector(0)) / sum(rate(%[1]s{version="{{.version}}"}[{{.window}}]))`,
		sampleapp.MetricRequests)
	cmd := exec.CommandContext(ctx, iter8Bin(), "release", "rollout", "app", "v2", "-n", b.ns, "--kubeconfig", env.Kubeconfig,
		"--prometheus", prom.URL, "--query", errorRate, "--slo", "prometheus/error-rate<=0.05",
		"--steps", "20,50,100", "--interval", interval.String(), "--timeout", "1m", "--spec", filepath.Join(t.TempDir(), "rollout.yaml"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stepped := b.waitWeight(t, ctx, 20)
	back := b.waitWeight(t, ctx, 0)
	err := cmd.Wait()
	var exit *exec.ExitError
	// A measured rate, not a missing one ("prometheus/error-rate: no value").
	measured := regexp.MustCompile(`SLO prometheus/error-rate 0\.[0-9]+ above 0\.05`)
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(out.String(), "rolled back") || !measured.MatchString(out.String()) {
		t.Fatalf("a bad v2 on Prometheus metrics: %v, want exit 1, rolled back on a measured prometheus/error-rate above 0.05:\n%s", err, out.String())
	}
	t.Logf("v2 at 20%% for %v, then back at 0", back.Sub(stepped).Round(100*time.Millisecond))
	if back.Sub(stepped) > interval+10*time.Second { // one interval, and the rollback's upgrade (under load)
		t.Errorf("v2 held 20%% for %v, want the weights back within one interval (%v)", back.Sub(stepped), interval)
	}
	if weights, descriptions := rolloutRevisions(t, b.ns); fmt.Sprint(weights) != "[20 0]" {
		t.Errorf("the rollout's revisions give v2 %v, want [20 0] (the step, the rollback):\n%s", weights, strings.Join(descriptions, "\n"))
	}
	// Traefik applies the rolled-back route after its throttle.
	b.waitAllTo(t, ctx, "v1")
	wantCounts(t, ctx, b.client, b.url, nil, 1000, map[string]int{"v1": 1000}, 0)
}

// waitAllTo waits until Traefik sends version every request of a sample,
// without errors.
func (b *rolloutBed) waitAllTo(t *testing.T, ctx context.Context, version string) {
	t.Helper()
	eventually(t, ctx, "Traefik sends "+version+" everything", func() (bool, string) {
		counts, errs, first := traefik.Count(ctx, b.client, b.url, nil, 50)
		return errs == 0 && counts[version] == 50, fmt.Sprintf("%v, %d errors (%v)", counts, errs, first)
	})
}
