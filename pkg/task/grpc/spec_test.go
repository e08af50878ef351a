package grpc

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/iter8-tools/iter8/pkg/task/load"
	"github.com/iter8-tools/iter8/test/greeter"
)

func ptr[T any](v T) *T { return &v }

// defaults is the Config of a task that sets only host and call.
func defaults(eps ...Endpoint) Config {
	return Config{
		Endpoints:   eps,
		Total:       DefaultTotal,
		Timeout:     DefaultTimeout,
		Percentiles: []float64{50, 75, 90, 95, 99, 99.9},
		Workers:     1,
	}
}

const hello = "helloworld.Greeter/SayHello"

func ep(version, name, host string) Endpoint {
	return Endpoint{Target: load.Target{Name: name, Version: version}, Host: host, Call: hello, Data: []byte("{}"),
		Metadata: map[string]string{}, Concurrency: DefaultConcurrency, Connections: DefaultConnections}
}

func TestDecodeValid(t *testing.T) {
	const hc = "call: " + hello + "\n"
	tests := []struct {
		name     string
		with     string
		versions []string
		want     Config
		// wantProtoset: Config.Protoset must be set (it is compared apart).
		wantProtoset bool
		// metrics that the Catalog must list, per version, and ones it
		// must not.
		has, hasNot map[string][]string
	}{{
		name: "host and call",
		with: hc + `host: 127.0.0.1:50051`,
		want: defaults(ep("", "", "127.0.0.1:50051")),
		has: map[string][]string{"": {
			"grpc/request-count", "grpc/error-count", "grpc/error-rate",
			"grpc/latency-mean", "grpc/latency-stddev", "grpc/latency-min", "grpc/latency-max",
			"grpc/latency-p50", "grpc/latency-p75", "grpc/latency-p90", "grpc/latency-p95", "grpc/latency-p99", "grpc/latency-p99.9",
		}},
		hasNot: map[string][]string{"": {"grpc/latency-p99.99", "grpc/latency", "grpc-/request-count", "http/request-count"}},
	}, {
		name: "call with a dot before the method, and a DNS host",
		with: "{host: 'greeter.default.svc:8080', call: helloworld.Greeter.SayHello}",
		want: defaults(ep("", "", "greeter.default.svc:8080")),
	}, {
		name: "call of a service without a package",
		with: "{host: '[::1]:1', call: Greeter/SayHello}",
		want: func() Config {
			e := ep("", "", "[::1]:1")
			e.Call = "Greeter/SayHello"
			return defaults(e)
		}(),
	}, {
		name:     "host of one named version",
		with:     hc + "host: 127.0.0.1:1\nversion: canary",
		versions: []string{"stable", "canary"},
		want:     defaults(ep("canary", "", "127.0.0.1:1")),
		has:      map[string][]string{"canary": {"grpc/request-count", "grpc/latency-p99.9"}},
		hasNot:   map[string][]string{"stable": {"grpc/request-count"}},
	}, {
		name: "every setting, with endpoints that override them",
		with: hc + `
data: {name: task}
metadata: {x-team: a, x-env: task}
rps: 20.5
concurrency: 8
connections: 2
duration: 3s
timeout: 250ms
insecure: true
endpoints:
- host: 127.0.0.1:1
  version: v1
- host: 127.0.0.1:2
  version: v2
  call: helloworld.Greeter/SayGoodbye
  data: [{name: a}, {name: b}]
  metadata: {x-env: v2}
  rps: 0
  concurrency: 4
  connections: 4
`,
		versions: []string{"v1", "v2"},
		want: Config{
			Endpoints: []Endpoint{
				{Target: load.Target{Version: "v1"}, Host: "127.0.0.1:1", Call: hello, Data: []byte(`{"name":"task"}`),
					Metadata: map[string]string{"x-team": "a", "x-env": "task"}, RPS: 20.5, Concurrency: 8, Connections: 2},
				{Target: load.Target{Version: "v2"}, Host: "127.0.0.1:2", Call: "helloworld.Greeter/SayGoodbye", Data: []byte(`[{"name":"a"},{"name":"b"}]`),
					Metadata: map[string]string{"x-team": "a", "x-env": "v2"}, RPS: 0, Concurrency: 4, Connections: 4},
			},
			Duration: 3 * time.Second, Timeout: 250 * time.Millisecond,
			TLS:         TLS{Insecure: true},
			Percentiles: []float64{50, 75, 90, 95, 99, 99.9},
			Workers:     1,
		},
		has: map[string][]string{"v1": {"grpc/request-count", "grpc/latency-p50"}, "v2": {"grpc/request-count", "grpc/latency-p50"}},
	}, {
		name: "named endpoints",
		with: hc + `
endpoints:
- {name: home, host: "127.0.0.1:1", version: v1}
- {name: bye_2, host: "127.0.0.1:1", version: v1, call: helloworld.Greeter/SayGoodbye}
- {name: home, host: "127.0.0.1:2", version: v2}
`,
		versions: []string{"v1", "v2"},
		want: func() Config {
			bye := ep("v1", "bye_2", "127.0.0.1:1")
			bye.Call = "helloworld.Greeter/SayGoodbye"
			return defaults(ep("v1", "home", "127.0.0.1:1"), bye, ep("v2", "home", "127.0.0.1:2"))
		}(),
		has: map[string][]string{
			"v1": {"grpc/request-count", "grpc-home/request-count", "grpc-home/latency-p99.9", "grpc-bye_2/error-rate"},
			"v2": {"grpc/request-count", "grpc-home/latency-max"},
		},
		hasNot: map[string][]string{"v2": {"grpc-bye_2/request-count"}},
	}, {
		name: "one endpoint of the only version needs no name or version",
		with: hc + `endpoints: [{host: "127.0.0.1:1"}]`,
		want: defaults(ep("", "", "127.0.0.1:1")),
	}, {
		name: "extra percentiles are sorted and deduplicated",
		with: hc + "host: 127.0.0.1:1\npercentiles: [99.99, 50, 42, 42.5]",
		want: func() Config {
			c := defaults(ep("", "", "127.0.0.1:1"))
			c.Percentiles = []float64{42, 42.5, 50, 75, 90, 95, 99, 99.9, 99.99}
			return c
		}(),
		has: map[string][]string{"": {"grpc/latency-p42", "grpc/latency-p42.5", "grpc/latency-p99.99"}},
	}, {
		name: "total",
		with: hc + "host: 127.0.0.1:1\ntotal: 7",
		want: func() Config {
			c := defaults(ep("", "", "127.0.0.1:1"))
			c.Total = 7
			return c
		}(),
	}, {
		name: "skipVerify",
		with: hc + "host: 127.0.0.1:1\nskipVerify: true",
		want: func() Config {
			c := defaults(ep("", "", "127.0.0.1:1"))
			c.TLS.SkipVerify = true
			return c
		}(),
	}, {
		name: "protoFile, with data that fits and data with templates",
		with: hc + "host: 127.0.0.1:1\nprotoFile: greeter.proto\ndata: [{name: x}, {name: '{{.RequestNumber}}'}]",
		want: func() Config {
			e := ep("", "", "127.0.0.1:1")
			e.Data = []byte(`[{"name":"x"},{"name":"{{.RequestNumber}}"}]`)
			return defaults(e)
		}(),
		wantProtoset: true,
	}, {
		name:         "protoFile in a folder",
		with:         hc + "host: 127.0.0.1:1\nprotoFile: protos/greeter.proto",
		want:         defaults(ep("", "", "127.0.0.1:1")),
		wantProtoset: true,
	}, {
		name: "protoFile with imports from importPaths and the well-known types",
		with: "{host: '127.0.0.1:1', call: app.App/Ping, protoFile: imports/main.proto, importPaths: [shared], data: {count: 3}}",
		want: func() Config {
			e := ep("", "", "127.0.0.1:1")
			e.Call, e.Data = "app.App/Ping", []byte(`{"count":3}`)
			return defaults(e)
		}(),
		wantProtoset: true,
	}, {
		name:         "protoset",
		with:         hc + "host: 127.0.0.1:1\nprotoset: greeter.protoset",
		want:         defaults(ep("", "", "127.0.0.1:1")),
		wantProtoset: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, errs := decode(t, tt.with, tt.versions, readFile)
			if len(errs) > 0 {
				t.Fatalf("Decode(%s) errors: %v", tt.with, errs)
			}
			got := f.task.Config
			if (got.Protoset != nil) != tt.wantProtoset {
				t.Errorf("Decode(%s): Protoset set = %v, want %v", tt.with, got.Protoset != nil, tt.wantProtoset)
			}
			got.Protoset = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode(%s) config:\n got %s\nwant %s", tt.with, describeConfig(got), describeConfig(tt.want))
			}
			for v, ms := range tt.has {
				for _, m := range ms {
					if !f.catalog.Has(v, m) {
						t.Errorf("Decode(%s): Catalog.Has(%q, %q) = false, want true; known %v", tt.with, v, m, f.catalog.Known())
					}
				}
			}
			for v, ms := range tt.hasNot {
				for _, m := range ms {
					if f.catalog.Has(v, m) {
						t.Errorf("Decode(%s): Catalog.Has(%q, %q) = true, want false", tt.with, v, m)
					}
				}
			}
		})
	}
}

