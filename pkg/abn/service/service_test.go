package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/iter8-tools/iter8/abn/client"
	pb "github.com/iter8-tools/iter8/abn/grpc"
	"github.com/iter8-tools/iter8/pkg/abn/abntest"
	"github.com/iter8-tools/iter8/pkg/abn/apps"
	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/pkg/abn/ledger/ledgertest"
)

// shop is an application with three versions; v3 is not ready.
func shop(weights ...int) apps.App {
	a := apps.App{Namespace: "ns", Name: "shop", Header: "x-shop-version"}
	for i, w := range weights {
		name := fmt.Sprintf("v%d", i+1)
		a.Versions = append(a.Versions, apps.Version{Name: name, Weight: w, Ready: i < 2, HeaderValue: name})
	}
	return a
}

// mutableApps lets a test change an application while the service runs.
type mutableApps struct {
	mu sync.Mutex
	m  apps.Static
}

func (s *mutableApps) App(ns, name string) (apps.App, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.App(ns, name)
}
func (s *mutableApps) Synced() bool { return true }
func (s *mutableApps) set(a apps.App) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[a.Namespace+"/"+a.Name] = a
}

type fixture struct {
	svc    *Service
	model  *ledgertest.Model
	apps   *mutableApps
	grpc   pb.ABNClient
	target string
	http   string
	now    time.Time
}

// runUntilCleanup runs svc until the test's cleanup, which waits for Run
// to return.
func runUntilCleanup(t testing.TB, svc *Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// start runs a service of app a, with its Options changed by each of
// change, on gRPC and HTTP listeners of its own.
func start(t testing.TB, a apps.App, change ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{model: ledgertest.NewModel(ledger.Options{}), apps: &mutableApps{m: apps.Static{}},
		// The wall clock's time: SDK clients stamp values with it, and the
		// service refuses values far from its own clock.
		now: time.Now().Truncate(time.Second)}
	f.apps.set(a)
	opts := Options{Apps: f.apps, Ledger: f.model, Namespace: "ns", Now: func() time.Time { return f.now },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, c := range change {
		c(&opts)
	}
	svc, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	runUntilCleanup(t, svc)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := NewGRPCServer(svc)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	f.target = lis.Addr().String()
	conn, err := grpc.NewClient(f.target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	f.grpc = pb.NewABNClient(conn)
	hs := httptest.NewServer(Handler(svc))
	t.Cleanup(hs.Close)
	f.http = hs.URL
	return f
}

func TestLookupIsStickyAcrossInstancesAndSkipsUnreadyVersions(t *testing.T) {
	a, b := start(t, shop(50, 25, 25)), start(t, shop(50, 25, 25))
	counts := map[string]int{}
	for i := range 3000 {
		user := fmt.Sprintf("user-%d", i)
		x, err := a.grpc.Lookup(context.Background(), &pb.Application{Name: "ns/shop", User: user})
		if err != nil {
			t.Fatal(err)
		}
		y, err := b.grpc.Lookup(context.Background(), &pb.Application{Name: "shop", User: user})
		if err != nil {
			t.Fatal(err)
		}
		if x.GetVersion() != y.GetVersion() || x.GetVersionNumber() != y.GetVersionNumber() {
			t.Fatalf("user %s: instance a says %s, instance b %s", user, x, y)
		}
		if x.GetHeader() != "x-shop-version" || x.GetHeaderValue() != x.GetVersion() || x.GetFallback() {
			t.Fatalf("user %s: %v, want the version's header and no fallback", user, x)
		}
		counts[x.GetVersion()]++
	}
	// v3 is not ready: v1 and v2 share users 50:25.
	if counts["v3"] != 0 || counts["v1"] < 1900 || counts["v1"] > 2100 {
		t.Errorf("users per version = %v, want none on unready v3 and about 2000 on v1", counts)
	}
}

// TestLookupsStream: a batch is answered as the same Lookups one by one
// would be, in order; a refused user gets its error in its Session and the
// stream goes on; a batch too large ends the stream naming the field.
func TestLookupsStream(t *testing.T) {
	f := start(t, shop(50, 25, 25))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := f.grpc.Lookups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	users := []string{"ann", "", "bob", strings.Repeat("u", 513), "cy"}
	for _, app := range []string{"ns/shop", "shop"} {
		if err := st.Send(&pb.LookupBatch{Application: app, Users: users}); err != nil {
			t.Fatal(err)
		}
		out, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(out.GetSessions()) != len(users) {
			t.Fatalf("%d sessions for %d users", len(out.GetSessions()), len(users))
		}
		for i, u := range users {
			got := out.GetSessions()[i]
			if i == 1 || i == 3 {
				if !strings.HasPrefix(got.GetError(), "user:") || got.GetVersion() != "" {
					t.Errorf("user %d (%.10q): %v, want an error naming user and no version", i, u, got)
				}
				continue
			}
			want, err := f.grpc.Lookup(ctx, &pb.Application{Name: "ns/shop", User: u})
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Errorf("user %s: batch answered %v, Lookup %v", u, got, want)
			}
		}
	}
	if err := st.Send(&pb.LookupBatch{Application: "ns/nope", Users: []string{"ann"}}); err != nil {
		t.Fatal(err)
	}
	if out, err := st.Recv(); err != nil || !strings.HasPrefix(out.GetSessions()[0].GetError(), "application:") {
		t.Fatalf("unknown application: %v, %v; want a session with an error naming application", out, err)
	}
	if err := st.Send(&pb.LookupBatch{Application: "ns/shop", Users: make([]string, MaxLookupBatch+1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), "users:") {
		t.Fatalf("batch of %d: %v, want InvalidArgument naming users", MaxLookupBatch+1, err)
	}
}

// TestEndStreams: an open Lookups stream that waits for its next batch is
// ended with Unavailable, and a new one is refused the same way, so that a
// graceful stop need not wait for them.
func TestEndStreams(t *testing.T) {
	f := start(t, shop(50, 50, 0))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := f.grpc.Lookups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pb.LookupBatch{Application: "ns/shop", Users: []string{"ann"}}); err != nil {
		t.Fatal(err)
	}
	if out, err := st.Recv(); err != nil || out.GetSessions()[0].GetVersion() == "" {
		t.Fatalf("before EndStreams: %v, %v", out, err)
	}
	f.svc.EndStreams()
	if _, err := st.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("open stream after EndStreams: %v, want Unavailable", err)
	}
	st, err = f.grpc.Lookups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("new stream after EndStreams: %v, want Unavailable", err)
	}
	if _, err := f.grpc.Lookup(ctx, &pb.Application{Name: "ns/shop", User: "ann"}); err != nil {
		t.Fatalf("unary Lookup after EndStreams: %v", err)
	}
}

