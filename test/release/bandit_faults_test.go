package release_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/test/traefik"
)

// banditReward is the reward of the bandits in these tests.
const banditReward = "abn/purchases-conversion"

// TestBanditAA runs the bandit twice, in parallel, on identical versions
// (both convert 15% of their users): 2,000 users over 8 loops. Neither run
// may promote; every weight the bandit sets keeps the floors and rises by
// no more than the cap.
func TestBanditAA(t *testing.T) {
	for i := range 2 {
		name := fmt.Sprintf("aa-%d", i+1)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
			defer cancel()
			bed := startBanditBed(t, ctx, name, map[string]float64{"v1": 0.15, "v2": 0.15}, nil)
			start := time.Now()
			bed.install(t, 8, "3s", "failedLoops=continue", "bandit.minSample=100,bandit.timeout=1m")

			const users, rounds = 2000, 8
			plan := userRounds(users, rounds)
			for r := range rounds {
				if r > 0 {
					waitLoops(t, ctx, bed.ns, r, loopWait)
				}
				sendRound(t, ctx, bed.front, plan[r])
			}
			res := waitEnd(t, ctx, bed.ns, "bandit")
			b := res.Bandit
			if b == nil {
				t.Fatalf("no bandit in the result (state %s, log:\n%s)", res.State(), strings.Join(res.Log, "\n"))
			}
			t.Logf("A/A %s: %s after loop %d of %d (%v after install); weights %v, P(best) %v, users %v of %d; %s",
				name, res.State(), res.Loop, res.Loops, time.Since(start).Round(time.Second),
				b.Weights, b.ProbabilityBest, usersPerVersion(res), users, b.Reason)
			if b.Promoted != "" || res.Stopped != "" {
				t.Errorf("A/A: promoted %q (stopped %q), want no promotion of identical versions", b.Promoted, res.Stopped)
			}
			if res.Loop != res.Loops || res.Loops != 8 {
				t.Errorf("A/A: ended after loop %d of %d, want all 8 loops", res.Loop, res.Loops)
			}
			revs := banditRevisions(t, bed.ns)
			for _, r := range revs {
				if strings.Contains(r.Description, "promoted") {
					t.Errorf("A/A: revision %d promotes: %s", r.Revision, r.Description)
				}
			}
			last := checkBanditBounds(t, bed.ns, revs)
			if !maps.Equal(last, b.Weights) {
				t.Errorf("A/A: the last bandit revision has weights %v, the result %v", last, b.Weights)
			}
			t.Logf("A/A %s: %d bandit revisions", name, len(revs))
		})
	}
}

// TestBanditFaults checks what the bandit does when a version is not
// ready and when the app's gate refuses its upgrades, each on a test bed
// of its own.
func TestBanditFaults(t *testing.T) {
	t.Run("unready version gains nothing", func(t *testing.T) {
		t.Parallel()
		testUnreadyVersion(t)
	})
	t.Run("a gate refuses the upgrade/continue", func(t *testing.T) {
		t.Parallel()
		testRefusedUpgrade(t, "fault-gate-continue", true)
	})
	t.Run("a gate refuses the upgrade/stop", func(t *testing.T) {
		t.Parallel()
		testRefusedUpgrade(t, "fault-gate-stop", false)
	})
}

