package release_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/iter8-tools/iter8/abn/client"
	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/test/abnfrontend"
	"github.com/iter8-tools/iter8/test/sampleapp"
	"github.com/iter8-tools/iter8/test/testbed"
	"github.com/iter8-tools/iter8/test/traefik"
)

// The bandit's bounds in these tests: the chart's defaults.
const (
	banditFloor, banditBaselineFloor, banditMaxStep = 5, 10, 20
)

// TestBanditThroughTraefik is issue 17's acceptance run: 5,000 users (1 to
// 5 requests each) go through the sample frontend, which asks the A/B/n
// service for their version and reaches it through Traefik; v2 converts
// 20% of its users, v1 10%. The experiment chart's long-running Job runs
// the abn, assess and bandit tasks every loop under its upgrader account:
// weights move toward v2 by helm upgrade of the app's release (readiness
// gate included), within the cap and the floors, until v2 is promoted and
// Traefik sends it every request. On the way the A/B/n service is down for
// a loop (the loop fails naming it, no weight moves, the next loop
// recovers) and the Job's pod is killed as an upgrade begins (the retried
// pod rolls back the revision left pending, and resumes).
func TestBanditThroughTraefik(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 9*time.Minute)
	defer cancel()
	ns := namespace(t, "bandit")
	infra := namespace(t, "bandit-infra")
	tr := trafficBed(t, ctx, ns, infra, map[string]float64{"v1": 0.1, "v2": 0.2})
	more := abnValues("x-version")
	more["gatewayAPI"] = map[string]any{"parentRefs": []any{map[string]any{"name": "gateway", "namespace": infra}}}
	mustUpgrade(t, ns, "app", valuesFile(t, "gateway-api", "canary", []version{deployed("v1", 50), deployed("v2", 50)}, more), "--wait")

	svc := startABNService(t, ctx, ns)
	var log syncBuffer
	front := startFrontend(t, svc, ns+"/app", tr.URL, &log)

	// A kill that lands in an upgrade leaves the release pending, and the
	// retried pod rolls it back only once it is twice the bandit's timeout
	// old (until then the killed attempt might still be running): the
	// loops after the kill may take that long.
	const banditTimeout = 15 * time.Second
	start := time.Now()
	mustHelm(t, "install", "bandit", experimentChart(t), "-n", ns,
		"--set", "tasks={abn,assess,bandit},versions={v1,v2},loops=40,interval=3s,failedLoops=continue",
		"--set", "abn.endpoint=http://"+svc.httpAddr+",abn.application="+ns+"/app,abn.metrics={purchases}",
		"--set", "assess.rewards.max={abn/purchases-conversion}",
		"--set", "assess.comparisons[0].metric=abn/purchases-conversion,assess.comparisons[0].better=higher",
		"--set", "bandit.release=app,bandit.reward=abn/purchases-conversion,bandit.minSample=100,bandit.timeout="+banditTimeout.String())
	t.Logf("helm install of the bandit returned in %v", time.Since(start).Round(time.Millisecond))
	if res := readResult(t, ns, "bandit"); res != nil && res.Completed() {
		t.Fatalf("helm install waited for the experiment's end: it must return at once (a long-running Job)")
	}
	upgraderRBACGolden(t, ns)

	// Rounds of requests, one after each loop; every user joins in one
	// round and comes back in the next ones.
	const users, rounds = 5000, 20
	plan := userRounds(users, rounds)
	const killAfter = 3
	killed := make(chan killResult, 1)
	for r := range rounds {
		if r > 0 {
			within := loopWait
			if r > killAfter {
				// Twice the timeout before the rollback, then the
				// rollback and the loop's upgrade, each within it.
				within += 4 * banditTimeout
			}
			waitLoops(t, ctx, ns, r, within)
		}
		if r == killAfter {
			// The Job's pod is killed in the bandit's next upgrade, while
			// the rounds go on (they give the evidence for it).
			killCtx, stopKiller := context.WithCancel(ctx)
			defer stopKiller()
			go func() { killed <- killInUpgrade(killCtx, ns, "bandit-iter8-run-1") }()
		}
		sendRound(t, ctx, front, plan[r])
		if r == 1 {
			abnOutage(t, ctx, ns, svc)
		}
	}
	res := waitEnd(t, ctx, ns, "bandit")
	t.Logf("bandit: %s after loop %d of %d (%v after install)", res.Stopped, res.Loop, res.Loops, time.Since(start).Round(time.Second))
	checkKilledInUpgrade(t, ns, killed)
	if b := res.Bandit; b == nil || b.Promoted != "v2" || b.Weights["v2"] != 100 {
		t.Fatalf("bandit %+v, stopped %q: want v2 promoted", res.Bandit, res.Stopped)
	}
	checkComparison(t, res)
	checkResumed(t, res, true)
	checkRevisions(t, ns)

	// Every request without a header now reaches v2.
	hc := traefik.NewClient()
	defer hc.CloseIdleConnections()
	eventually(t, ctx, "Traefik sends v2 everything", func() (bool, string) {
		counts, errs, first := traefik.Count(ctx, hc, tr.URL+"/", nil, 50)
		return errs == 0 && counts["v2"] == 50, fmt.Sprintf("%v, %d errors (%v)", counts, errs, first)
	})
	wantCounts(t, ctx, hc, tr.URL+"/", nil, 1000, map[string]int{"v2": 1000}, 0)
	checkSticky(t, &log, res)

	status := mustRun(t, ctx, iter8Bin(), "release", "status", "app", "-n", ns, "--kubeconfig", env.Kubeconfig).Stdout
	for _, want := range []string{"Bandits:", "bandit", "promoted v2"} {
		if !strings.Contains(status, want) {
			t.Errorf("release status lacks %q:\n%s", want, status)
		}
	}
}