func TestLookupFallsBackToTheBaselineWhenNoVersionCanServe(t *testing.T) {
	app := shop(0, 0, 100) // only v3 has weight, and it is not ready
	f := start(t, app)
	s, err := f.grpc.Lookup(context.Background(), &pb.Application{Name: "ns/shop", User: "ann"})
	if err != nil {
		t.Fatalf("Lookup with no version able to serve: %v, want the baseline", err)
	}
	if s.GetVersion() != "v1" || s.GetVersionNumber() != "0" || !s.GetFallback() {
		t.Errorf("Lookup = %v, want v1, number 0, fallback", s)
	}
	// Once v3 is ready it takes every user.
	app.Versions[2].Ready = true
	f.apps.set(app)
	s, err = f.grpc.Lookup(context.Background(), &pb.Application{Name: "ns/shop", User: "ann"})
	if err != nil || s.GetVersion() != "v3" || s.GetFallback() {
		t.Errorf("Lookup after v3 is ready = %v, %v; want v3 without fallback", s, err)
	}
}

func TestMetricIsCreditedToTheVersionThatServedTheUser(t *testing.T) {
	f := start(t, shop(100, 0, 0))
	ctx := context.Background()
	s, err := f.grpc.Lookup(ctx, &pb.Application{Name: "ns/shop", User: "ann"})
	if err != nil || s.GetVersion() != "v1" {
		t.Fatalf("Lookup = %v, %v; want v1", s, err)
	}
	f.apps.set(shop(0, 100, 0)) // ann's assignment is now v2
	for _, v := range []*pb.MetricValue{
		{Application: "ns/shop", User: "ann", Name: "revenue", Value: "10", Version: "v1", Id: "served"},
		{Application: "ns/shop", User: "ann", Name: "revenue", Value: "1", Id: "current"}, // Iter8 v1 client: no version
	} {
		if _, err := f.grpc.WriteMetric(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	sum, _ := f.model.Summary(ctx, "ns/shop")
	if got := sum.Versions["v1"].Metrics["revenue"].Transactions.Sum; got != 10 {
		t.Errorf("v1 revenue = %v, want 10 (the write that named v1)", got)
	}
	if got := sum.Versions["v2"].Metrics["revenue"].Transactions.Sum; got != 1 {
		t.Errorf("v2 revenue = %v, want 1 (the write without a version: current assignment)", got)
	}
}

func TestBadInputIsRefusedNamingTheFieldAndNothingIsStored(t *testing.T) {
	f := start(t, shop(50, 50, 0))
	good := func() *pb.MetricValue {
		return &pb.MetricValue{Application: "ns/shop", User: "ann", Name: "revenue", Value: "1", Version: "v1", Id: "x"}
	}
	for _, tt := range abntest.BadWrites(good, "ns", f.now) {
		t.Run(tt.Name, func(t *testing.T) {
			_, err := f.grpc.WriteMetric(context.Background(), tt.Value)
			if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), tt.Field+":") {
				t.Errorf("gRPC WriteMetric: %v, want InvalidArgument starting %q", err, tt.Field+":")
			}
			// The same value in a batch after a good one: refused whole,
			// naming its index.
			_, err = f.grpc.WriteMetrics(context.Background(), &pb.MetricValues{Values: []*pb.MetricValue{good(), tt.Value}})
			if want := "values[1]." + tt.Field + ":"; status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), want) {
				t.Errorf("gRPC WriteMetrics: %v, want InvalidArgument starting %q", err, want)
			}
			code, msg := postJSON(t, f.http+"/v1/metrics", &pb.MetricValues{Values: []*pb.MetricValue{tt.Value}})
			if code != http.StatusBadRequest || !strings.HasPrefix(msg, tt.Field+":") {
				t.Errorf("HTTP POST /v1/metrics: %d %q, want 400 starting %q", code, msg, tt.Field+":")
			}
		})
	}
	t.Run("lookup", func(t *testing.T) {
		for _, tt := range abntest.BadLookups("ns", "ns/shop") {
			_, err := f.grpc.Lookup(context.Background(), tt.In)
			if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), tt.Field+":") {
				t.Errorf("%s: gRPC Lookup: %v, want InvalidArgument starting %q", tt.Name, err, tt.Field+":")
			}
			code, msg := postJSON(t, f.http+"/v1/lookup", tt.In)
			if code != http.StatusBadRequest || !strings.HasPrefix(msg, tt.Field+":") {
				t.Errorf("%s: HTTP POST /v1/lookup: %d %q, want 400 starting %q", tt.Name, code, msg, tt.Field+":")
			}
		}
		// Bodies refused before the service sees them name the body, and
		// the unknown field what the client sent (the field is "name").
		for _, tt := range []struct {
			name, body string
			code       int
			mention    string
		}{
			{"malformed JSON", `{"name": "ns/shop", "user":`, http.StatusBadRequest, ""},
			{"unknown field", `{"application": "ns/shop", "user": "ann"}`, http.StatusBadRequest, `"application"`},
			{"body over the limit", strings.Repeat(" ", maxBody+1), http.StatusRequestEntityTooLarge, ""},
		} {
			code, msg := postBody(t, f.http+"/v1/lookup", tt.body)
			if code != tt.code || !strings.HasPrefix(msg, "body:") || !strings.Contains(msg, tt.mention) {
				t.Errorf("%s: HTTP POST /v1/lookup: %d %q, want %d starting %q and containing %q", tt.name, code, msg, tt.code, "body:", tt.mention)
			}
		}
		if code, _ := get(t, f.http+"/v1/lookup?application=ns/shop&user=ann"); code != http.StatusMethodNotAllowed {
			t.Errorf("HTTP GET /v1/lookup: %d, want 405 (POST only)", code)
		}
	})
	t.Run("batches", func(t *testing.T) {
		if _, err := f.grpc.WriteMetrics(context.Background(), &pb.MetricValues{}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("empty batch: %v, want InvalidArgument", err)
		}
		other := good()
		other.Application = "shop"
		mixed := &pb.MetricValues{Values: []*pb.MetricValue{good(), other}}
		if _, err := f.grpc.WriteMetrics(context.Background(), mixed); status.Code(err) != codes.InvalidArgument ||
			!strings.HasPrefix(status.Convert(err).Message(), "values[1].application:") {
			t.Errorf("batch of two applications: %v, want InvalidArgument on values[1].application", err)
		}
		// One value over the service's limit (MaxBatch, default 256).
		big := &pb.MetricValues{}
		for range f.svc.opts.MaxBatch + 1 {
			big.Values = append(big.Values, good())
		}
		if _, err := f.grpc.WriteMetrics(context.Background(), big); status.Code(err) != codes.InvalidArgument ||
			!strings.HasPrefix(status.Convert(err).Message(), "values:") {
			t.Errorf("batch of %d: %v, want InvalidArgument naming values", len(big.Values), err)
		}
		if code, msg := postBody(t, f.http+"/v1/metrics", `{"values": [`); code != http.StatusBadRequest || !strings.HasPrefix(msg, "body:") {
			t.Errorf("malformed JSON: %d %q, want 400 starting %q", code, msg, "body:")
		}
	})
	// Exposures are stored off Lookup's path, in the order Lookups queue
	// them: once a later good Lookup's exposure (of another application)
	// is stored, any that the refused Lookups queued would have been too.
	sentinel := shop(100, 0, 0)
	sentinel.Name = "sentinel"
	f.apps.set(sentinel)
	if _, err := f.grpc.Lookup(context.Background(), &pb.Application{Name: "ns/sentinel", User: "ann"}); err != nil {
		t.Fatal(err)
	}
	sentinelStored := func() bool {
		sum, _ := f.model.Summary(context.Background(), "ns/sentinel")
		return sum.Versions["v1"] != nil && sum.Versions["v1"].Users == 1
	}
	deadline := time.Now().Add(10 * time.Second)
	for !sentinelStored() {
		if time.Now().After(deadline) {
			t.Fatal("the sentinel's exposure not stored after 10s: did a refused Lookup's exposure fail its batch?")
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	for _, app := range []string{"ns/shop", "ns/nope"} {
		sum, _ := f.model.Summary(context.Background(), app)
		for name, v := range sum.Versions {
			if len(v.Metrics) > 0 {
				t.Errorf("version %s has metrics %v after refused writes only, want none", name, v.Metrics)
			}
			if v.Users > 0 {
				t.Errorf("%s version %s has %d users after refused Lookups and writes only, want none", app, name, v.Users)
			}
		}
	}
}

// postJSON posts m as protojson and returns the status and the error
// message of the answer, if any.
func postJSON(t *testing.T, url string, m proto.Message) (int, string) {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return postBody(t, url, string(b))
}

// postBody posts body as it is, JSON or not, and returns what postJSON
// does.
func postBody(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	return statusAndError(t, resp, err)
}

// get returns the status and the error message of a GET.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	return statusAndError(t, resp, err)
}