// testUnreadyVersion holds v2 unready once the bandit has moved: loops go
// on, the app's release gets no revision from them, and the bandit says
// v2 is not ready; once v2 is ready again, the bandit moves (or promotes)
// again.
func testUnreadyVersion(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	// A loop that started before the hold took effect may still upgrade:
	// the readiness gate then refuses it, and the failed upgrade is rolled
	// back at once (onUpgradeFailure continue), so weights never move to
	// an unready version either way. Short gate and upgrade timeouts keep
	// such a loop short.
	bed := startBanditBed(t, ctx, "fault-unready", map[string]float64{"v1": 0.1, "v2": 0.2},
		map[string]any{"gates": map[string]any{"readiness": map[string]any{"timeout": "5s"}}})
	bed.install(t, 24, "4s", "failedLoops=continue", "bandit.minSample=100,bandit.timeout=20s,bandit.onUpgradeFailure=continue")

	const users, rounds = 4000, 16
	plan := userRounds(users, rounds)
	sendRound(t, ctx, bed.front, plan[0])
	next := 1
	var before *experiment.Result // the result when the hold is set
	for {
		before = nextLoop(t, ctx, bed.ns)
		if before.Completed() || promoted(before) != "" {
			t.Fatalf("the run ended (loop %d, promoted %q) before v2 could be held", before.Loop, promoted(before))
		}
		if revs := banditRevisions(t, bed.ns); len(revs) > 0 {
			t.Logf("the bandit moved in loop %d: %s", revs[0].Loop, revs[0].Description)
			break
		}
		if next == 6 {
			t.Fatalf("no move after %d rounds of users (loop %d): %+v", next, before.Loop, before.Bandit)
		}
		sendRound(t, ctx, bed.front, plan[next])
		next++
	}

	// Hold v2 unready; no users while it is (Traefik has no ready
	// endpoint for v2, so a user of v2 would fail).
	harness.HoldUnready(bed.ns, "app-v2", true)
	t.Cleanup(func() { harness.HoldUnready(bed.ns, "app-v2", false) })
	eventually(t, ctx, "v2 not ready", func() (bool, string) {
		r := readinessOf(t, bed.ns, "v2")
		return r == "not ready", r
	})
	heldAt := time.Now()
	heldRev := newestDeployed(t, bed.ns)
	heldWeights := revisionWeights(t, bed.ns, heldRev)
	var held []experiment.LoopSummary
	var res *experiment.Result
	waitUntil(t, ctx, 3*time.Minute, "two loops while v2 is held", func() (bool, string) {
		res = readResult(t, bed.ns, "bandit")
		held = loopsBetween(res, heldAt, time.Now())
		return len(held) >= 2 || res.Completed(), fmt.Sprintf("loop %d, %d loops since the hold", res.Loop, len(held))
	})
	if len(held) < 2 {
		t.Fatalf("the run ended (%s, loop %d) before two loops ran while v2 was held", res.State(), res.Loop)
	}
	reason := res.Bandit.Reason
	releasedAt := time.Now()
	held = loopsBetween(res, heldAt, releasedAt)
	revsHeld := banditRevisions(t, bed.ns)
	nowRev := newestDeployed(t, bed.ns)
	nowWeights := revisionWeights(t, bed.ns, nowRev)
	harness.HoldUnready(bed.ns, "app-v2", false)

	heldLoops := make([]int, len(held))
	for i, h := range held {
		heldLoops[i] = h.Loop
	}
	t.Logf("v2 held unready for loops %v (weights %v at revision %d): %s", heldLoops, heldWeights, heldRev, reason)
	if !strings.Contains(reason, "v2") || !strings.Contains(reason, "not ready") {
		t.Errorf("bandit reason while v2 was held: %q, want it to say v2 is not ready", reason)
	}
	for _, r := range revsHeld {
		if slices.Contains(heldLoops, r.Loop) {
			t.Errorf("revision %d (%s) comes from loop %d, which ran while v2 was held", r.Revision, r.Status, r.Loop)
		}
	}
	if nowWeights["v2"] > heldWeights["v2"] {
		t.Errorf("v2's weight rose from %d to %d while it was held unready", heldWeights["v2"], nowWeights["v2"])
	}
	if nowRev != heldRev {
		t.Logf("the app's deployed revision went from %d to %d during the hold (a loop that started before it)", heldRev, nowRev)
	}

	// Ready again: users come back, and the bandit moves on.
	eventually(t, ctx, "v2 ready again", func() (bool, string) {
		return readinessOf(t, bed.ns, "v2") == "ready", readinessOf(t, bed.ns, "v2")
	})
	hc := traefik.NewClient()
	defer hc.CloseIdleConnections()
	eventually(t, ctx, "Traefik reaches v2 again", func() (bool, string) {
		counts, errs, first := traefik.Count(ctx, hc, bed.tr.URL+"/", map[string]string{"x-version": "v2"}, 10)
		return errs == 0 && counts["v2"] == 10, fmt.Sprintf("%v, %d errors (%v)", counts, errs, first)
	})
	for ; next < rounds; next++ {
		if readResult(t, bed.ns, "bandit").Completed() {
			break
		}
		sendRound(t, ctx, bed.front, plan[next])
		nextLoop(t, ctx, bed.ns)
	}
	res = waitEnd(t, ctx, bed.ns, "bandit")
	starts := loopStarts(res)
	var after []banditRevision
	for _, r := range banditRevisions(t, bed.ns) {
		if s, ok := starts[r.Loop]; ok && s.After(releasedAt) && r.Status != "failed" {
			after = append(after, r)
		}
	}
	t.Logf("after the release: %d bandit revisions; the run %s after loop %d of %d, promoted %q, weights %v, P(best) %v, users %v",
		len(after), res.State(), res.Loop, res.Loops, promoted(res), res.Bandit.Weights, res.Bandit.ProbabilityBest, usersPerVersion(res))
	for _, r := range after {
		t.Logf("revision %d, loop %d: %s", r.Revision, r.Loop, r.Description)
	}
	if len(after) == 0 {
		t.Errorf("the bandit neither moved nor promoted once v2 was ready again: %s", res.Bandit.Reason)
	}
}