// abnService is `iter8 abn serve`, run by the test on loopback.
type abnService struct {
	grpcAddr, httpAddr string
	args               []string
	mu                 sync.Mutex
	cmd                *exec.Cmd
	// clients are the frontends' SDK clients, which start waits for after
	// a restart: gRPC reconnects after its backoff, not at once.
	clients []*client.Client
}

// startABNService runs the A/B/n service for namespace ns with a bbolt
// ledger, until the test ends.
func startABNService(t *testing.T, ctx context.Context, ns string) *abnService {
	t.Helper()
	s := &abnService{grpcAddr: freeAddr(t), httpAddr: freeAddr(t)}
	s.args = []string{"abn", "serve", "--grpc-address", s.grpcAddr, "--http-address", s.httpAddr,
		"--ledger", "bolt:" + filepath.Join(t.TempDir(), "abn.db"), "--watch-namespace", ns, "--kubeconfig", env.Kubeconfig}
	s.start(t, ctx)
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *abnService) start(t *testing.T, ctx context.Context) {
	t.Helper()
	var out syncBuffer
	cmd := exec.Command(iter8Bin(), s.args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	eventually(t, ctx, "the A/B/n service ready", func() (bool, string) {
		resp, err := http.Get("http://" + s.httpAddr + "/readyz")
		if err != nil {
			return false, err.Error() + "\n" + out.String()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status + "\n" + out.String()
	})
	s.mu.Lock()
	clients := slices.Clone(s.clients)
	s.mu.Unlock()
	for _, c := range clients {
		eventually(t, ctx, "the frontend's A/B/n client connected again", func() (bool, string) {
			a := c.Lookup(ctx, "reconnect-probe")
			return a.Err == nil, fmt.Sprint(a.Err)
		})
	}
}

func (s *abnService) stop(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startFrontend serves the sample frontend for app, logging each request.
func startFrontend(t *testing.T, svc *abnService, app, gateway string, log *syncBuffer) string {
	t.Helper()
	c, err := client.New(client.Options{Target: svc.grpcAddr, Application: app, Baseline: "v1",
		LookupTimeout: 2 * time.Second, MaxBackoff: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	svc.mu.Lock()
	svc.clients = append(svc.clients, c)
	svc.mu.Unlock()
	srv := httptest.NewServer(abnfrontend.Handler(abnfrontend.Options{
		ABN: c, Gateway: gateway, PurchaseHeader: sampleapp.PurchaseHeader, Log: log, HTTP: traefik.NewClient(),
	}))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return srv.URL
}

// userRounds plans each user's requests: users join evenly over the
// rounds and make 1 to 5 requests, one per round from their first (the
// last round takes what is left).
func userRounds(users, rounds int) [][]string {
	r := rand.New(rand.NewPCG(17, 17))
	plan := make([][]string, rounds)
	for i := range users {
		u := fmt.Sprintf("user-%04d", i)
		first := i * rounds / users
		for k := range 1 + r.IntN(5) {
			round := min(first+k, rounds-1)
			plan[round] = append(plan[round], u)
		}
	}
	return plan
}

// sendRound sends one request per entry through the frontend, 16 at a
// time, and fails the test on any answer but 200.
func sendRound(t *testing.T, ctx context.Context, front string, round []string) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	work := make(chan string)
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for u := range work {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front+"/buy?user="+url.QueryEscape(u)+"&amount=1", nil)
				resp, err := hc.Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, u+": "+err.Error())
					mu.Unlock()
				}
			}
		})
	}
	for _, u := range round {
		work <- u
	}
	close(work)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed, first: %s", len(failures), len(round), failures[0])
	}
}

