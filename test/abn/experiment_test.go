package abn_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/test/testbed"
)

// abTest runs an A/B test's experiment through charts/iter8 (the abn
// and assess tasks, in the harness's Job) on a second app, cart, whose
// users convert at 10% on v1 and 20% on v2, and checks what the report says.
func abTest(t *testing.T, addr string) {
	const cart, users = "cart", 5000
	helm(t, "install", cart, releaseChart, "-n", ns, "-f", appValues(t, 50, 50),
		"--set", "gates.readiness.enabled=false", "--wait", "--timeout", "2m")
	defer helm(t, "uninstall", cart, "-n", ns, "--wait", "--timeout", "1m")
	c := newClient(t, addr, ns+"/"+cart)
	names := make([]string, users)
	for i := range names {
		names[i] = fmt.Sprintf("shopper-%05d", i)
	}
	assigned, problems := lookupAll(c, names)
	if len(problems) > 0 {
		t.Fatalf("lookups: %s", firstFew(problems))
	}
	r := rand.New(rand.NewPCG(17, 4))
	buyers := map[string]int{}
	written := 0
	for _, u := range names {
		v := assigned[u]
		if r.Float64() < map[string]float64{"v1": 0.1, "v2": 0.2}[v] {
			if err := c.WriteMetric(u, v, "purchase", float64(10+r.IntN(90))); err != nil {
				t.Fatal(err)
			}
			buyers[v]++
			written++
		}
	}
	closeClient(t, c, written)
	eventually(t, 30*time.Second, "every lookup counted as an exposure", func() (bool, string) {
		n := totalUsers(summary(t, addr, ns+"/"+cart))
		return n == users, fmt.Sprintf("%d users exposed", n)
	})
	t.Logf("users: v1 %.1f%% of %d (%d bought), v2 (%d bought)", share(assigned, "v1"), users, buyers["v1"], buyers["v2"])

	endpoint := "http://" + net.JoinHostPort(addr, "8080")
	start := time.Now()
	helm(t, "install", "abtest", experimentChart, "-n", ns, "--wait", "--timeout", "2m",
		"--set", "tasks={abn,assess},versions={v1,v2}",
		"--set", "abn.endpoint="+endpoint+",abn.application="+ns+"/"+cart+",abn.metrics={purchase}",
		"--set", "assess.comparisons[0].metric=abn/purchase-conversion,assess.comparisons[0].better=higher",
		"--set", "assess.comparisons[1].metric=abn/purchase-per-user,assess.comparisons[1].better=higher",
		"--set", "assess.rewards.max={abn/purchase-per-user}")
	defer helm(t, "uninstall", "abtest", "-n", ns, "--wait", "--timeout", "1m")
	t.Logf("helm install of the experiment returned in %v", time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := testbed.Run(t, ctx, exec.CommandContext(ctx, iter8Bin, "report", "abtest", "-n", ns, "-o", "json", "--kubeconfig", env.Kubeconfig))
	if o.Code != 0 {
		t.Fatalf("report: %s", o)
	}
	var res experiment.Result
	if err := json.Unmarshal([]byte(o.Stdout), &res); err != nil {
		t.Fatalf("report -o json: %v\n%s", err, o.Stdout)
	}
	if len(res.Comparisons) != 2 {
		t.Fatalf("comparisons %+v, want 2", res.Comparisons)
	}
	for _, cmp := range res.Comparisons {
		if cmp.Verdict != experiment.VerdictBetter || cmp.Effect == nil || cmp.Low == nil || *cmp.Low <= 0 {
			t.Errorf("%s: verdict %s, effect %v [%v, %v] (%s); want better with an interval above 0", cmp.Metric, cmp.Verdict, deref(cmp.Effect), deref(cmp.Low), deref(cmp.High), cmp.Reason)
			continue
		}
		t.Logf("%s: v2 %s, effect %+.4f [%+.4f, %+.4f] over %d and %d users; %d per version would find the minimum effect 80%% of the time",
			cmp.Metric, cmp.Verdict, *cmp.Effect, *cmp.Low, *cmp.High, cmp.BaselineCount, cmp.CandidateCount, cmp.Needed)
	}
	if len(res.Rewards) != 1 || res.Rewards[0].ProbabilityBest["v2"] < 0.95 || res.Winner != "v2" {
		t.Errorf("rewards %+v, winner %q: want v2 best with P(best) ≥ 0.95", res.Rewards, res.Winner)
	} else {
		t.Logf("P(best) of v2 by revenue per user: %.4f", res.Rewards[0].ProbabilityBest["v2"])
	}
	bandit(t, addr, endpoint, cart)
}

// bandit runs a looping bandit experiment from the test (kubectl iter8 run
// -f, acting on the cluster with the test's credentials) over the same
// evidence: the first loop promotes v2 by a helm upgrade of the app's
// release, and the service then gives every new user v2.
func bandit(t *testing.T, addr, endpoint, cart string) {
	spec := fmt.Sprintf(`apiVersion: iter8.tools/v1
kind: Experiment
metadata: {name: bandit}
spec:
  versions: [v1, v2]
  loops: 3
  interval: 2s
  tasks:
  - task: abn
    with: {endpoint: %q, application: %s/%s, metrics: [purchase]}
  - task: assess
    with:
      rewards: {max: [abn/purchase-conversion]}
      comparisons: [{metric: abn/purchase-conversion, better: higher}]
  - task: bandit
    with: {release: %s/%s, reward: abn/purchase-conversion, timeout: 1m}
`, endpoint, ns, cart, ns, cart)
	dir := t.TempDir()
	file := filepath.Join(dir, "bandit.yaml")
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, iter8Bin, "run", "-f", file, "--kubeconfig", env.Kubeconfig, "-n", ns)
	cmd.Env = env.HelmEnv()
	if o := testbed.Run(t, ctx, cmd); o.Code != 0 {
		t.Fatalf("bandit run: %s", o)
	}
	t.Logf("bandit experiment ran in %v", time.Since(start).Round(time.Millisecond))
	raw, err := os.ReadFile(filepath.Join(dir, "bandit.result.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res experiment.Result
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if b := res.Bandit; b == nil || b.Promoted != "v2" || b.Weights["v2"] != 100 || res.Loop != 1 || !strings.Contains(res.Stopped, "promoted v2") {
		t.Fatalf("bandit: loop %d, stopped %q, state %+v; want v2 promoted in loop 1", res.Loop, res.Stopped, res.Bandit)
	}
	t.Logf("bandit: %s (revision %d)", res.Stopped, res.Bandit.Revision)
	var values struct {
		Versions []struct {
			Name   string `json:"name"`
			Weight int    `json:"weight"`
		} `json:"versions"`
	}
	out := helm(t, "get", "values", cart, "-n", ns, "-o", "json").Stdout
	if err := json.Unmarshal([]byte(out), &values); err != nil || len(values.Versions) != 2 ||
		values.Versions[0].Weight != 0 || values.Versions[1].Name != "v2" || values.Versions[1].Weight != 100 {
		t.Errorf("release %s values after the promotion: %s (%v); want v1 0, v2 100", cart, out, err)
	}
	c := newClient(t, addr, ns+"/"+cart)
	defer c.Close(context.Background())
	fresh := make([]string, 500)
	for i := range fresh {
		fresh[i] = fmt.Sprintf("newcomer-%03d", i)
	}
	eventually(t, 30*time.Second, "every new user on v2 after the promotion", func() (bool, string) {
		m, problems := lookupAll(c, fresh)
		if len(problems) > 0 {
			return false, firstFew(problems)
		}
		return share(m, "v2") == 100, fmt.Sprintf("v2 %.1f%%", share(m, "v2"))
	})
}

func deref(f *float64) any {
	if f == nil {
		return "none"
	}
	return *f
}
