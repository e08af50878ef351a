package abn_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/iter8-tools/iter8/abn/grpc"
	"github.com/iter8-tools/iter8/pkg/abn/abntest"
	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/test/testbed"
)

// badInput sends bad Lookups and writes to every address of the running
// service: writes over gRPC (alone, and in a batch after a good value) and
// HTTP, Lookups over gRPC (unary and streamed) and HTTP. Each must be
// refused naming its field (InvalidArgument, 400), and none of it stored.
// They go to an app of their own (bad), which holds only what the test
// stores on purpose: a sentinel user per address before the bad input, and
// a sentinel value after it. A refused Lookup's exposure would be queued
// in the exposer (one queue a replica, for all apps) and stored later, so
// the check waits for a barrier: a user per address looked up after the
// bad input in a second app (barrier). Once those are counted, anything
// queued before them has been stored.
func badInput(t *testing.T, addrs []string) {
	const bad, barrier = "bad", "barrier"
	for _, rel := range []string{bad, barrier} {
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if o := testbed.Run(t, ctx, env.Helm(ctx, "uninstall", rel, "-n", ns, "--ignore-not-found", "--wait", "--timeout", "1m")); o.Code != 0 {
				t.Errorf("helm uninstall %s: %s", rel, o)
			}
		}()
		helm(t, "install", rel, releaseChart, "-n", ns, "-f", appValues(t, 50, 50),
			"--set", "gates.readiness.enabled=false", "--wait", "--timeout", "2m")
	}
	key := ns + "/" + bad

	clients := make([]pb.ABNClient, len(addrs))
	for i, addr := range addrs {
		conn, err := grpc.NewClient(net.JoinHostPort(addr, "50051"), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		clients[i] = pb.NewABNClient(conn)
	}
	ctx := t.Context()
	// lookUp looks a user per address up in app until each is served (the
	// service sees a new route within seconds), and waits until app
	// counts want users; more fails at once.
	lookUp := func(app, prefix string, want int64) {
		t.Helper()
		for i, c := range clients {
			eventually(t, 30*time.Second, fmt.Sprintf("%s served by %s", app, addrs[i]), func() (bool, string) {
				s, err := c.Lookup(ctx, &pb.Application{Name: app, User: fmt.Sprintf("%s-%d", prefix, i)})
				if err != nil {
					return false, err.Error()
				}
				return !s.Fallback && s.Version != "", fmt.Sprintf("%+v", s)
			})
		}
		eventually(t, 30*time.Second, fmt.Sprintf("%d users of %s counted", want, app), func() (bool, string) {
			n := totalUsers(summary(t, addrs[0], app))
			if n > want {
				t.Fatalf("%s counts %d users, want %d", app, n, want)
			}
			return n == want, fmt.Sprintf("%d users", n)
		})
	}
	n := int64(len(addrs))
	lookUp(key, "sentinel", n)
	lookUp(ns+"/"+barrier, "ready", n)

	now := time.Now()
	good := func() *pb.MetricValue {
		return &pb.MetricValue{Application: key, User: "ann", Name: "refused", Value: "1", Version: "v1", Id: "bad-input"}
	}
	writes := abntest.BadWrites(good, ns, now)
	lookups := abntest.BadLookups(ns, key)
	for i, c := range clients {
		web := "http://" + net.JoinHostPort(addrs[i], "8080")
		for _, tt := range writes {
			_, err := c.WriteMetric(ctx, tt.Value)
			if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), tt.Field+":") {
				t.Errorf("%s: %s: gRPC WriteMetric: %v, want InvalidArgument starting %q", addrs[i], tt.Name, err, tt.Field+":")
			}
			_, err = c.WriteMetrics(ctx, &pb.MetricValues{Values: []*pb.MetricValue{good(), tt.Value}})
			if want := "values[1]." + tt.Field + ":"; status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), want) {
				t.Errorf("%s: %s: gRPC WriteMetrics after a good value: %v, want InvalidArgument starting %q", addrs[i], tt.Name, err, want)
			}
			code, msg := postProto(t, web+"/v1/metrics", &pb.MetricValues{Values: []*pb.MetricValue{good(), tt.Value}})
			if want := "values[1]." + tt.Field + ":"; code != http.StatusBadRequest || !strings.HasPrefix(msg, want) {
				t.Errorf("%s: %s: HTTP POST /v1/metrics after a good value: %d %q, want 400 starting %q", addrs[i], tt.Name, code, msg, want)
			}
		}
		for _, tt := range lookups {
			_, err := c.Lookup(ctx, &pb.Application{Name: tt.In.Name, User: tt.In.User})
			if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), tt.Field+":") {
				t.Errorf("%s: %s: gRPC Lookup: %v, want InvalidArgument starting %q", addrs[i], tt.Name, err, tt.Field+":")
			}
			code, msg := postProto(t, web+"/v1/lookup", tt.In)
			if code != http.StatusBadRequest || !strings.HasPrefix(msg, tt.Field+":") {
				t.Errorf("%s: %s: HTTP POST /v1/lookup: %d %q, want 400 starting %q", addrs[i], tt.Name, code, msg, tt.Field+":")
			}
		}
		// The stream answers a refused user in its Session, in order.
		stream, err := c.Lookups(ctx)
		if err != nil {
			t.Fatalf("%s: Lookups: %v", addrs[i], err)
		}
		if err := stream.Send(&pb.LookupBatch{Application: key, Users: []string{"", strings.Repeat("u", ledger.MaxUserLength+1)}}); err != nil {
			t.Fatalf("%s: Lookups: %v", addrs[i], err)
		}
		b, err := stream.Recv()
		if err != nil {
			t.Fatalf("%s: Lookups: %v", addrs[i], err)
		}
		if len(b.Sessions) != 2 || !strings.HasPrefix(b.Sessions[0].Error, "user:") || !strings.HasPrefix(b.Sessions[1].Error, "user:") {
			t.Errorf("%s: Lookups of an empty and an overlong user: %v, want two sessions with errors starting %q", addrs[i], b.Sessions, "user:")
		}
		_ = stream.CloseSend()
		if code, msg := postBody(t, web+"/v1/metrics", `{"values": [`); code != http.StatusBadRequest || !strings.HasPrefix(msg, "body:") {
			t.Errorf("%s: malformed JSON: %d %q, want 400 starting %q", addrs[i], code, msg, "body:")
		}
	}

	lookUp(ns+"/"+barrier, "barrier", 2*n)
	if _, err := clients[0].WriteMetric(ctx, &pb.MetricValue{Application: key, User: "sentinel-0", Name: "sentinel", Value: "1"}); err != nil {
		t.Fatal(err)
	}
	for _, addr := range addrs {
		s := summary(t, addr, key)
		if got := totalUsers(s); got != n {
			t.Errorf("summary from %s: %d users, want the %d sentinels only", addr, got, n)
		}
		var metrics []string
		for _, v := range s.Versions {
			for m := range v.Metrics {
				metrics = append(metrics, m)
			}
		}
		if !slices.Equal(metrics, []string{"sentinel"}) {
			t.Errorf("summary from %s: metrics %v, want the sentinel's only", addr, metrics)
		}
	}
}