// testRefusedUpgrade runs the bandit against an app whose SLO gate fails
// every upgrade (p50 latency under 1µs): Helm rolls each one back. With
// onUpgradeFailure continue the run goes on; with the default (stop) it
// fails. Either way the weights stay 50/50.
func testRefusedUpgrade(t *testing.T, name string, cont bool) {
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	ns, infra := namespace(t, name), namespace(t, name+"-infra")
	tr := trafficBed(t, ctx, ns, infra, map[string]float64{"v1": 0.1, "v2": 0.2})
	gates := map[string]any{"slo": map[string]any{
		"enabled": true, "url": tr.URL + "/", "numRequests": 20,
		"slos": []any{map[string]any{"metric": "http/latency-p50", "upper": 0.001}},
	}}
	bed := &banditBed{ns: ns, tr: tr}
	// --no-hooks: the failing SLO gate would refuse the install itself.
	bed.startApp(t, ctx, map[string]any{"gates": gates}, "--no-hooks")
	// Evidence before the first loop: 150 users (about 75 per version)
	// ask for a move every loop, and are too few for a promotion.
	sendRound(t, ctx, bed.front, userRounds(150, 1)[0])

	start := time.Now()
	sets := "bandit.minSample=50,bandit.timeout=30s"
	if cont {
		sets += ",bandit.onUpgradeFailure=continue"
	}
	bed.install(t, 4, "3s", "", sets)
	res := waitEnd(t, ctx, ns, "bandit")
	b := res.Bandit
	if b == nil {
		t.Fatalf("no bandit in the result (state %s, log:\n%s)", res.State(), strings.Join(res.Log, "\n"))
	}
	history := appHistory(t, ns)
	rollbacks := 0
	for _, h := range history {
		if strings.HasPrefix(h.Description, "Rollback to ") {
			rollbacks++
		}
	}
	t.Logf("%s after loop %d of %d (%v after install): %d rollbacks, weights %v, P(best) %v, users %v; reason: %s",
		res.State(), res.Loop, res.Loops, time.Since(start).Round(time.Second), rollbacks, b.Weights, b.ProbabilityBest, usersPerVersion(res), b.Reason)
	for _, h := range history {
		t.Logf("revision %d %s: %s", h.Revision, h.Status, h.Description)
	}

	newest := history[len(history)-1]
	if w := revisionWeights(t, ns, newest.Revision); w["v1"] != 50 || w["v2"] != 50 {
		t.Errorf("newest revision %d (%s) has weights %v, want 50/50", newest.Revision, newest.Status, w)
	}
	if newest.Status != "deployed" {
		t.Errorf("newest revision %d is %s, want deployed (Helm's rollback)", newest.Revision, newest.Status)
	}
	if b.Weights["v1"] != 50 || b.Weights["v2"] != 50 {
		t.Errorf("the result's weights %v, want 50/50", b.Weights)
	}
	if b.Promoted != "" {
		t.Errorf("the result says %s was promoted; every upgrade was refused", b.Promoted)
	}
	// Helm replaces a failed upgrade's description (the bandit's) with
	// its error: the failed revisions are the bandit's refused upgrades.
	failedRevs := 0
	for _, h := range history {
		if h.Status == "failed" {
			failedRevs++
		}
	}
	for _, r := range banditRevisions(t, ns) {
		t.Errorf("revision %d (loop %d) is %s: the gate should have refused it", r.Revision, r.Loop, r.Status)
	}

	if cont {
		if res.Failed() {
			t.Errorf("the run failed with onUpgradeFailure continue: %v", failedTasks(res))
		}
		if res.Loop != 4 || len(res.History) != 4 {
			t.Errorf("the run ended after loop %d (%d in history), want all 4 loops to run", res.Loop, len(res.History))
		}
		if failedRevs < 2 || rollbacks < 2 {
			t.Errorf("%d refused upgrades and %d rollbacks, want at least 2 (later loops try again)", failedRevs, rollbacks)
		}
		if !strings.HasPrefix(b.Reason, "weights unchanged: the upgrade failed") {
			t.Errorf("bandit reason %q, want it to start %q", b.Reason, "weights unchanged: the upgrade failed")
		}
		return
	}
	if res.State() != experiment.StateFailed {
		t.Errorf("run state %s, want failed (onUpgradeFailure stop)", res.State())
	}
	if res.Loop != 1 {
		t.Errorf("the run ended after loop %d, want 1: the refused upgrade stops it", res.Loop)
	}
	if failedRevs != 1 || rollbacks != 1 {
		t.Errorf("%d refused upgrades and %d rollbacks, want 1 each", failedRevs, rollbacks)
	}
	errs := failedTasks(res)
	if len(errs) != 1 || !strings.HasPrefix(errs[0], "bandit: ") || !strings.Contains(errs[0], "upgrade") {
		t.Errorf("failed tasks %q, want the bandit's, naming the upgrade", errs)
	}
}