func describeConfig(c Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{total=%d d=%v timeout=%v tls=%+v pcts=%v protoset=%d bytes endpoints:",
		c.Total, c.Duration, c.Timeout, c.TLS, c.Percentiles, len(c.Protoset))
	for _, e := range c.Endpoints {
		fmt.Fprintf(&b, " {name=%q version=%q host=%s call=%s data=%s md=%v rps=%v conc=%d conns=%d}",
			e.Name, e.Version, e.Host, e.Call, e.Data, e.Metadata, e.RPS, e.Concurrency, e.Connections)
	}
	return b.String() + "}"
}

func TestDecodeProtosetHoldsTheImports(t *testing.T) {
	f := mustDecode(t, "{host: '127.0.0.1:1', call: app.App/Ping, protoFile: imports/main.proto, importPaths: [shared]}", nil)
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(f.task.Config.Protoset, &set); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fd := range set.File {
		names = append(names, fd.GetName())
	}
	// Dependencies come before the files that import them.
	want := []string{"common/types.proto", "google/protobuf/empty.proto", "imports/main.proto"}
	if !slices.Equal(names, want) {
		t.Errorf("protoset files = %v, want %v", names, want)
	}
}

func TestDecodeRootCert(t *testing.T) {
	cert, err := greeter.NewSelfSignedCertificate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	rf := func(name string) ([]byte, error) {
		if name == "certs/ca.pem" {
			return cert.PEM, nil
		}
		return readFile(name)
	}
	f, errs := decode(t, "{host: '127.0.0.1:1', call: "+hello+", rootCert: certs/ca.pem}", nil, rf)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := f.task.Config.TLS; !bytes.Equal(got.RootCert, cert.PEM) || got.Insecure || got.SkipVerify {
		t.Errorf("TLS = %+v, want the certificate's PEM as RootCert", got)
	}
}