// abnOutage stops the A/B/n service until a loop fails for it, checks
// that the failure names the service's endpoint and that the weights did
// not move, and starts it again.
func abnOutage(t *testing.T, ctx context.Context, ns string, svc *abnService) {
	t.Helper()
	before := readResult(t, ns, "bandit")
	svc.stop(t)
	var failed *experiment.LoopSummary
	eventually(t, ctx, "a loop failed while the A/B/n service was down", func() (bool, string) {
		r := readResult(t, ns, "bandit")
		for i := range r.History {
			if h := &r.History[i]; h.Loop > before.Loop && h.Failed {
				failed = h
				return true, ""
			}
		}
		return r.Completed(), fmt.Sprintf("loop %d", r.Loop)
	})
	if failed == nil {
		t.Fatal("the experiment ended before the outage showed")
	}
	r := readResult(t, ns, "bandit")
	endpoint := "GET http://" + svc.httpAddr + "/v1/summary"
	if !strings.Contains(strings.Join(r.Log, "\n"), endpoint) {
		t.Errorf("the failed loop's log does not name %s:\n%s", endpoint, strings.Join(r.Log, "\n"))
	}
	if desc := mustHelm(t, "history", "app", "-n", ns, "-o", "json", "--max", "100").Stdout; strings.Contains(desc, fmt.Sprintf(") loop %d:", failed.Loop)) {
		t.Errorf("the app's release has a revision of the failed loop %d:\n%s", failed.Loop, desc)
	}
	t.Logf("A/B/n service down: loop %d failed naming %s; weights unchanged", failed.Loop, endpoint)
	svc.start(t, ctx)
}

// checkComparison wants v2 judged better on conversion, with an interval
// above 0.
func checkComparison(t *testing.T, res *experiment.Result) {
	t.Helper()
	for _, c := range res.Comparisons {
		if c.Verdict != experiment.VerdictBetter || c.Low == nil || *c.Low <= 0 {
			t.Errorf("%s: %s (%s), want better with an interval above 0", c.Metric, c.Verdict, c.Reason)
			continue
		}
		t.Logf("%s: v2 %s by %+.4f [%+.4f, %+.4f], from %d and %d users", c.Metric, c.Verdict, *c.Effect, *c.Low, *c.High, c.BaselineCount, c.CandidateCount)
	}
	if len(res.Comparisons) != 1 {
		t.Errorf("%d comparisons, want 1", len(res.Comparisons))
	}
}