// banditBed is an app's release (v1 and v2 at 50/50, header routing) on a
// Traefik of its own, the A/B/n service and the sample frontend.
type banditBed struct {
	ns    string
	tr    *traefik.Traefik
	svc   *abnService
	front string
	log   syncBuffer
}

// startBanditBed makes namespaces name and name-infra and starts the bed,
// with more values for the app's release.
func startBanditBed(t *testing.T, ctx context.Context, name string, conversion map[string]float64, more map[string]any) *banditBed {
	t.Helper()
	ns, infra := namespace(t, name), namespace(t, name+"-infra")
	bed := &banditBed{ns: ns, tr: trafficBed(t, ctx, ns, infra, conversion)}
	bed.startApp(t, ctx, more)
	return bed
}

// startApp installs the app's release and starts the A/B/n service and
// the frontend.
func (b *banditBed) startApp(t *testing.T, ctx context.Context, more map[string]any, flags ...string) {
	t.Helper()
	values := abnValues("x-version")
	values["gatewayAPI"] = map[string]any{"parentRefs": []any{map[string]any{"name": "gateway", "namespace": b.tr.Namespace}}}
	maps.Copy(values, more)
	mustUpgrade(t, b.ns, "app", valuesFile(t, "gateway-api", "canary", []version{deployed("v1", 50), deployed("v2", 50)}, values), append([]string{"--wait"}, flags...)...)
	b.svc = startABNService(t, ctx, b.ns)
	b.front = startFrontend(t, b.svc, b.ns+"/app", b.tr.URL, &b.log)
}

// install installs the experiment "bandit" with loops loops, one every
// interval; top and bandit are more --set values (top-level and bandit.*),
// if any. If the run has not ended when the test does, the test's end
// uninstalls it, so that its Job stops; on failure it logs the run's log.
func (b *banditBed) install(t *testing.T, loops int, interval, top, bandit string) {
	t.Helper()
	tasks := fmt.Sprintf("tasks={abn,assess,bandit},versions={v1,v2},loops=%d,interval=%s", loops, interval)
	if top != "" {
		tasks += "," + top
	}
	mustHelm(t, "install", "bandit", experimentChart(t), "-n", b.ns,
		"--set", tasks,
		"--set", "abn.endpoint=http://"+b.svc.httpAddr+",abn.application="+b.ns+"/app,abn.metrics={purchases}",
		"--set", "assess.rewards.max={"+banditReward+"}",
		"--set", "assess.comparisons[0].metric="+banditReward+",assess.comparisons[0].better=higher",
		"--set", "bandit.release=app,bandit.reward="+banditReward+","+bandit)
	t.Cleanup(func() {
		res := readResult(t, b.ns, "bandit")
		if t.Failed() && res != nil {
			t.Logf("the run's log (%s, loop %d):\n%s", res.State(), res.Loop, strings.Join(res.Log, "\n"))
			for _, h := range appHistory(t, b.ns) {
				t.Logf("app revision %d %s: %s", h.Revision, h.Status, h.Description)
			}
		}
		if res == nil || !res.Completed() {
			t.Logf("the run has not ended: uninstalling the experiment")
			helm(t, "uninstall", "bandit", "-n", b.ns)
		}
	})
}

// nextLoop waits until the run has finished one more loop than now (or
// ended) and returns its result.
func nextLoop(t *testing.T, ctx context.Context, ns string) *experiment.Result {
	t.Helper()
	n := 0
	if r := readResult(t, ns, "bandit"); r != nil {
		n = len(r.History)
	}
	waitLoops(t, ctx, ns, n+1, loopWait)
	return readResult(t, ns, "bandit")
}

