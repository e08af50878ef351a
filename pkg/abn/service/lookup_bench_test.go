package service

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	pb "github.com/iter8-tools/iter8/abn/grpc"
)

// BenchmarkLookupGRPC: Lookup over loopback gRPC from parallel clients
// (GOMAXPROCS × -cpu goroutines), the service and the clients sharing the
// machine's cores.
func BenchmarkLookupGRPC(b *testing.B) {
	f := start(b, shop(50, 30, 20))
	var n atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb_ *testing.PB) {
		for pb_.Next() {
			user := "user-" + strconv.FormatInt(n.Add(1), 10)
			if _, err := f.grpc.Lookup(context.Background(), &pb.Application{Name: "ns/shop", User: user}); err != nil {
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
