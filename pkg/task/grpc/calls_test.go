package grpc

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/iter8-tools/iter8/test/greeter"
)

// TestRunStreams loads each kind of streaming method: a stream is one call,
// a client stream sends every message of the data in turn, a server stream
// sends the message that a unary call would.
func TestRunStreams(t *testing.T) {
	tests := []struct {
		call string
		data string
		// names the greeter must have received over all calls.
		names map[string]int
	}{
		{greeter.SayHelloToAll, `[{name: a}, {name: b}, {name: "c{{.RequestNumber}}"}]`,
			map[string]int{"a": 4, "b": 4, "c0": 1, "c1": 1, "c2": 1, "c3": 1}},
		{greeter.SayHelloThrice, `[{name: x}, {name: "y"}]`, map[string]int{"x": 2, "y": 2}},
		{greeter.Chat, `[{name: a}, {name: b}]`, map[string]int{"a": 4, "b": 4}},
	}
	for _, tt := range tests {
		for _, describe := range []string{"reflection", "protoset: greeter.protoset"} {
			t.Run(tt.call+" with "+describe, func(t *testing.T) {
				var seen observed
				s := startGreeter(t, greeter.Options{Observe: seen.observe})
				f := mustDecode(t, fmt.Sprintf("{host: %q, call: %s, insecure: true, total: 4, concurrency: 2, data: %s}",
					s.Addr(), tt.call, tt.data), nil)
				if describe != "reflection" {
					f = mustDecode(t, fmt.Sprintf("{host: %q, call: %s, insecure: true, total: 4, concurrency: 2, data: %s, %s}",
						s.Addr(), tt.call, tt.data, describe), nil)
				}
				r, err := f.run(t, t.Context())
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				checkCounts(t, r, "", "grpc", 4, 0)
				checkLatencies(t, r, "", "grpc")
				if s.Calls() != 4 {
					t.Errorf("the greeter got %d calls, want 4 streams", s.Calls())
				}
				got := map[string]int{}
				for _, c := range seen.all() {
					got[c.Name]++
				}
				if !maps.Equal(got, tt.names) {
					t.Errorf("the greeter received names %v, want %v", got, tt.names)
				}
			})
		}
	}
}

// TestRunStreamErrorsAreMetrics: a stream that ends with an error status is
// a failed call.
func TestRunStreamErrorsAreMetrics(t *testing.T) {
	s := startGreeter(t, greeter.Options{ErrorRate: 1, ErrorCode: codes.ResourceExhausted})
	for _, call := range []string{greeter.SayHelloToAll, greeter.SayHelloThrice, greeter.Chat} {
		f := mustDecode(t, fmt.Sprintf("{host: %q, call: %s, insecure: true, total: 3, data: [{name: a}, {name: b}]}", s.Addr(), call), nil)
		r, err := f.run(t, t.Context())
		if err != nil {
			t.Fatalf("%s: Run: %v, want success with errors in the metrics", call, err)
		}
		checkCounts(t, r, "", "grpc", 3, 3)
	}
}

// TestRunMetadataTemplatesAndBinary: metadata templates are expanded per
// call, and -bin values are sent decoded from base64, as ghz sends them.
func TestRunMetadataTemplatesAndBinary(t *testing.T) {
	var seen observed
	s := startGreeter(t, greeter.Options{Observe: seen.observe})
	f := mustDecode(t, fmt.Sprintf(`{host: %q, call: %s, insecure: true, total: 6, concurrency: 2, connections: 2,
		metadata: {x-n: "{{.RequestNumber}}", x-method: "{{.MethodName}}", x-raw-bin: aGk=}}`, s.Addr(), greeter.SayHello), nil)
	if _, err := f.run(t, t.Context()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	numbers := map[string]bool{}
	for _, c := range seen.all() {
		numbers[c.Metadata.Get("x-n")[0]] = true
		if m, raw := c.Metadata.Get("x-method"), c.Metadata.Get("x-raw-bin"); len(m) != 1 || m[0] != "SayHello" || len(raw) != 1 || raw[0] != "hi" {
			t.Errorf("the greeter saw x-method %q and x-raw-bin %q, want SayHello and hi", m, raw)
		}
	}
	if want := map[string]bool{"0": true, "1": true, "2": true, "3": true, "4": true, "5": true}; !maps.Equal(numbers, want) {
		t.Errorf("the greeter saw request numbers %v, want 0 to 5 once each", numbers)
	}
}

// TestRunLargeAnswers: answers above grpc-go's default 4 MiB limit arrive,
// as they did with ghz.
func TestRunLargeAnswers(t *testing.T) {
	s := startGreeter(t, greeter.Options{})
	// Templates run over the data's JSON text, where a string's quotes are
	// escaped: a raw string (in backquotes) needs none.
	f := mustDecode(t, fmt.Sprintf("{host: %q, call: %s, insecure: true, total: 2, concurrency: 1, data: {name: '{{repeat 5000000 `x`}}'}}",
		s.Addr(), greeter.SayHello), nil)
	r, err := f.run(t, t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkCounts(t, r, "", "grpc", 2, 0)
}

// TestRunReflectionCarriesMetadata: a server that wants a header on every
// call, reflection's included, gets it, with templates expanded.
func TestRunReflectionCarriesMetadata(t *testing.T) {
	s := startGreeter(t, greeter.Options{Require: [2]string{"authorization", "Bearer secret-token"}})
	f := mustDecode(t, fmt.Sprintf(`{host: %q, call: %s, insecure: true, total: 3,
		metadata: {authorization: "Bearer secret-token", x-request-id: "{{.UUID}}", "x-w-{{.WorkerID}}": "1"}}`, s.Addr(), greeter.SayHello), nil)
	r, err := f.run(t, t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkCounts(t, r, "", "grpc", 3, 0)

	f = mustDecode(t, fmt.Sprintf(`{host: %q, call: %s, insecure: true, total: 3}`, s.Addr(), greeter.SayHello), nil)
	if _, err := f.run(t, t.Context()); err == nil || !strings.Contains(err.Error(), "Unauthenticated") {
		t.Errorf("Run without the header: %v, want reflection refused as Unauthenticated", err)
	}
}
