package abnfrontend_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/iter8-tools/iter8/abn/client"
	"github.com/iter8-tools/iter8/pkg/abn/apps"
	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/pkg/abn/ledger/ledgertest"
	"github.com/iter8-tools/iter8/pkg/abn/service"
	"github.com/iter8-tools/iter8/test/abnfrontend"
	"github.com/iter8-tools/iter8/test/sampleapp"
)

// TestFrontendCreditsTheVersionThatServed: 200 users buy through the
// frontend in front of two versions of the sample app; each user stays on
// one version, and the service's summaries count exactly the purchases and
// revenue that each version served.
func TestFrontendCreditsTheVersionThatServed(t *testing.T) {
	model, target := startShop(t, "v1", "v2")
	backends := map[string]string{}
	for _, v := range []string{"v1", "v2"} {
		srv := httptest.NewServer(sampleapp.NewHandler(sampleapp.Options{Version: v}))
		t.Cleanup(srv.Close)
		backends[v] = srv.URL
	}
	c := newClient(t, target)
	front := httptest.NewServer(abnfrontend.Handler(abnfrontend.Options{ABN: c, Backends: backends}))
	t.Cleanup(front.Close)

	served := map[string]string{}
	want := map[string]float64{}
	for round := range 2 {
		for u := range 200 {
			user := fmt.Sprintf("user-%d", u)
			resp, err := http.Get(fmt.Sprintf("%s/buy?user=%s&amount=%d", front.URL, user, u))
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			v := resp.Header.Get("X-Version")
			if resp.StatusCode != http.StatusOK || v == "" {
				t.Fatalf("GET /buy as %s: %d, version %q", user, resp.StatusCode, v)
			}
			if round == 1 && served[user] != v {
				t.Fatalf("%s got %s, then %s: want the same version", user, served[user], v)
			}
			served[user] = v
			want[v] += float64(u)
		}
	}
	flush, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	if err := c.Close(flush); err != nil {
		t.Fatal(err)
	}
	sum, _ := model.Summary(context.Background(), "ns/shop")
	var purchases int64
	for v, revenue := range want {
		m := sum.Versions[v].Metrics
		if got := m["revenue"].Transactions.Sum; got != revenue {
			t.Errorf("%s revenue = %v, want %v", v, got, revenue)
		}
		purchases += m["purchases"].Transactions.Count
	}
	if purchases != 400 || len(want) != 2 {
		t.Errorf("purchases = %d over %d versions, want 400 over 2", purchases, len(want))
	}
}

