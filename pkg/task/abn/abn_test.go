package abn

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/abn/apps"
	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/pkg/abn/ledger/boltledger"
	"github.com/iter8-tools/iter8/pkg/abn/service"
	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/experiment/experimenttest"
	"github.com/iter8-tools/iter8/pkg/stats"
)

// shop is the application the tests read: v1 and v2, both ready.
var shop = apps.App{Namespace: "ns", Name: "shop", Versions: []apps.Version{
	{Name: "v1", Weight: 50, Ready: true}, {Name: "v2", Weight: 50, Ready: true},
}}

// serve starts the A/B/n service's HTTP API over a bbolt ledger and returns
// its address and the ledger, to record exposures and writes through.
func serve(t *testing.T) (string, ledger.Ledger) {
	t.Helper()
	l, err := boltledger.Open(filepath.Join(t.TempDir(), "abn.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	svc, err := service.New(service.Options{Apps: apps.Static{"ns/shop": shop}, Ledger: l, Namespace: "ns",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(service.Handler(svc))
	t.Cleanup(hs.Close)
	return hs.URL, l
}

// users exposes n users to version v and records a purchase of value(i)
// for user i when value(i) > 0 (two writes of half the value each, so that
// per-user sums differ from per-write values).
func users(t *testing.T, l ledger.Ledger, v string, n int, value func(i int) float64) {
	t.Helper()
	ctx, at := context.Background(), time.Now()
	var exposures []ledger.Exposure
	var writes []ledger.Write
	for i := range n {
		user := fmt.Sprintf("%s-user-%d", v, i)
		exposures = append(exposures, ledger.Exposure{App: "ns/shop", Version: v, User: user, At: at})
		if x := value(i); x > 0 {
			for k := range 2 {
				writes = append(writes, ledger.Write{ID: fmt.Sprintf("%s-%d", user, k), App: "ns/shop", Version: v,
					User: user, Metric: "purchase", Value: x / 2, At: at})
			}
		}
	}
	if err := l.Expose(ctx, exposures); err != nil {
		t.Fatal(err)
	}
	for len(writes) > 0 {
		n := min(len(writes), 256)
		if err := l.Record(ctx, writes[:n]); err != nil {
			t.Fatal(err)
		}
		writes = writes[n:]
	}
}

func decode(t *testing.T, with string, versions []string) (*Task, *experiment.Decoding, *experiment.Plan) {
	t.Helper()
	d, plan := experimenttest.Decoding(t, with, versions, nil)
	task, errs := Decode(d)
	if len(errs) > 0 {
		t.Fatalf("decode %s: %v", with, errs.ToAggregate())
	}
	return task.(*Task), d, plan
}

func TestRunStoresSamplesPerUser(t *testing.T) {
	url, l := serve(t)
	// v1: 200 users, every fourth buys for 40; v2: 100 users, every
	// second buys for 10·(i%3+1).
	users(t, l, "v1", 200, func(i int) float64 { return map[bool]float64{true: 40}[i%4 == 0] })
	users(t, l, "v2", 100, func(i int) float64 {
		if i%2 == 0 {
			return float64(10 * (i%3 + 1))
		}
		return 0
	})
	task, d, plan := decode(t, fmt.Sprintf("{endpoint: %q, application: ns/shop, metrics: [purchase, click]}", url), []string{"v1", "v2", "v3"})
	env := experimenttest.Env(plan, nil)
	if err := task.Run(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	r := env.Result
	value := func(v, m string) float64 {
		t.Helper()
		x, ok := r.Value(v, m)
		if !ok {
			t.Fatalf("no %s for %s; unavailable: %v", m, v, r.Version(v).Unavailable)
		}
		return x
	}
	// v1: 50 buyers of 40 among 200 users: 10 per user, sd over 200 users
	// sqrt((50·1600 − 2000²/200)/199) = sqrt(60000/199).
	if got := value("v1", "abn/users"); got != 200 {
		t.Errorf("v1 users %v, want 200", got)
	}
	if got := value("v1", "abn/purchase-conversion"); got != 0.25 {
		t.Errorf("v1 conversion %v, want 0.25", got)
	}
	s, ok := r.Sample("v1", "abn/purchase-per-user")
	if want := stats.MeanSample(200, 10, math.Sqrt(60000.0/199)); !ok || !s.Cumulative || s.Count != want.Count || s.Mean != want.Mean || math.Abs(s.Stdev-want.Stdev) > 1e-12 {
		t.Errorf("v1 per-user sample %+v, want %+v, cumulative", s, want)
	}
	if s, ok := r.Sample("v1", "abn/purchase-conversion"); !ok || s != (stats.Sample{Kind: stats.KindRate, Successes: 50, Trials: 200, Cumulative: true}) {
		t.Errorf("v1 conversion sample %+v", s)
	}
	for m, want := range map[string]float64{"-count": 100, "-sum": 2000, "-mean": 20, "-min": 20, "-max": 20, "-stddev": 0, "-users": 50} {
		if got := value("v1", "abn/purchase"+m); got != want {
			t.Errorf("v1 abn/purchase%s = %v, want %v", m, got, want)
		}
	}
	// v2: 50 buyers (the even users) spending 10, 20 or 30 (17, 16 and 17
	// of them): (17·10 + 16·20 + 17·30)/100 per user.
	if got, want := value("v2", "abn/purchase-per-user"), (17*10+16*20+17*30)/100.0; math.Abs(got-want) > 1e-12 {
		t.Errorf("v2 per user %v, want %v", got, want)
	}
	// No writes of click: counts 0, no mean, conversion 0 of the users.
	if got := value("v2", "abn/click-conversion"); got != 0 {
		t.Errorf("v2 click conversion %v, want 0", got)
	}
	if reason := r.Version("v2").Unavailable["abn/click-mean"]; !strings.Contains(reason, "no writes of click") {
		t.Errorf("v2 click mean unavailable: %q", reason)
	}
	// v3: unknown to the service.
	reason := r.Version("v3").Unavailable["abn/purchase-per-user"]
	if !strings.Contains(reason, "no users exposed to version v3 yet (the service has data of v1, v2)") {
		t.Errorf("v3 per user unavailable: %q", reason)
	}
	if _, ok := r.Sample("v3", "abn/purchase-per-user"); ok {
		t.Error("v3 has a per-user sample without users")
	}
	// The catalog lets assess compare per-user means and conversions.
	if k, ok := d.Metrics.Evidence("v2", "abn/purchase-per-user"); !ok || k != experiment.EvidenceMean {
		t.Errorf("evidence of abn/purchase-per-user: %v %v", k, ok)
	}
	if k, ok := d.Metrics.Evidence("v2", "abn/click-conversion"); !ok || k != experiment.EvidenceRate {
		t.Errorf("evidence of abn/click-conversion: %v %v", k, ok)
	}
}

func TestRunFailsNamingTheEndpoint(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	url, _ := serve(t)
	bad := func(body string) string {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) }))
		t.Cleanup(hs.Close)
		return hs.URL
	}
	for _, tt := range []struct {
		name, endpoint, app, want string
	}{
		{"unreachable", downURL, "ns/shop", "GET " + downURL + "/v1/summary: the A/B/n service is unreachable"},
		{"unknown application", url, "ns/nope", "/v1/summary: status 400: application: no application nope in namespace ns"},
		{"not JSON", bad("<html>"), "ns/shop", "/v1/summary: the response is not a summary"},
		{"another service's JSON", bad(`{"status":"ok"}`), "ns/shop", `/v1/summary: the response is not a summary of ns/shop (its application is "")`},
		{"more buyers than users", bad(`{"app":"ns/shop","versions":{"v1":{"users":5},"v2":{"users":1,"metrics":{"purchase":{"transactions":{"count":2},"users":{"count":2}}}}}}`), "ns/shop",
			"/v1/summary: version v2, metric purchase: 2 users with the metric but 1 exposed"},
		{"negative writes", bad(`{"app":"ns/shop","versions":{"v1":{"users":1,"metrics":{"purchase":{"transactions":{"count":-2}}}}}}`), "ns/shop",
			"version v1, metric purchase: transactions.count -2"},
		{"negative users", bad(`{"app":"ns/shop","versions":{"v1":{"users":-1}}}`), "ns/shop", "version v1: users -1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			task, _, plan := decode(t, fmt.Sprintf("{endpoint: %q, application: %s, metrics: [purchase], timeout: 5s}", tt.endpoint, tt.app), []string{"v1", "v2"})
			env := experimenttest.Env(plan, nil)
			err := task.Run(context.Background(), env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
			// Nothing is stored from a summary that fails its checks.
			for _, v := range []string{"v1", "v2"} {
				if _, ok := env.Result.Value(v, UsersMetric); ok {
					t.Errorf("version %s has %s after the error", v, UsersMetric)
				}
			}
		})
	}
}

