package abn_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/test/testbed"
)

// sharesAndMoves checks through the running service, on a second app
// (split) and with 100,000 users, what pkg/abn/assign's tests check on the
// assignment alone: each version's share within a point of its weight at
// 75/25 and 95/5, and weight changes that move the fewest users, each only
// into a version whose weight grew: 90/10 → 80/20 at most 10.5% of users,
// all into v2; adding v3 to 50/25 moves only the users v3 takes (v1:v2
// held at 2:1); 50/25/25 → 40/20/40 at most 16%, all into v3. Every route
// comes from `helm install` or `helm upgrade` of charts/release.
func sharesAndMoves(t *testing.T, addr string) {
	const split = "split"
	c := newClient(t, addr, ns+"/"+split)
	defer c.Close(context.Background())
	all := users(100_000)
	sample := all[:2000]
	defer func() {
		// Also after a failed upgrade --install, which may have left it.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if o := testbed.Run(t, ctx, env.Helm(ctx, "uninstall", split, "-n", ns, "--ignore-not-found", "--wait", "--timeout", "1m")); o.Code != 0 {
			t.Errorf("helm uninstall %s: %s", split, o)
		}
	}()
	// route gives the app these weights and, once a sample of users gets
	// shares near them, returns every user's version.
	route := func(weights ...int) map[string]string {
		t.Helper()
		start := time.Now()
		helm(t, "upgrade", "--install", split, releaseChart, "-n", ns, "-f", appValues(t, weights...),
			"--set", "gates.readiness.enabled=false", "--wait", "--timeout", "2m")
		returned := time.Now()
		var versions []string
		want := map[string]float64{}
		total := 0
		for _, w := range weights {
			total += w
		}
		for i, w := range weights {
			v := fmt.Sprintf("v%d", i+1)
			versions = append(versions, v)
			want[v] = 100 * float64(w) / float64(total)
		}
		eventually(t, 30*time.Second, fmt.Sprintf("shares of %d users near %v", len(sample), weights), func() (bool, string) {
			m, problems := lookupAmong(c, sample, versions...)
			if len(problems) > 0 {
				return false, firstFew(problems)
			}
			return sharesWithin(m, want, 4), describeShares(m, versions)
		})
		seen := time.Now()
		m, problems := lookupAmong(c, all, versions...)
		if len(problems) > 0 {
			t.Fatalf("Lookups at %v: %s", weights, firstFew(problems))
		}
		if !sharesWithin(m, want, 1) {
			t.Errorf("%d users at %v: %s, want each within 1 point of its weight", len(all), weights, describeShares(m, versions))
		} else {
			t.Logf("%v: helm took %v, the shares seen %v after it returned; %d users: %s", weights, returned.Sub(start).Round(time.Millisecond),
				seen.Sub(returned).Round(time.Millisecond), len(all), describeShares(m, versions))
		}
		return m
	}
	route(75, 25)
	route(95, 5)
	at90 := route(90, 10)
	movedAtMost(t, at90, route(80, 20), 10.5, "v2")
	at50 := route(50, 25)
	at3 := route(50, 25, 25)
	movedAtMost(t, at50, at3, 25+1, "v3")
	movedAtMost(t, at3, route(40, 20, 40), 16, "v3")
}

// sharesWithin says whether every version's share in m is within tolerance
// points of want's.
func sharesWithin(m map[string]string, want map[string]float64, tolerance float64) bool {
	for v, w := range want {
		if math.Abs(share(m, v)-w) > tolerance {
			return false
		}
	}
	return true
}

func describeShares(m map[string]string, versions []string) string {
	var s []string
	for _, v := range versions {
		s = append(s, fmt.Sprintf("%s %.2f%%", v, share(m, v)))
	}
	return strings.Join(s, ", ")
}

// movedAtMost checks that at most maxPercent of the users changed version
// from before to after, and each only into one of into.
func movedAtMost(t *testing.T, before, after map[string]string, maxPercent float64, into ...string) {
	t.Helper()
	moved := 0
	var wrong []string
	for u, v := range after {
		if before[u] == v {
			continue
		}
		moved++
		if !slices.Contains(into, v) {
			wrong = append(wrong, fmt.Sprintf("%s %s → %s", u, before[u], v))
		}
	}
	pct := 100 * float64(moved) / float64(len(after))
	if pct > maxPercent {
		t.Errorf("%.2f%% of %d users moved, want at most %.1f%%", pct, len(after), maxPercent)
	}
	if len(wrong) > 0 {
		t.Errorf("users moved into a version other than %v: %s", into, firstFew(wrong))
	}
	t.Logf("%.2f%% of %d users moved (at most %.1f%%), into %v only: %v", pct, len(after), maxPercent, into, len(wrong) == 0)
}
