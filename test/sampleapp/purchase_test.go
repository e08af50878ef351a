package sampleapp

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"testing"
)

// TestHandlerConversion: over 10,000 users the share whose answers carry
// X-Purchase is the conversion within ±1.5 points, the same user gets the
// same answer twice, and the answer is what Purchase predicts.
func TestHandlerConversion(t *testing.T) {
	const users = 10000
	for _, p := range []float64{0.1, 0.2} {
		for _, version := range []string{"v1", "v2"} {
			h := NewHandler(Options{Version: version, Conversion: p})
			converted := 0
			for u := range users {
				user := fmt.Sprintf("user-%d", u)
				path := "/buy?user=" + user
				first, _ := serveInProcess(context.Background(), h, path)
				again, _ := serveInProcess(context.Background(), h, path)
				got, got2 := first.Header().Get(PurchaseHeader), again.Header().Get(PurchaseHeader)
				if got != got2 {
					t.Fatalf("%s conversion %v GET %s twice: got X-Purchase %q then %q, want the same", version, p, path, got, got2)
				}
				want := ""
				if a, ok := Purchase(version, user, p); ok {
					want = strconv.Itoa(a)
				}
				if got != want {
					t.Fatalf("%s conversion %v GET %s: got X-Purchase %q, want %q (Purchase)", version, p, path, got, want)
				}
				if got == "" {
					continue
				}
				converted++
				if a, err := strconv.Atoi(got); err != nil || a < MinAmount || a > MaxAmount {
					t.Fatalf("%s conversion %v GET %s: got X-Purchase %q, want a whole number in [%d, %d]", version, p, path, got, MinAmount, MaxAmount)
				}
			}
			if share := float64(converted) / users; math.Abs(share-p) > 0.015 {
				t.Errorf("%s conversion %v: %d of %d users converted (%.4f), want %v ± 0.015", version, p, converted, users, share, p)
			}
		}
	}
}

// TestHandlerNoPurchase: no X-Purchase at conversion 0, without a user, or
// on an injected error, even for users who would convert.
func TestHandlerNoPurchase(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		path string
	}{
		{"conversion 0", Options{Version: "v1"}, "/buy?user=%s"},
		{"no user", Options{Version: "v1", Conversion: 1}, "/buy"},
		{"empty user", Options{Version: "v1", Conversion: 1}, "/buy?user="},
		{"injected error", Options{Version: "v1", Conversion: 1, ErrorRate: 1}, "/buy?user=%s"},
		{"health", Options{Version: "v1", Conversion: 1}, HealthPath + "?user=%s"},
	}
	for _, tt := range tests {
		h := NewHandler(tt.o)
		for u := range 1000 {
			path := tt.path
			if path[len(path)-2:] == "%s" {
				path = fmt.Sprintf(path, fmt.Sprintf("user-%d", u))
			}
			rec, _ := serveInProcess(context.Background(), h, path)
			if got := rec.Header().Get(PurchaseHeader); got != "" {
				t.Fatalf("%s: GET %s: got X-Purchase %q, want none", tt.name, path, got)
			}
		}
	}
}

// TestHandlerConversionAnyPath: the header does not depend on the path.
func TestHandlerConversionAnyPath(t *testing.T) {
	h := NewHandler(Options{Version: "v2", Conversion: 1})
	for _, path := range []string{"/buy?user=ann", "/?user=ann", "/a/b?x=1&user=ann"} {
		rec, _ := serveInProcess(context.Background(), h, path)
		a, _ := Purchase("v2", "ann", 1)
		if got, want := rec.Header().Get(PurchaseHeader), strconv.Itoa(a); got != want {
			t.Errorf("GET %s: got X-Purchase %q, want %q", path, got, want)
		}
	}
}

func TestPurchase(t *testing.T) {
	// Conversion 0 and 1 are nobody and everybody; a user who converts at
	// 0.1 converts at 0.2 for the same amount; versions draw independently.
	both, onlyV1 := 0, 0
	for u := range 10000 {
		user := strconv.Itoa(u)
		if _, ok := Purchase("v1", user, 0); ok {
			t.Fatalf("Purchase(v1, %s, 0): got a purchase, want none", user)
		}
		a1, ok := Purchase("v1", user, 1)
		if !ok {
			t.Fatalf("Purchase(v1, %s, 1): got none, want a purchase", user)
		}
		if a, ok := Purchase("v1", user, 0.1); ok {
			if b, ok2 := Purchase("v1", user, 0.2); !ok2 || a != b || a != a1 {
				t.Fatalf("Purchase(v1, %s): %d at 0.1, (%d, %v) at 0.2, %d at 1: want the same purchase", user, a, b, ok2, a1)
			}
		}
		_, ok1 := Purchase("v1", user, 0.5)
		_, ok2 := Purchase("v2", user, 0.5)
		if ok1 && ok2 {
			both++
		}
		if ok1 && !ok2 {
			onlyV1++
		}
	}
	// Independent draws: about a quarter each.
	if both < 2300 || both > 2700 || onlyV1 < 2300 || onlyV1 > 2700 {
		t.Errorf("at 0.5 over 10000 users: %d convert on both versions and %d on v1 only, want about 2500 each", both, onlyV1)
	}
}