func TestDecodeRefusesBadInput(t *testing.T) {
	for _, tt := range []struct {
		name, with string
		versions   []string
		want       string
	}{
		{"no endpoint", "{application: ns/shop, metrics: [m]}", nil, "endpoint: Required value"},
		{"unnamed version", "{endpoint: 'http://abn:8080', application: ns/shop, metrics: [m]}", nil, "spec.versions: Required value: the abn task reads versions by name"},
		{"endpoint path", "{endpoint: 'http://abn:8080/v1/summary', application: ns/shop, metrics: [m]}", []string{"v1"}, "the task adds /v1/summary"},
		{"endpoint scheme", "{endpoint: 'grpc://abn:50051', application: ns/shop, metrics: [m]}", []string{"v1"}, "want an http:// or https:// URL"},
		{"application without namespace", "{endpoint: 'http://abn:8080', application: shop, metrics: [m]}", []string{"v1"}, "application: Invalid value: \"shop\": want NAMESPACE/NAME"},
		{"application with two slashes", "{endpoint: 'http://abn:8080', application: a/b/c, metrics: [m]}", []string{"v1"}, "want NAMESPACE/NAME"},
		{"no metrics", "{endpoint: 'http://abn:8080', application: ns/shop}", []string{"v1"}, "metrics: Required value"},
		{"bad metric name", "{endpoint: 'http://abn:8080', application: ns/shop, metrics: ['1st']}", []string{"v1"}, `metrics[0]: Invalid value: "1st": "1st" does not start with a letter`},
		{"duplicate metric", "{endpoint: 'http://abn:8080', application: ns/shop, metrics: [m, m]}", []string{"v1"}, "metrics[1]: Duplicate value"},
		{"timeout 0", "{endpoint: 'http://abn:8080', application: ns/shop, metrics: [m], timeout: 0s}", []string{"v1"}, "timeout: Invalid value: \"0s\": must be above 0"},
		{"unknown field", "{endpoint: 'http://abn:8080', application: ns/shop, metrics: [m], window: 1h}", []string{"v1"}, "with.window: Unsupported value: unknown field"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, _ := experimenttest.Decoding(t, tt.with, tt.versions, nil)
			_, errs := Decode(d)
			if err := errs.ToAggregate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("errors %v, want one containing %q", err, tt.want)
			}
		})
	}
}