func TestDecodeInvalid(t *testing.T) {
	const hc = "host: 127.0.0.1:1\ncall: " + hello + "\n"
	const w = "spec.tasks[0].with"
	tests := []struct {
		name     string
		with     string
		versions []string
		noFiles  bool // ReadFile is nil
		// want lists every error as "<type> <field>", in order.
		want []string
	}{
		{name: "nothing", with: ``, want: []string{"Required value " + w + ".host", "Required value " + w + ".call"}},
		{name: "no call", with: `host: 127.0.0.1:1`, want: []string{"Required value " + w + ".call"}},
		{name: "unknown field", with: hc + `url: http://x/`, want: []string{"Unsupported value " + w + ".url"}},
		{name: "with is a list", with: `[1, 2]`, want: []string{"Invalid value " + w}},
		{name: "workers above total", with: hc + "total: 3\nworkers: 4", want: []string{"Invalid value " + w + ".workers"}},
		{name: "rps too low to split over workers", with: hc + "rps: 0.3\nworkers: 4", want: []string{"Invalid value " + w + ".rps"}},
		{name: "workers 0", with: hc + `workers: 0`, want: []string{"Invalid value " + w + ".workers"}},
		{name: "host with a scheme", with: "{host: 'http://127.0.0.1:1', call: a.B/C}", want: []string{"Invalid value " + w + ".host"}},
		{name: "host without port", with: "{host: '127.0.0.1', call: a.B/C}", want: []string{"Invalid value " + w + ".host"}},
		{name: "host with port 0", with: "{host: '127.0.0.1:0', call: a.B/C}", want: []string{"Invalid value " + w + ".host"}},
		{name: "host with a named port", with: "{host: 'x:grpc', call: a.B/C}", want: []string{"Invalid value " + w + ".host"}},
		{name: "host without name", with: "{host: ':50051', call: a.B/C}", want: []string{"Invalid value " + w + ".host"}},
		{name: "call without method", with: "{host: 'x:1', call: helloworld.Greeter}", want: []string{"Invalid value " + w + ".call"}},
		{name: "call with a slash first", with: "{host: 'x:1', call: /helloworld.Greeter/SayHello}", want: []string{"Invalid value " + w + ".call"}},
		{name: "data is a string", with: hc + `data: hello`, want: []string{"Invalid value " + w + ".data"}},
		{name: "data is an empty list", with: hc + `data: []`, want: []string{"Invalid value " + w + ".data"}},
		{name: "data list with a number", with: hc + `data: [{}, 3]`, want: []string{"Invalid value " + w + ".data[1]"}},
		{name: "metadata with a bad key", with: hc + `metadata: {"a b": x}`, want: []string{"Invalid value " + w + ".metadata[a b]"}},
		{name: "metadata with a reserved key", with: hc + `metadata: {grpc-timeout: 1S}`, want: []string{"Invalid value " + w + ".metadata[grpc-timeout]"}},
		{name: "metadata value with a line break", with: hc + `metadata: {x-a: "a\nb"}`, want: []string{"Invalid value " + w + ".metadata[x-a]"}},
		{name: "metadata value of the wrong type", with: hc + `metadata: {x-a: 1}`, want: []string{"Invalid value " + w + ".metadata[x-a]"}},
		{name: "negative rps", with: hc + `rps: -1`, want: []string{"Invalid value " + w + ".rps"}},
		{name: "rps of the wrong type", with: hc + `rps: fast`, want: []string{"Invalid value " + w + ".rps"}},
		{name: "zero concurrency", with: hc + `concurrency: 0`, want: []string{"Invalid value " + w + ".concurrency"}},
		{name: "too much concurrency", with: hc + `concurrency: 10001`, want: []string{"Invalid value " + w + ".concurrency"}},
		{name: "zero connections", with: hc + `connections: 0`, want: []string{"Invalid value " + w + ".connections"}},
		{name: "more connections than concurrency", with: hc + "concurrency: 2\nconnections: 3", want: []string{"Invalid value " + w + ".connections"}},
		{name: "more connections than the default concurrency", with: hc + "connections: 51", want: []string{"Invalid value " + w + ".connections"}},
		{name: "negative total", with: hc + `total: -1`, want: []string{"Invalid value " + w + ".total"}},
		// Out-of-range numbers and oversized files (issue 13).
		{name: "rps above the bound", with: hc + `rps: 1e308`, want: []string{"Invalid value " + w + ".rps"}},
		{name: "rps below the bound", with: hc + `rps: 0.01`, want: []string{"Invalid value " + w + ".rps"}},
		{name: "endpoint rps above the bound", with: "call: a.B/C\nendpoints: [{host: \"x:1\", rps: 2e6}]",
			want: []string{"Invalid value " + w + ".endpoints[0].rps"}},
		{name: "total above the bound", with: hc + `total: 2000000000`, want: []string{"Invalid value " + w + ".total"}},
		{name: "plan longer than a day", with: hc + "rps: 0.5\ntotal: 50000", want: []string{"Invalid value " + w + ".rps"}},
		{name: "inherited rps makes the plan too long, reported once", versions: []string{"v1", "v2"},
			with: "call: a.B/C\nrps: 1\ntotal: 100000\nendpoints:\n- {host: \"x:1\", version: v1}\n- {host: \"x:2\", version: v2}",
			want: []string{"Invalid value " + w + ".rps"}},
		{name: "duration above a day", with: hc + `duration: 25h`, want: []string{"Invalid value " + w + ".duration"}},
		{name: "timeout above a day", with: hc + `timeout: 1000h`, want: []string{"Invalid value " + w + ".timeout"}},
		{name: "metadata value with a NUL", with: hc + `metadata: {x-a: "a\0b"}`, want: []string{"Invalid value " + w + ".metadata[x-a]"}},
		// Templates are expanded for a sample call at decode time.
		{name: "data template that does not parse", with: hc + `data: {name: "{{.RequestNumber"}`, want: []string{"Invalid value " + w + ".data"}},
		{name: "data template with an unknown field", with: hc + `data: {name: "{{.Nope}}"}`, want: []string{"Invalid value " + w + ".data"}},
		{name: "data template with an unknown function", with: hc + `data: [{}, {name: "{{nope 1}}"}]`, want: []string{"Invalid value " + w + ".data[1]"}},
		{name: "data template that reads the environment", with: hc + `data: {name: "{{env \"HOME\"}}"}`, want: []string{"Invalid value " + w + ".data"}},
		{name: "data template expanding to a bad message", with: hc + "protoFile: greeter.proto\n" + `data: {name: "{{.RequestNumber}}", extra: 1}`,
			want: []string{"Invalid value " + w + ".data"}},
		{name: "metadata template with an unknown field", with: hc + `metadata: {x-a: "{{.Nope}}"}`, want: []string{"Invalid value " + w + ".metadata[x-a]"}},
		{name: "binary metadata that is not base64", with: hc + `metadata: {x-a-bin: "not base64!"}`, want: []string{"Invalid value " + w + ".metadata[x-a-bin]"}},
		{name: "templated binary metadata that is not base64", with: hc + `metadata: {x-ts-bin: "{{.TimestampUnix}}"}`, want: []string{"Invalid value " + w + ".metadata[x-ts-bin]"}},
		{name: "templated metadata key that expands badly", with: hc + `metadata: {"x {{.WorkerID}}": a}`, want: []string{"Invalid value " + w + ".metadata[x {{.WorkerID}}]"}},
		{name: "protoFile above 16 MiB", with: hc + `protoFile: big.proto`, want: []string{"Invalid value " + w + ".protoFile"}},
		{name: "protoset above 16 MiB", with: hc + `protoset: big.protoset`, want: []string{"Invalid value " + w + ".protoset"}},
		{name: "total and duration", with: hc + "total: 5\nduration: 1s", want: []string{"Forbidden " + w + ".duration"}},
		{name: "bad duration", with: hc + `duration: soon`, want: []string{"Invalid value " + w + ".duration"}},
		{name: "zero duration", with: hc + `duration: 0s`, want: []string{"Invalid value " + w + ".duration"}},
		{name: "zero timeout", with: hc + `timeout: 0s`, want: []string{"Invalid value " + w + ".timeout"}},
		{name: "bad timeout", with: hc + `timeout: 5`, want: []string{"Invalid value " + w + ".timeout"}},
		{name: "percentile 100", with: hc + `percentiles: [100]`, want: []string{"Invalid value " + w + ".percentiles[0]"}},
		{name: "insecure and skipVerify", with: hc + "insecure: true\nskipVerify: true", want: []string{"Forbidden " + w + ".skipVerify"}},
		{name: "insecure and rootCert", with: hc + "insecure: true\nrootCert: ca.pem", want: []string{"Forbidden " + w + ".rootCert"}},
		{name: "skipVerify and rootCert", with: hc + "skipVerify: true\nrootCert: ca.pem", want: []string{"Forbidden " + w + ".rootCert"}},
		{name: "missing rootCert", with: hc + "rootCert: nothere.pem", want: []string{"Invalid value " + w + ".rootCert"}},
		{name: "rootCert that is not PEM", with: hc + "rootCert: not-a-cert.pem", want: []string{"Invalid value " + w + ".rootCert"}},
		{name: "rootCert without ReadFile", with: hc + "rootCert: not-a-cert.pem", noFiles: true, want: []string{"Invalid value " + w + ".rootCert"}},
		{name: "protoFile and protoset", with: hc + "protoFile: greeter.proto\nprotoset: greeter.protoset", want: []string{"Forbidden " + w + ".protoset"}},
		{name: "importPaths without protoFile", with: hc + "importPaths: [x]", want: []string{"Forbidden " + w + ".importPaths"}},
		{name: "protoFile not ending in .proto", with: hc + "protoFile: greeter.txt", want: []string{"Invalid value " + w + ".protoFile"}},
		{name: "missing protoFile", with: hc + "protoFile: nothere.proto", want: []string{"Invalid value " + w + ".protoFile"}},
		{name: "protoFile without ReadFile", with: hc + "protoFile: greeter.proto", noFiles: true, want: []string{"Invalid value " + w + ".protoFile"}},
		{name: "protoFile that does not compile", with: hc + "protoFile: broken.proto", want: []string{"Invalid value " + w + ".protoFile"}},
		{name: "protoFile with a missing import", with: "{host: 'x:1', call: app.App/Ping, protoFile: imports/main.proto}",
			want: []string{"Invalid value " + w + ".protoFile"}},
		{name: "service not in protoFile", with: "{host: 'x:1', call: helloworld.Nope/SayHello, protoFile: greeter.proto}",
			want: []string{"Invalid value " + w + ".call"}},
		{name: "method not in protoFile", with: "{host: 'x:1', call: helloworld.Greeter/SayHi, protoFile: greeter.proto}",
			want: []string{"Invalid value " + w + ".call"}},
		{name: "a message is not a service", with: "{host: 'x:1', call: helloworld.HelloRequest/SayHi, protoFile: greeter.proto}",
			want: []string{"Invalid value " + w + ".call"}},
		{name: "data that does not fit the input message", with: hc + "protoFile: greeter.proto\ndata: [{name: a}, {nam: b}]",
			want: []string{"Invalid value " + w + ".data[1]"}},
		{name: "data of the wrong field type", with: hc + "protoset: greeter.protoset\ndata: {name: 3}",
			want: []string{"Invalid value " + w + ".data"}},
		{name: "protoset that is not one", with: hc + "protoset: garbage.protoset", want: []string{"Invalid value " + w + ".protoset"}},
		{name: "protoset without its imports", with: hc + "protoset: needs-import.protoset", want: []string{"Invalid value " + w + ".protoset"}},
		{name: "missing protoset", with: hc + "protoset: nothere.protoset", want: []string{"Invalid value " + w + ".protoset"}},
		{name: "several versions without version", with: hc, versions: []string{"v1", "v2"},
			want: []string{"Required value " + w + ".version"}},
		{name: "unknown version", with: hc + `version: v3`, versions: []string{"v1", "v2"},
			want: []string{"Unsupported value " + w + ".version"}},
		{name: "version with endpoints", with: "call: a.B/C\nversion: v1\nendpoints: [{host: \"x:1\", version: v1}]", versions: []string{"v1"},
			want: []string{"Forbidden " + w + ".version"}},
		{name: "endpoint without version", versions: []string{"v1", "v2"},
			with: "call: a.B/C\nendpoints:\n- {host: \"x:1\", version: v1}\n- {host: \"x:2\"}",
			want: []string{"Required value " + w + ".endpoints[1].version"}},
		{name: "endpoint with unknown version", versions: []string{"v1", "v2"},
			with: "call: a.B/C\nendpoints:\n- {host: \"x:1\", version: v1}\n- {host: \"x:2\", version: v9}",
			want: []string{"Unsupported value " + w + ".endpoints[1].version"}},
		{name: "endpoint without host", with: "call: a.B/C\nendpoints: [{version: \"\"}]",
			want: []string{"Required value " + w + ".endpoints[0].host"}},
		{name: "two endpoints of a version without names",
			with: "call: a.B/C\nendpoints:\n- {host: \"x:1\"}\n- {host: \"x:2\"}",
			want: []string{"Required value " + w + ".endpoints[0].name", "Required value " + w + ".endpoints[1].name"}},
		{name: "duplicate endpoint names",
			with: "call: a.B/C\nendpoints:\n- {name: a, host: \"x:1\"}\n- {name: a, host: \"x:2\"}",
			want: []string{"Duplicate value " + w + ".endpoints[1].name"}},
		{name: "endpoint name with a slash", with: "call: a.B/C\nendpoints: [{name: \"a/b\", host: \"x:1\"}]",
			want: []string{"Invalid value " + w + ".endpoints[0].name"}},
		{name: "unknown endpoint field", with: "call: a.B/C\nendpoints: [{host: \"x:1\", url: y}]",
			want: []string{"Unsupported value " + w + ".endpoints[0].url"}},
		{name: "every problem is reported", with: hc + "rps: -1\nduration: soon\ntimeout: never\npercentiles: [101]\nconcurrency: 0",
			want: []string{
				"Invalid value " + w + ".duration",
				"Invalid value " + w + ".timeout",
				"Invalid value " + w + ".percentiles[0]",
				"Invalid value " + w + ".rps",
				"Invalid value " + w + ".concurrency",
			}},
		{name: "missing host does not hide other problems", with: `{call: "x", rps: -1, data: 3, metadata: {"": a}}`,
			want: []string{
				"Required value " + w + ".host",
				"Invalid value " + w + ".call",
				"Invalid value " + w + ".data",
				"Invalid value " + w + ".metadata[]",
				"Invalid value " + w + ".rps",
			}},
		{name: "problems in several endpoints, and an inherited one once", versions: []string{"v1", "v2"},
			with: "call: a.B/C\nrps: -2\nendpoints:\n- {host: \"x\", version: v1}\n- {host: \"x:2\", version: v2, call: nope, concurrency: 0}",
			want: []string{
				"Invalid value " + w + ".endpoints[0].host",
				"Invalid value " + w + ".rps",
				"Invalid value " + w + ".endpoints[1].call",
				"Invalid value " + w + ".endpoints[1].concurrency",
			}},
		{name: "endpoint call not in the protoset", versions: []string{"v1", "v2"},
			with: "call: " + hello + "\nprotoset: greeter.protoset\nendpoints:\n- {host: \"x:1\", version: v1}\n- {host: \"x:2\", version: v2, call: helloworld.Greeter/Nope}",
			want: []string{"Invalid value " + w + ".endpoints[1].call"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rf := readFile
			if tt.noFiles {
				rf = nil
			}
			f, errs := decode(t, tt.with, tt.versions, rf)
			if f != nil {
				t.Fatalf("Decode(%s) = %s, want errors %v", tt.with, describeConfig(f.task.Config), tt.want)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Type.String()+" "+e.Field)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Decode(%s) errors:\n got %q\nwant %q\nfull: %v", tt.with, got, tt.want, errs)
			}
		})
	}
}