// startShop serves the A/B/n service on a loopback port for the app ns/shop
// with the given versions, ready and of equal weight, and returns its
// ledger and address.
func startShop(t *testing.T, versions ...string) (*ledgertest.Model, string) {
	t.Helper()
	model := ledgertest.NewModel(ledger.Options{})
	var vs []apps.Version
	for _, v := range versions {
		vs = append(vs, apps.Version{Name: v, Weight: 100 / len(versions), Ready: true})
	}
	shop := apps.Static{"ns/shop": {Namespace: "ns", Name: "shop", Versions: vs}}
	svc, err := service.New(service.Options{Apps: shop, Ledger: model, Namespace: "ns",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go svc.Run(ctx)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := service.NewGRPCServer(svc)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return model, lis.Addr().String()
}

// newClient is the SDK's client for ns/shop at target, with baseline v1.
func newClient(t *testing.T, target string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Target: target, Application: "ns/shop", Baseline: "v1", LookupTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// flush sends the client's metrics and returns the app's summary.
func flush(t *testing.T, c *client.Client, model *ledgertest.Model) map[string]map[string]ledger.MetricSummary {
	t.Helper()
	ctx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	sum, err := model.Summary(context.Background(), "ns/shop")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]map[string]ledger.MetricSummary{}
	for v, vs := range sum.Versions {
		m[v] = map[string]ledger.MetricSummary{}
		for name, ms := range vs.Metrics {
			m[v][name] = *ms // a metric never written reads as zero
		}
	}
	return m
}

// fetch GETs url and returns the status and the X-Version and X-Purchase
// headers. It is safe in any goroutine.
func fetch(url string) (status int, version, purchase string, err error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Version"), resp.Header.Get(sampleapp.PurchaseHeader), nil
}

// mustFetch is fetch in the test's goroutine.
func mustFetch(t *testing.T, url string) (status int, version, purchase string) {
	t.Helper()
	status, version, purchase, err := fetch(url)
	if err != nil {
		t.Fatal(err)
	}
	return status, version, purchase
}

// TestFrontendPurchaseHeader: 1000 users, two requests each from 8
// concurrent workers, through the frontend in front of v1 (conversion 0.1)
// and v2 (0.2) with PurchaseHeader set. Exactly the requests whose answer
// carries X-Purchase record a purchase of its amount; the log has one line
// per request, parses back, and shows every user on one version.
func TestFrontendPurchaseHeader(t *testing.T) {
	model, target := startShop(t, "v1", "v2")
	conversion := map[string]float64{"v1": 0.1, "v2": 0.2}
	backends := map[string]string{}
	for v, p := range conversion {
		srv := httptest.NewServer(sampleapp.NewHandler(sampleapp.Options{Version: v, Conversion: p}))
		t.Cleanup(srv.Close)
		backends[v] = srv.URL
	}
	c := newClient(t, target)
	var log bytes.Buffer
	front := httptest.NewServer(abnfrontend.Handler(abnfrontend.Options{ABN: c, Backends: backends,
		PurchaseHeader: sampleapp.PurchaseHeader, Log: &log}))
	t.Cleanup(front.Close)

	const users, rounds = 1000, 2
	type answer struct{ user, version, purchase string }
	answers := make(chan answer, users*rounds)
	var g errgroup.Group
	g.SetLimit(8)
	for round := range rounds {
		for u := range users {
			g.Go(func() error {
				user := fmt.Sprintf("user-%d", u)
				// ?amount= is ignored when the backend says who buys.
				status, v, p, err := fetch(fmt.Sprintf("%s/buy?user=%s&amount=1000", front.URL, user))
				if err != nil {
					return err
				}
				if status != http.StatusOK || v == "" {
					return fmt.Errorf("round %d GET /buy as %s: %d, version %q", round, user, status, v)
				}
				answers <- answer{user, v, p}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	close(answers)

	wantCount, wantRevenue := map[string]int64{}, map[string]float64{}
	for a := range answers {
		amount, ok := sampleapp.Purchase(a.version, a.user, conversion[a.version])
		if want := map[bool]string{true: strconv.Itoa(amount), false: ""}[ok]; a.purchase != want {
			t.Fatalf("%s on %s: got X-Purchase %q, want %q", a.user, a.version, a.purchase, want)
		}
		if ok {
			wantCount[a.version]++
			wantRevenue[a.version] += float64(amount)
		}
	}
	entries, err := abnfrontend.ReadLog(bytes.NewReader(log.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != users*rounds {
		t.Fatalf("log: got %d entries, want %d", len(entries), users*rounds)
	}
	logCount, logRevenue := map[string]int64{}, map[string]float64{}
	for _, e := range entries {
		if e.Status != http.StatusOK || e.Fallback || e.Error != "" {
			t.Errorf("log entry %+v: want status 200, no fallback, no error", e)
		}
		if e.Purchased {
			logCount[e.Version]++
			logRevenue[e.Version] += e.Revenue
		}
	}
	versions := abnfrontend.UserVersions(entries)
	if len(versions) != users {
		t.Errorf("log: got %d users, want %d", len(versions), users)
	}
	if changed := abnfrontend.ChangedUsers(versions); len(changed) != 0 {
		t.Errorf("log: users %v changed version, want none", changed)
	}

	metrics := flush(t, c, model)
	for _, v := range []string{"v1", "v2"} {
		m := metrics[v]
		if got := m["purchases"].Transactions.Count; got != wantCount[v] || logCount[v] != wantCount[v] {
			t.Errorf("%s: got %d purchases (log: %d), want %d", v, got, logCount[v], wantCount[v])
		}
		if got := m["revenue"].Transactions.Sum; got != wantRevenue[v] || logRevenue[v] != wantRevenue[v] {
			t.Errorf("%s: got revenue %v (log: %v), want %v", v, got, logRevenue[v], wantRevenue[v])
		}
		if wantCount[v] == 0 {
			t.Errorf("%s: no purchases at all; the test checks nothing", v)
		}
	}
}

// TestFrontendPurchaseHeaderAnswers: with PurchaseHeader set, only a
// successful answer carrying a numeric header is a purchase; a malformed
// header is the backend's fault (502); without PurchaseHeader every
// successful answer is a purchase of ?amount=.
func TestFrontendPurchaseHeaderAnswers(t *testing.T) {
	tests := []struct {
		name           string
		purchaseHeader string
		status         int
		purchase       string // the backend's X-Purchase
		wantStatus     int
		wantRevenue    float64 // -1: no purchase
	}{
		{"no header", "X-Purchase", 200, "", 200, -1},
		{"header", "X-Purchase", 200, "12.5", 200, 12.5},
		{"header on an error", "X-Purchase", 503, "12", 503, -1},
		{"malformed header", "X-Purchase", 200, "abc", 502, -1},
		{"other header name", "X-Bought", 200, "12", 200, -1},
		{"old behaviour", "", 200, "", 200, 7},
		{"old behaviour ignores the header", "", 200, "12", 200, 7},
		{"old behaviour, error", "", 500, "", 500, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			model, target := startShop(t, "v1")
			var gotUser string
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotUser = r.URL.Query().Get("user")
				if tt.purchase != "" {
					w.Header().Set("X-Purchase", tt.purchase)
				}
				w.WriteHeader(tt.status)
			}))
			t.Cleanup(backend.Close)
			c := newClient(t, target)
			var log bytes.Buffer
			front := httptest.NewServer(abnfrontend.Handler(abnfrontend.Options{ABN: c,
				Backends: map[string]string{"v1": backend.URL}, PurchaseHeader: tt.purchaseHeader, Log: &log}))
			t.Cleanup(front.Close)

			status, _, _ := mustFetch(t, front.URL+"/buy?user=a+b&amount=7")
			if status != tt.wantStatus {
				t.Errorf("got status %d, want %d", status, tt.wantStatus)
			}
			if gotUser != "a b" {
				t.Errorf("backend got ?user=%q, want \"a b\"", gotUser)
			}
			entries, err := abnfrontend.ReadLog(&log)
			if err != nil {
				t.Fatal(err)
			}
			want := abnfrontend.LogEntry{User: "a b", Version: "v1", Status: tt.wantStatus,
				Purchased: tt.wantRevenue >= 0, Revenue: max(tt.wantRevenue, 0)}
			if len(entries) != 1 {
				t.Fatalf("log: got %+v, want one entry", entries)
			}
			got := entries[0]
			if tt.wantStatus == http.StatusBadGateway && !strings.Contains(got.Error, `X-Purchase "abc": want a number`) {
				t.Errorf("log: got error %q, want it to name the malformed header", got.Error)
			}
			got.Error = ""
			if got != want {
				t.Errorf("log: got %+v, want %+v", got, want)
			}
			m := flush(t, c, model)["v1"]
			wantCount, wantSum := int64(0), 0.0
			if tt.wantRevenue >= 0 {
				wantCount, wantSum = 1, tt.wantRevenue
			}
			if m["purchases"].Transactions.Count != wantCount || m["revenue"].Transactions.Sum != wantSum {
				t.Errorf("got %d purchases, revenue %v; want %d, %v", m["purchases"].Transactions.Count,
					m["revenue"].Transactions.Sum, wantCount, wantSum)
			}
		})
	}
}

// TestFrontendLogsFallback: when the service does not answer, the user
// goes to the baseline and the log says so.
func TestFrontendLogsFallback(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	c, err := client.New(client.Options{Target: dead, Application: "ns/shop", Baseline: "v1", LookupTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	backend := httptest.NewServer(sampleapp.NewHandler(sampleapp.Options{Version: "v1"}))
	t.Cleanup(backend.Close)
	var log bytes.Buffer
	front := httptest.NewServer(abnfrontend.Handler(abnfrontend.Options{ABN: c,
		Backends: map[string]string{"v1": backend.URL}, PurchaseHeader: sampleapp.PurchaseHeader, Log: &log}))
	t.Cleanup(front.Close)
	if status, v, _ := mustFetch(t, front.URL+"/buy?user=ann"); status != 200 || v != "v1" {
		t.Fatalf("GET /buy: got %d version %q, want 200 v1", status, v)
	}
	entries, err := abnfrontend.ReadLog(&log)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || !entries[0].Fallback || entries[0].Version != "v1" || !strings.HasPrefix(entries[0].Error, "lookup: ") {
		t.Errorf("log: got %+v, want one fallback entry for v1 with a lookup error", entries)
	}
}

func TestReadLog(t *testing.T) {
	log := `{"user":"a","version":"v1","fallback":false,"status":200,"purchased":true,"revenue":12}

{"user":"b","version":"v2","fallback":false,"status":200,"purchased":false}
{"user":"a","version":"v2","fallback":true,"status":200,"purchased":false,"error":"lookup: x"}
{"user":"c","version":"v1","fallback":false,"status":502,"purchased":false}
{"user":"b","version":"v2","fallback":false,"status":200,"purchased":false}
{"user":"a","version":"v1","fallback":false,"status":200,"purchased":false}
`
	entries, err := abnfrontend.ReadLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 6 || entries[0] != (abnfrontend.LogEntry{User: "a", Version: "v1", Status: 200, Purchased: true, Revenue: 12}) ||
		entries[2].Error != "lookup: x" || !entries[2].Fallback {
		t.Fatalf("ReadLog: got %+v", entries)
	}
	versions := abnfrontend.UserVersions(entries)
	want := map[string][]string{"a": {"v1", "v2", "v1"}, "b": {"v2", "v2"}, "c": {"v1"}}
	if fmt.Sprint(versions) != fmt.Sprint(want) {
		t.Errorf("UserVersions: got %v, want %v", versions, want)
	}
	if got := abnfrontend.ChangedUsers(versions); !slices.Equal(got, []string{"a"}) {
		t.Errorf("ChangedUsers: got %v, want [a]", got)
	}
	// Leaving out fallbacks, as a test of stickiness may.
	var served []abnfrontend.LogEntry
	for _, e := range entries {
		if !e.Fallback {
			served = append(served, e)
		}
	}
	if got := abnfrontend.ChangedUsers(abnfrontend.UserVersions(served)); len(got) != 0 {
		t.Errorf("ChangedUsers without fallbacks: got %v, want none", got)
	}
	if got := abnfrontend.ChangedUsers(map[string][]string{"x": nil, "y": {"v1", "v1"}, "z": {"v2", "v1"}}); !slices.Equal(got, []string{"z"}) {
		t.Errorf("ChangedUsers: got %v, want [z]", got)
	}
}

func TestReadLogErrors(t *testing.T) {
	tests := []struct{ log, want string }{
		{"{\"user\":\"a\",\"version\":\"v1\"}\nnot json\n", "read frontend log: line 2: invalid character"},
		{"\n{\"version\":\"v1\"}\n", "read frontend log: line 2: no user"},
		{`{"user":"a","status":"200"}`, "read frontend log: line 1: json: cannot unmarshal string"},
	}
	for _, tt := range tests {
		_, err := abnfrontend.ReadLog(strings.NewReader(tt.log))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ReadLog(%q): got %v, want an error containing %q", tt.log, err, tt.want)
		}
	}
}