// checkResumed wants the loops in the history once each, in order, and,
// when the Job's pod was killed, the retried pod's resume in the log.
func checkResumed(t *testing.T, res *experiment.Result, killed bool) {
	t.Helper()
	for i := 1; i < len(res.History); i++ {
		if res.History[i].Loop <= res.History[i-1].Loop {
			t.Errorf("history loops %d then %d: a loop ran twice or the run started over", res.History[i-1].Loop, res.History[i].Loop)
		}
	}
	if killed && !strings.Contains(strings.Join(res.Log, "\n"), "resuming the stored run") {
		t.Errorf("the Job's pod was killed, but no retried pod resumed:\n%s", strings.Join(res.Log, "\n"))
	}
}

// checkRevisions reads the app's revisions that the bandit made: each move
// raises no weight by more than the cap and leaves every version at its
// floor or above; the last is the promotion.
func checkRevisions(t *testing.T, ns string) {
	t.Helper()
	history := appHistory(t, ns)
	prev := map[string]int{"v1": 50, "v2": 50}
	moves := 0
	loops := map[string]int{} // revisions per loop: a retried loop must not move twice
	for _, h := range history {
		if !strings.HasPrefix(h.Description, "iter8 bandit: experiment bandit") {
			continue
		}
		loop, _, _ := strings.Cut(h.Description[strings.Index(h.Description, ") loop ")+2:], ":")
		if loops[loop]++; loops[loop] > 1 {
			t.Errorf("revision %d: a second upgrade in %s", h.Revision, loop)
		}
		w := revisionWeights(t, ns, h.Revision)
		t.Logf("revision %d: %v: %s", h.Revision, w, h.Description)
		if strings.Contains(h.Description, ": promoted ") {
			if w["v2"] != 100 || w["v1"] != 0 {
				t.Errorf("revision %d promotes with weights %v, want v2 100", h.Revision, w)
			}
			prev = w
			continue
		}
		moves++
		for v, x := range w {
			if x-prev[v] > banditMaxStep {
				t.Errorf("revision %d: %s rose from %d to %d, more than the cap %d", h.Revision, v, prev[v], x, banditMaxStep)
			}
		}
		if w["v1"] < banditBaselineFloor || w["v2"] < banditFloor {
			t.Errorf("revision %d: weights %v below the floors (baseline %d, others %d)", h.Revision, w, banditBaselineFloor, banditFloor)
		}
		if w["v2"] < prev["v2"] {
			t.Logf("revision %d: v2's weight fell from %d to %d", h.Revision, prev["v2"], w["v2"])
		}
		prev = w
	}
	if prev["v2"] != 100 {
		t.Errorf("the last bandit revision leaves %v, want v2 promoted", prev)
	}
	// Helm keeps each move's step label with the revision, which lets a
	// retried attempt know an upgrade left pending as its own.
	labelled, err := env.Clientset.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "owner=helm,name=app," + experiment.StepLabel})
	if err != nil || len(labelled.Items) < moves+1 {
		t.Errorf("%d of the app's revisions carry %s (%v), want at least the bandit's %d", len(labelled.Items), experiment.StepLabel, err, moves+1)
	}
	t.Logf("%d weight moves before the promotion", moves)
}

// revisionWeights reads the weights of one revision of the app's release.
func revisionWeights(t *testing.T, ns string, revision int) map[string]int {
	t.Helper()
	var values struct {
		Versions []struct {
			Name   string `json:"name"`
			Weight int    `json:"weight"`
		} `json:"versions"`
	}
	out := mustHelm(t, "get", "values", "app", "-n", ns, "--all", "-o", "json", "--revision", fmt.Sprint(revision)).Stdout
	if err := json.Unmarshal([]byte(out), &values); err != nil {
		t.Fatal(err)
	}
	w := map[string]int{}
	for _, v := range values.Versions {
		w[v.Name] = v.Weight
	}
	return w
}

