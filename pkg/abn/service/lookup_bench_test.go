package service

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/abn/client"
	pb "github.com/iter8-tools/iter8/abn/grpc"
)

// BenchmarkLookupGRPC: one unary Lookup call each, from parallel clients
// (32 × GOMAXPROCS goroutines), the service and the clients sharing the
// machine's cores.
func BenchmarkLookupGRPC(b *testing.B) {
	f := start(b, shop(50, 30, 20))
	parallelLookups(b, func(user string) error {
		_, err := f.grpc.Lookup(context.Background(), &pb.Application{Name: "ns/shop", User: user})
		return err
	})
}

// BenchmarkLookupSDK: the Go SDK's Lookup from parallel callers, which
// share one stream and send the Lookups that wait in one message.
func BenchmarkLookupSDK(b *testing.B) {
	f := start(b, shop(50, 30, 20))
	c, err := client.New(client.Options{Target: f.target, Application: "ns/shop", Baseline: "v1", LookupTimeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = c.Close(context.Background()) }()
	parallelLookups(b, func(user string) error {
		if a := c.Lookup(context.Background(), user); a.Err != nil || a.Fallback {
			return fmt.Errorf("Lookup(%s) = %+v", user, a)
		}
		return nil
	})
}

// parallelLookups calls lookup with a new user each time from 32 ×
// GOMAXPROCS goroutines and reports lookups/s.
func parallelLookups(b *testing.B, lookup func(user string) error) {
	var n atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(p *testing.PB) {
		for p.Next() {
			if err := lookup("user-" + strconv.FormatInt(n.Add(1), 10)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}

// BenchmarkLookup: the service's own work per Lookup, without gRPC.
func BenchmarkLookup(b *testing.B) {
	f := start(b, shop(50, 30, 20))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := f.svc.Lookup("ns/shop", "user-"+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
}