// TestDecodeErrorsAreClear checks the wording where the path alone does not
// say what is wrong.
func TestDecodeErrorsAreClear(t *testing.T) {
	const hc = "host: 127.0.0.1:1\ncall: " + hello + "\n"
	tests := []struct {
		with string
		want []string
	}{
		{"{host: 'http://x:1', call: a.B/C}", []string{"has no scheme", "host:port"}},
		{"{host: 'x:1', call: helloworld.Greeter}", []string{"package.Service/Method"}},
		{hc + "total: 3\nduration: 1s", []string{"total or duration, not both"}},
		{hc + "connections: 60", []string{"must not be above concurrency (50)"}},
		{hc + "protoFile: nothere.proto", []string{"nothere.proto", "not exist"}},
		{hc + "protoFile: broken.proto", []string{"broken.proto:3"}},
		{"{host: 'x:1', call: app.App/Ping, protoFile: imports/main.proto}", []string{"common/types.proto"}},
		{"{host: 'x:1', call: helloworld.Nope/SayHello, protoFile: greeter.proto}", []string{"protoFile greeter.proto has no service helloworld.Nope", "it has helloworld.Greeter"}},
		{"{host: 'x:1', call: helloworld.Greeter/SayHi, protoset: greeter.protoset}", []string{"no method SayHi", "it has SayHello, SayGoodbye"}},
		{hc + "protoFile: greeter.proto\ndata: {nam: b}", []string{"does not fit helloworld.HelloRequest", `unknown field "nam"`}},
		{hc + "protoset: needs-import.protoset", []string{"--include_imports"}},
		{hc + "rootCert: not-a-cert.pem", []string{"no PEM certificate"}},
		{hc + "skipVerify: true\nrootCert: ca.pem", []string{"rootCert or skipVerify, not both"}},
		{hc + `metadata: {grpc-timeout: 1S}`, []string{"reserved"}},
		{hc + `rps: fast`, []string{"got string", "want"}},
		{hc + `rps: 1e7`, []string{"must be 0 (as fast as possible) or from 0.1 to 1000000 per second"}},
		{hc + "rps: 0.5\ntotal: 50000", []string{"total 50000 at 0.5 per second", "more than 24h", "set a duration"}},
		{hc + "protoFile: big.proto", []string{"big.proto is larger than 16 MiB"}},
	}
	for _, tt := range tests {
		_, errs := decode(t, tt.with, nil, readFile)
		if len(errs) == 0 {
			t.Errorf("Decode(%s) = no errors, want some", tt.with)
			continue
		}
		msg := errs.ToAggregate().Error()
		for _, w := range tt.want {
			if !strings.Contains(msg, w) {
				t.Errorf("Decode(%s) error %q does not contain %q", tt.with, msg, w)
			}
		}
	}
}