// checkSticky counts, from the frontend's log, the users whose version
// changed between their requests: with two versions, only a shrinking
// weight moves users, and v1's is the one that shrank.
func checkSticky(t *testing.T, log *syncBuffer, res *experiment.Result) {
	t.Helper()
	entries, err := abnfrontend.ReadLog(strings.NewReader(log.String()))
	if err != nil {
		t.Fatal(err)
	}
	var served []abnfrontend.LogEntry
	fallbacks := 0
	for _, e := range entries {
		if e.Fallback { // the service was down: not an assignment
			fallbacks++
			continue
		}
		served = append(served, e)
	}
	seqs := abnfrontend.UserVersions(served)
	toV2, toV1 := 0, 0
	for _, u := range abnfrontend.ChangedUsers(seqs) {
		s := seqs[u]
		for i := 1; i < len(s); i++ {
			switch {
			case s[i-1] == "v1" && s[i] == "v2":
				toV2++
			case s[i-1] == "v2" && s[i] == "v1":
				toV1++
			}
		}
	}
	t.Logf("%d requests of %d users (%d fell back while the service was down); version changes: %d v1→v2, %d v2→v1",
		len(entries), len(seqs), fallbacks, toV2, toV1)
	if v2Fell(res) {
		t.Logf("v2's weight fell at some loop: users may move v2→v1 then")
		return
	}
	if toV1 != 0 {
		t.Errorf("%d moves from v2 to v1, whose weight never shrank: users must keep their version", toV1)
	}
}

// v2Fell tells whether v2's weight ever fell from loop to loop.
func v2Fell(res *experiment.Result) bool {
	prev := 50.0
	for _, h := range res.History {
		w, ok := h.Metrics["v2"]["bandit/weight"]
		if !ok {
			continue
		}
		if w < prev {
			return true
		}
		prev = w
	}
	return false
}

// killResult is what killInUpgrade did.
type killResult struct {
	revision int // the app's revision whose upgrade had begun at the kill
	err      error
}

// killInUpgrade kills the Job's pod as soon as an upgrade of the app's
// release begins (Helm stores its revision pending first), so that the
// retried pod must find the revision the killed one left pending. An
// upgrade takes a fraction of a second and the kill can come after its
// end; checkKilledInUpgrade tells the two apart from the app's history.
func killInUpgrade(ctx context.Context, ns, job string) killResult {
	secrets := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace(ns)
	w, err := secrets.Watch(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=app,status=pending-upgrade"})
	if err != nil {
		return killResult{err: fmt.Errorf("watch the app's pending revisions: %w", err)}
	}
	defer w.Stop()
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return killResult{err: errors.New("the watch of the app's pending revisions ended")}
			}
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				return killResult{err: fmt.Errorf("the watch of the app's pending revisions: %s event %v", ev.Type, ev.Object)}
			}
			labelled, ok := ev.Object.(metav1.Object)
			if !ok {
				return killResult{err: fmt.Errorf("the watch of the app's pending revisions: a %T", ev.Object)}
			}
			revision, err := strconv.Atoi(labelled.GetLabels()["version"])
			if err != nil {
				return killResult{err: fmt.Errorf("secret %s: label version: %w", labelled.GetName(), err)}
			}
			if err := harness.KillJobPod(ns, job); err != nil {
				return killResult{err: err}
			}
			return killResult{revision: revision}
		case <-ctx.Done():
			return killResult{err: fmt.Errorf("no upgrade of the app began: %w", ctx.Err())}
		}
	}
}

// checkKilledInUpgrade wants the kill done and, when it stopped the
// upgrade (its revision never completed: Helm's "Preparing upgrade" is
// still its description), that revision rolled back by the retried pod.
func checkKilledInUpgrade(t *testing.T, ns string, killed <-chan killResult) {
	t.Helper()
	var k killResult
	select {
	case k = <-killed:
	case <-time.After(10 * time.Second): // the run has ended: it made its promotion's upgrade at least
		t.Fatalf("the run ended, but no upgrade of the app was seen begin after the killer started: the Job's pod was not killed")
	}
	if k.err != nil {
		t.Fatalf("kill the Job's pod in an upgrade: %v", k.err)
	}
	history := appHistory(t, ns)
	i := slices.IndexFunc(history, func(h helmRevision) bool { return h.Revision == k.revision })
	if i < 0 {
		t.Fatalf("the app's history has no revision %d, whose upgrade had begun at the kill: %+v", k.revision, history)
	}
	if history[i].Description != "Preparing upgrade" {
		t.Logf("killed the Job's pod (kill -9) just after the upgrade to revision %d ended (%s)", k.revision, history[i].Description)
		return
	}
	rollback := fmt.Sprintf("Rollback to %d", k.revision-1)
	if !slices.ContainsFunc(history[i+1:], func(h helmRevision) bool { return h.Description == rollback }) {
		t.Errorf("the kill stopped the upgrade to revision %d, but no later revision is %q: %+v", k.revision, rollback, history)
		return
	}
	t.Logf("killed the Job's pod (kill -9) in the upgrade to revision %d: the retried pod rolled it back", k.revision)
}