// helmRevision is one entry of helm history -o json.
type helmRevision struct {
	Revision    int    `json:"revision"`
	Status      string `json:"status"`
	Description string `json:"description"`
}

func appHistory(t *testing.T, ns string) []helmRevision {
	t.Helper()
	var h []helmRevision
	if err := json.Unmarshal([]byte(mustHelm(t, "history", "app", "-n", ns, "-o", "json", "--max", "100").Stdout), &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// newestDeployed is the app's deployed revision.
func newestDeployed(t *testing.T, ns string) int {
	t.Helper()
	h := appHistory(t, ns)
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Status == "deployed" {
			return h[i].Revision
		}
	}
	t.Fatalf("the app's release has no deployed revision: %+v", h)
	return 0
}

// banditRevision is a revision of the app's release that the bandit made
// (whatever its status), with the loop that made it.
type banditRevision struct {
	helmRevision
	Loop int
}

// banditRevisions reads the app's revisions whose description is the
// bandit's: "iter8 bandit: experiment bandit run R (started S) loop N: why".
func banditRevisions(t *testing.T, ns string) []banditRevision {
	t.Helper()
	var out []banditRevision
	for _, h := range appHistory(t, ns) {
		if !strings.HasPrefix(h.Description, "iter8 bandit: experiment bandit") {
			continue
		}
		_, rest, ok := strings.Cut(h.Description, ") loop ")
		loop, _, _ := strings.Cut(rest, ":")
		var n int
		if _, err := fmt.Sscan(loop, &n); !ok || err != nil {
			t.Fatalf("revision %d: no loop in the description %q", h.Revision, h.Description)
		}
		out = append(out, banditRevision{h, n})
	}
	return out
}

// checkBanditBounds checks that every revision the bandit made leaves v1
// at its floor (10) or above and v2 at its floor (5) or above, and raises
// no weight by more than the cap (20); it returns the last weights.
func checkBanditBounds(t *testing.T, ns string, revs []banditRevision) map[string]int {
	t.Helper()
	prev := map[string]int{"v1": 50, "v2": 50}
	for _, r := range revs {
		if r.Status == "failed" {
			continue
		}
		w := revisionWeights(t, ns, r.Revision)
		t.Logf("revision %d (loop %d): %v: %s", r.Revision, r.Loop, w, r.Description)
		if w["v1"] < banditBaselineFloor || w["v2"] < banditFloor {
			t.Errorf("revision %d: weights %v below the floors (v1 %d, v2 %d)", r.Revision, w, banditBaselineFloor, banditFloor)
		}
		for v, x := range w {
			if x-prev[v] > banditMaxStep {
				t.Errorf("revision %d: %s rose from %d to %d, more than the cap %d", r.Revision, v, prev[v], x, banditMaxStep)
			}
		}
		prev = w
	}
	return prev
}

// readinessOf is version's readiness as release status says it.
func readinessOf(t *testing.T, ns, version string) string {
	t.Helper()
	for _, v := range releaseStatus(t, ns, "app").Versions {
		if v.Version == version {
			return v.Readiness
		}
	}
	return "absent"
}

// loopsBetween are the loops of the history that started after from and
// ended before to.
func loopsBetween(res *experiment.Result, from, to time.Time) []experiment.LoopSummary {
	var out []experiment.LoopSummary
	for _, h := range res.History {
		if h.StartTime.After(from) && h.EndTime.Before(to) {
			out = append(out, h)
		}
	}
	return out
}

func loopStarts(res *experiment.Result) map[int]time.Time {
	m := map[int]time.Time{}
	for _, h := range res.History {
		m[h.Loop] = h.StartTime
	}
	return m
}

// usersPerVersion is each version's sample of the reward.
func usersPerVersion(res *experiment.Result) map[string]int64 {
	m := map[string]int64{}
	for _, v := range []string{"v1", "v2"} {
		if s, ok := res.Sample(v, banditReward); ok {
			m[v] = s.N()
		}
	}
	return m
}

func promoted(res *experiment.Result) string {
	if res.Bandit == nil {
		return ""
	}
	return res.Bandit.Promoted
}

// failedTasks are the errors of the run's failed tasks.
func failedTasks(res *experiment.Result) []string {
	var out []string
	for _, tr := range res.Tasks {
		if tr.State == experiment.TaskFailed {
			out = append(out, tr.Error)
		}
	}
	return out
}