// statusAndError reads an answer's status and its {"error": ...} message;
// the message is "" when the body holds none.
func statusAndError(t *testing.T, resp *http.Response, err error) (int, string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Error string }
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error
}

func TestHTTPLookupAndSummary(t *testing.T) {
	f := start(t, shop(100, 0, 0))
	b, _ := protojson.Marshal(&pb.Application{Name: "ns/shop", User: "ann"})
	resp, err := http.Post(f.http+"/v1/lookup", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	var s pb.Session
	if err := protojson.Unmarshal(body, &s); err != nil || s.GetVersion() != "v1" || s.GetVersionNumber() != "0" {
		t.Fatalf("POST /v1/lookup = %s (%v), want v1 number 0", body, err)
	}
	if code, msg := postJSON(t, f.http+"/v1/metrics", &pb.MetricValues{Values: []*pb.MetricValue{
		{Application: "ns/shop", User: "ann", Name: "revenue", Value: "12.5", Version: "v1", Id: "a"},
	}}); code != http.StatusNoContent {
		t.Fatalf("POST /v1/metrics = %d %q, want 204", code, msg)
	}
	resp, err = http.Get(f.http + "/v1/summary?application=ns/shop")
	if err != nil {
		t.Fatal(err)
	}
	var sum ledger.Summary
	err = json.NewDecoder(resp.Body).Decode(&sum)
	_ = resp.Body.Close()
	if err != nil || sum.Versions["v1"].Metrics["revenue"].Transactions.Sum != 12.5 || len(sum.Versions["v1"].Metrics["revenue"].Buckets) != 1 {
		t.Errorf("GET /v1/summary = %+v (%v), want v1 revenue 12.5 in one bucket", sum, err)
	}
	resp, err = http.Get(f.http + "/v1/summary?application=ns/shop&buckets=false")
	if err != nil {
		t.Fatal(err)
	}
	var totals ledger.Summary
	err = json.NewDecoder(resp.Body).Decode(&totals)
	_ = resp.Body.Close()
	if m := totals.Versions["v1"].Metrics["revenue"]; err != nil || m.Transactions.Sum != 12.5 || m.Users.Count != 1 || m.Buckets != nil || m.Histogram.Positive != nil || totals.Versions["v1"].Cohorts != nil {
		t.Errorf("GET /v1/summary&buckets=false = %+v (%v), want v1 revenue 12.5 by one user, no buckets or histogram", totals, err)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/v1/summary?application=ns/nope": 400, "/v1/summary?application=ns/shop&buckets=no": 400} {
		resp, err := http.Get(f.http + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// TestSDKAgainstTheService: 1000 users × 10 values from 8 goroutines
// through the Go SDK: every value stored exactly once, credited to the
// version Lookup gave.
func TestSDKAgainstTheService(t *testing.T) {
	f := start(t, shop(50, 50, 0))
	c, err := client.New(client.Options{Target: f.target, Application: "ns/shop", Baseline: "v1", LookupTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	users := 1000
	if testing.Short() {
		users = 200
	}
	want := map[string]float64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for u := g; u < users; u += 8 {
				user := fmt.Sprintf("user-%d", u)
				a := c.Lookup(context.Background(), user)
				if a.Err != nil || a.Fallback {
					t.Errorf("Lookup(%s) = %+v", user, a)
					return
				}
				for k := range 10 {
					if err := c.WriteMetric(user, a.Version, "revenue", float64(k)); err != nil {
						t.Error(err)
						return
					}
				}
				mu.Lock()
				want[a.Version] += 45
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Sent != uint64(users*10) || st.Dropped != 0 {
		t.Fatalf("SDK stats = %+v, want %d sent and none dropped", st, users*10)
	}
	sum, _ := f.model.Summary(context.Background(), "ns/shop")
	var count int64
	for v, total := range want {
		m := sum.Versions[v].Metrics["revenue"]
		count += m.Transactions.Count
		if m.Transactions.Sum != total {
			t.Errorf("%s revenue = %v, want %v", v, m.Transactions.Sum, total)
		}
	}
	if count != int64(users*10) {
		t.Errorf("values stored = %d, want %d", count, users*10)
	}
}

// TestABatchLimitBelowTheSDKsBatch: a service whose MaxBatch is below the
// SDK's batch size refuses a larger batch naming it, stores a batch at the
// limit, and still gets every value of an SDK client, which splits the
// batches the service refuses.
func TestABatchLimitBelowTheSDKsBatch(t *testing.T) {
	const limit = 8
	f := start(t, shop(50, 50, 0), func(o *Options) { o.MaxBatch = limit })
	batch := func(n int) *pb.MetricValues {
		b := &pb.MetricValues{}
		for i := range n {
			b.Values = append(b.Values, &pb.MetricValue{Application: "ns/shop", User: fmt.Sprintf("u%d", i), Name: "direct", Value: "1", Version: "v1"})
		}
		return b
	}
	if _, err := f.grpc.WriteMetrics(context.Background(), batch(limit+1)); status.Code(err) != codes.InvalidArgument ||
		!strings.HasPrefix(status.Convert(err).Message(), "values:") || !strings.Contains(status.Convert(err).Message(), "more than 8") {
		t.Errorf("batch of %d: %v, want InvalidArgument naming values and the limit 8", limit+1, err)
	}
	if _, err := f.grpc.WriteMetrics(context.Background(), batch(limit)); err != nil {
		t.Errorf("batch of %d, the limit: %v", limit, err)
	}
	c, err := client.New(client.Options{Target: f.target, Application: "ns/shop", Baseline: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		if err := c.WriteMetric(fmt.Sprintf("u%d", i), "v2", "sdk", 1); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The SDK's batches (up to 100) were refused, and it split them.
	if st := c.Stats(); st.Sent != n || st.Dropped != 0 || status.Code(st.LastError) != codes.InvalidArgument ||
		!strings.Contains(status.Convert(st.LastError).Message(), "more than 8") {
		t.Errorf("SDK stats %+v, want %d sent, none dropped, and a batch refused for holding more than 8", st, n)
	}
	sum, err := f.model.Summary(context.Background(), "ns/shop")
	if err != nil {
		t.Fatal(err)
	}
	if got := stored(sum, "v1", "direct"); got != limit {
		t.Errorf("direct values stored: %d, want the %d of the batch at the limit", got, limit)
	}
	if got := stored(sum, "v2", "sdk"); got != n {
		t.Errorf("SDK values stored: %d, want %d", got, n)
	}
}

// stored is the count of a version's metric in a summary; 0 for none.
func stored(sum ledger.Summary, version, metric string) int64 {
	if v := sum.Versions[version]; v != nil && v.Metrics[metric] != nil {
		return v.Metrics[metric].Transactions.Count
	}
	return 0
}

// TestLookupExposesUsers: each user looked up counts once for their
// version, however often they are looked up.
func TestLookupExposesUsers(t *testing.T) {
	f := start(t, shop(100, 0, 0))
	for range 3 {
		for _, u := range []string{"ann", "bob"} {
			if _, err := f.grpc.Lookup(context.Background(), &pb.Application{Name: "ns/shop", User: u}); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		sum, _ := f.model.Summary(context.Background(), "ns/shop")
		if v := sum.Versions["v1"]; v != nil && v.Users == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exposed users = %+v after 10s, want v1 with 2", sum.Versions)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// failingLedger refuses every call, with an error that names a file.
type failingLedger struct{ ledger.Ledger }

var errDisk = errors.New("write /data/abn.db: no space left on device")

func (failingLedger) Record(context.Context, []ledger.Write) error    { return errDisk }
func (failingLedger) Expose(context.Context, []ledger.Exposure) error { return errDisk }
func (failingLedger) Summary(context.Context, string) (ledger.Summary, error) {
	return ledger.Summary{}, errDisk
}
func (failingLedger) Check(context.Context) error { return errDisk }

// TestLedgerFailureIsUnavailableWithoutDetails: clients retry on
// Unavailable and see no file or address; readiness fails.
func TestLedgerFailureIsUnavailableWithoutDetails(t *testing.T) {
	svc, err := New(Options{Apps: apps.Static{"ns/shop": shop(100, 0, 0)}, Ledger: failingLedger{}, Namespace: "ns",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	g := &GRPC{S: svc}
	_, err = g.WriteMetric(context.Background(), &pb.MetricValue{Application: "ns/shop", User: "ann", Name: "revenue", Value: "1", Version: "v1"})
	if status.Code(err) != codes.Unavailable || strings.Contains(err.Error(), "/data") {
		t.Errorf("WriteMetric on a failing ledger: %v, want Unavailable without the file", err)
	}
	if err := svc.Ready(context.Background()); !errors.Is(err, errLedgerUnusable) {
		t.Errorf("Ready on a failing ledger: %v, want %v", err, errLedgerUnusable)
	}
	svc.Drain()
	if err := svc.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("Ready while draining: %v, want shutting down", err)
	}
}

// infiniteSumLedger answers summaries with a sum JSON cannot hold.
type infiniteSumLedger struct{ *ledgertest.Model }

func (infiniteSumLedger) Summary(_ context.Context, app string) (ledger.Summary, error) {
	m := &ledger.MetricSummary{}
	m.Transactions.Sum = math.Inf(1)
	return ledger.Summary{App: app, Versions: map[string]*ledger.VersionSummary{"v1": {Metrics: map[string]*ledger.MetricSummary{"revenue": m}}}}, nil
}

// TestSummaryThatCannotBeEncoded: a summary JSON cannot hold is an error
// with its reason over HTTP (500) and gRPC (Internal), not a success with
// an empty or truncated body.
func TestSummaryThatCannotBeEncoded(t *testing.T) {
	f := start(t, shop(50, 50, 0), func(o *Options) { o.Ledger = infiniteSumLedger{ledgertest.NewModel(ledger.Options{})} })
	if code, msg := get(t, f.http+"/v1/summary?application=ns/shop"); code != http.StatusInternalServerError || !strings.HasPrefix(msg, "encode summary:") {
		t.Errorf("HTTP GET /v1/summary: %d %q, want 500 starting %q", code, msg, "encode summary:")
	}
	if _, err := f.grpc.GetMetrics(context.Background(), &pb.MetricRequest{Application: "ns/shop"}); status.Code(err) != codes.Internal {
		t.Errorf("gRPC GetMetrics: %v, want Internal", err)
	}
}

// flakyLedger fails Expose, and its health check, each until told
// otherwise.
type flakyLedger struct {
	*ledgertest.Model
	fail      atomic.Bool
	failCheck atomic.Bool
}

func (f *flakyLedger) Check(ctx context.Context) error {
	if f.failCheck.Load() {
		return errDisk
	}
	return f.Model.Check(ctx)
}

func (f *flakyLedger) Expose(ctx context.Context, xs []ledger.Exposure) error {
	if f.fail.Load() {
		return errDisk
	}
	return f.Model.Expose(ctx, xs)
}

// TestReadyzFollowsTheLedger: GET /readyz, the chart's readiness probe,
// answers 200 while the ledger can store, 503 while it cannot (so that the
// pod leaves the Service's endpoints) without the cause, which is logged
// once however many probes fail, 200 again once it recovers, and 503 while
// draining. Ready is computed on each probe: no cache to wait for.
func TestReadyzFollowsTheLedger(t *testing.T) {
	l := &flakyLedger{Model: ledgertest.NewModel(ledger.Options{})}
	svc, logs := runWithWarnings(t, l)
	hs := httptest.NewServer(Handler(svc))
	t.Cleanup(hs.Close)
	probe := func(when string, wantCode int, wantPrefix string) {
		t.Helper()
		code, msg := get(t, hs.URL+"/readyz")
		if code != wantCode || !strings.HasPrefix(msg, wantPrefix) {
			t.Errorf("GET /readyz %s: %d %q, want %d starting %q", when, code, msg, wantCode, wantPrefix)
		}
	}
	probe("with a usable ledger", http.StatusOK, "")
	l.failCheck.Store(true)
	for range 3 {
		probe("while the ledger's check fails", http.StatusServiceUnavailable, "not ready: "+errLedgerUnusable.Error())
	}
	if _, msg := get(t, hs.URL+"/readyz"); strings.Contains(msg, "/data") {
		t.Errorf("GET /readyz while the ledger's check fails: %q, want no file named", msg)
	}
	if n := strings.Count(logs.String(), errDisk.Error()); n != 1 {
		t.Errorf("the ledger's cause logged %d times over 4 failed probes, want once; logs:\n%s", n, logs)
	}
	l.failCheck.Store(false)
	probe("once the ledger recovered", http.StatusOK, "")
	svc.Drain()
	probe("while draining", http.StatusServiceUnavailable, "not ready: shutting down")
}

// TestExposureThatFailedIsSentAgain: an exposure the ledger refused is not
// remembered as sent, so the user's next Lookup records it.
func TestExposureThatFailedIsSentAgain(t *testing.T) {
	l := &flakyLedger{Model: ledgertest.NewModel(ledger.Options{})}
	l.fail.Store(true)
	svc, err := New(Options{Apps: apps.Static{"ns/shop": shop(100, 0, 0)}, Ledger: l, Namespace: "ns",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, svc)
	users := func() int64 {
		sum, _ := l.Summary(context.Background(), "ns/shop")
		if v := sum.Versions["v1"]; v != nil {
			return v.Users
		}
		return 0
	}
	if _, err := svc.Lookup("ns/shop", "ann"); err != nil {
		t.Fatal(err)
	}
	// Wait until the failed batch is forgotten: a new Lookup queues again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		svc.exposed.mu.Lock()
		n := len(svc.exposed.recent)
		svc.exposed.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the failed exposure is still in the recent set after 10s")
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	l.fail.Store(false)
	if _, err := svc.Lookup("ns/shop", "ann"); err != nil {
		t.Fatal(err)
	}
	for users() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("users = %d after the ledger recovered, want 1", users())
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// TestRetentionForgetsIdleApplications: with a retention, an application
// nothing was written or exposed for that long is forgotten.
func TestRetentionForgetsIdleApplications(t *testing.T) {
	model := ledgertest.NewModel(ledger.Options{})
	svc, err := New(Options{Apps: apps.Static{"ns/shop": shop(100, 0, 0)}, Ledger: model, Namespace: "ns",
		Retention: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.WriteMetrics(context.Background(), []Value{{Application: "ns/shop", User: "ann", Metric: "revenue", Value: "3", Version: "v1"}}); err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, svc)
	deadline := time.Now().Add(10 * time.Second)
	for {
		sum, _ := model.Summary(context.Background(), "ns/shop")
		if len(sum.Versions) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s with a retention of 20ms: %d versions, want the application forgotten", len(sum.Versions))
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}
