package redisledger

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/pkg/abn/ledger/ledgertest"
	"github.com/iter8-tools/iter8/test/redistest"
)

// open opens a ledger on srv, failing t if it cannot.
func open(t testing.TB, srv *redistest.Server, opts ledger.Options) *Ledger {
	t.Helper()
	l, err := Open(context.Background(), Options{Addr: srv.Addr(), Ledger: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// TestConformance runs the ledger's contract on a fresh server per
// storage, at the acceptance scale (about 2 s even under -race).
func TestConformance(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T, opts ledger.Options) ledgertest.Opener {
		srv := redistest.Start(t)
		return func() (ledger.Ledger, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return Open(ctx, Options{Addr: srv.Addr(), Ledger: opts})
		}
	}, ledgertest.Scale{Users: 1000})
}

func nan() float64 { return math.NaN() }
func inf() float64 { return math.Inf(1) }