// TestDecodeDoesNotShareState checks that decoding one task leaves nothing
// in package state for the next.
func TestDecodeDoesNotShareState(t *testing.T) {
	before := slices.Clone(DefaultPercentiles)
	a := mustDecode(t, `{host: "x:1", call: a.B/C, percentiles: [12], metadata: {x-a: "1"}, endpoints: [{host: "x:2", metadata: {x-b: "2"}}]}`, nil)
	b := mustDecode(t, `{host: "x:1", call: a.B/C, metadata: {x-c: "3"}}`, nil)
	if !slices.Equal(DefaultPercentiles, before) {
		t.Errorf("DefaultPercentiles = %v after Decode, want %v", DefaultPercentiles, before)
	}
	if got := b.task.Config.Percentiles; !slices.Equal(got, before) {
		t.Errorf("second task's percentiles = %v, want %v", got, before)
	}
	if got := a.task.Config.Endpoints[0].Metadata; !reflect.DeepEqual(got, map[string]string{"x-a": "1", "x-b": "2"}) {
		t.Errorf("first task's metadata = %v", got)
	}
	if got := b.task.Config.Endpoints[0].Metadata; !reflect.DeepEqual(got, map[string]string{"x-c": "3"}) {
		t.Errorf("second task's metadata = %v", got)
	}
}

func TestEndpointLabel(t *testing.T) {
	tests := []struct {
		e    Endpoint
		want string
	}{
		{Endpoint{Host: "h:1", Call: hello}, "h:1 " + hello},
		{Endpoint{Host: "h:1", Call: hello, Target: load.Target{Version: "v2"}}, "version v2 h:1 " + hello},
		{Endpoint{Host: "h:1", Call: hello, Target: load.Target{Version: "v2", Name: "home"}}, "version v2 endpoint home h:1 " + hello},
	}
	for _, tt := range tests {
		if got := tt.e.Label(); got != tt.want {
			t.Errorf("Label() = %q, want %q", got, tt.want)
		}
	}
}
