package abnfrontend_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

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
	model := ledgertest.NewModel(ledger.Options{})
	shop := apps.Static{"ns/shop": {Namespace: "ns", Name: "shop", Versions: []apps.Version{
		{Name: "v1", Weight: 50, Ready: true}, {Name: "v2", Weight: 50, Ready: true},
	}}}
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

	backends := map[string]string{}
	for _, v := range []string{"v1", "v2"} {
		srv := httptest.NewServer(sampleapp.NewHandler(sampleapp.Options{Version: v}))
		t.Cleanup(srv.Close)
		backends[v] = srv.URL
	}
	c, err := client.New(client.Options{Target: lis.Addr().String(), Application: "ns/shop", Baseline: "v1", LookupTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
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