// loopWait is how long waitLoops waits for a loop that nothing delays.
const loopWait = time.Minute

// waitLoops waits, for at most within, until the experiment has finished
// n loops, or ended.
func waitLoops(t *testing.T, ctx context.Context, ns string, n int, within time.Duration) {
	t.Helper()
	waitUntil(t, ctx, within, fmt.Sprintf("loop %d of the bandit", n), func() (bool, string) {
		r := readResult(t, ns, "bandit")
		if r == nil {
			return false, "no result yet"
		}
		return len(r.History) >= n || r.Completed(), fmt.Sprintf("loop %d, %d in history", r.Loop, len(r.History))
	})
}

// waitEnd waits for the experiment's run to end and returns its result.
func waitEnd(t *testing.T, ctx context.Context, ns, name string) *experiment.Result {
	t.Helper()
	var res *experiment.Result
	waitUntil(t, ctx, 3*time.Minute, "the experiment's end", func() (bool, string) {
		res = readResult(t, ns, name)
		if res == nil {
			return false, "no result yet"
		}
		return res.Completed(), fmt.Sprintf("loop %d, %s", res.Loop, res.State())
	})
	return res
}

// readResult reads the experiment's newest result through the plugin, nil
// while there is none.
func readResult(t *testing.T, ns, name string) *experiment.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := testbed.Run(t, ctx, exec.CommandContext(ctx, iter8Bin(), "report", name, "-n", ns, "-o", "json", "--kubeconfig", env.Kubeconfig))
	if o.Code != 0 {
		if strings.Contains(o.Stderr, "no result") {
			return nil
		}
		t.Fatalf("report: %s", o)
	}
	var r experiment.Result
	if err := json.Unmarshal([]byte(o.Stdout), &r); err != nil {
		t.Fatalf("report -o json: %v\n%s", err, o.Stdout)
	}
	return &r
}

func mustRun(t *testing.T, ctx context.Context, name string, args ...string) testbed.Outcome {
	t.Helper()
	o := testbed.Run(t, ctx, exec.CommandContext(ctx, name, args...))
	if o.Code != 0 {
		t.Fatalf("want success: %s", o)
	}
	return o
}

// upgraderRBACGolden compares what the bandit's upgrader account may do in
// the app's namespace with testdata/upgrader-rbac.golden (IT8_UPDATE_GOLDEN=1
// rewrites it).
func upgraderRBACGolden(t *testing.T, ns string) {
	t.Helper()
	out := kubectl(t, "", "auth", "can-i", "--list", "--as", "system:serviceaccount:"+ns+":bandit-iter8-upgrader", "-n", ns)
	if out.Code != 0 {
		t.Fatalf("kubectl auth can-i --list: %s", out)
	}
	golden := filepath.Join("testdata", "upgrader-rbac.golden")
	if os.Getenv("IT8_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(golden, []byte(out.Stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (IT8_UPDATE_GOLDEN=1 writes it)", err)
	}
	if !bytes.Equal([]byte(out.Stdout), want) {
		t.Errorf("kubectl auth can-i --list as the upgrader:\n%s\nwant (%s):\n%s", out.Stdout, golden, want)
	}
}

func iter8Bin() string { return filepath.Join(binDir, "kubectl-iter8") }

// experimentChart is charts/iter8 in the checkout.
func experimentChart(t *testing.T) string {
	t.Helper()
	return filepath.Join(filepath.Dir(chartDir), "iter8")
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
