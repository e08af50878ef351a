package load_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/experiment/experimenttest"
	"github.com/iter8-tools/iter8/pkg/task/grpc"
	"github.com/iter8-tools/iter8/pkg/task/http"
)

// TestTaskLevelErrorReportedOnce checks, for every load task, that a bad
// task-level value that several endpoints inherit is reported once, at the
// field the user wrote, and never at an endpoint.
func TestTaskLevelErrorReportedOnce(t *testing.T) {
	type bad struct{ name, with, field string }
	// common are the cases of every load task; rate and count name its
	// fields.
	// fields and head, the rest of a valid `with` block.
	common := func(rate, count, head string) []bad {
		return []bad{
			{"negative rate", head + rate + ": -1", rate},
			{"rate too high", head + rate + ": 1e308", rate},
			{"plan too long", fmt.Sprintf("%s%s: 0.5\n%s: 100000", head, rate, count), rate},
			{"bad duration", head + "duration: soon", "duration"},
			{"bad timeout", head + "timeout: never", "timeout"},
			{"bad percentile", head + "percentiles: [50, 100]", "percentiles[1]"},
			{"no connections", head + "connections: 0", "connections"},
		}
	}
	tasks := []struct {
		name   string
		decode experiment.Decoder
		// endpoints are two, of versions v1 and v2, that inherit every
		// field but their target, for the cases that give none.
		endpoints string
		bad       []bad
	}{
		{"http", http.Decode,
			"endpoints:\n- {url: \"http://127.0.0.1:1/\", version: v1}\n- {url: \"http://127.0.0.1:2/\", version: v2}",
			append(common("qps", "numRequests", ""),
				bad{"bad url", "url: ftp://x/\nendpoints: [{version: v1}, {version: v2}]", "url"},
				bad{"bad method", `method: "A B"`, "method"},
				bad{"payload and payloadFile", "payload: a\npayloadFile: b", "payloadFile"},
				bad{"bad header", `headers: {X-A: "a\0b"}`, "headers[X-A]"},
			)},
		{"grpc", grpc.Decode,
			"endpoints:\n- {host: \"127.0.0.1:1\", version: v1}\n- {host: \"127.0.0.1:2\", version: v2}",
			append(common("rps", "total", "call: a.B/C\n"),
				bad{"bad host", "call: a.B/C\nhost: x\nendpoints: [{version: v1}, {version: v2}]", "host"},
				bad{"bad call", "call: nope", "call"},
				bad{"bad data", "call: a.B/C\ndata: 3", "data"},
				bad{"bad metadata", "call: a.B/C\nmetadata: {\"a b\": x}", "metadata[a b]"},
				bad{"no concurrency", "call: a.B/C\nconcurrency: 0", "concurrency"},
			)},
	}
	for _, tk := range tasks {
		for _, b := range tk.bad {
			t.Run(tk.name+"/"+b.name, func(t *testing.T) {
				with := b.with
				if !strings.Contains(with, "endpoints:") {
					with += "\n" + tk.endpoints
				}
				d, _ := experimenttest.Decoding(t, with, []string{"v1", "v2"}, nil)
				if task, errs := tk.decode(d); task != nil {
					t.Errorf("Decode(%q) = a task, want an error at %s", with, b.field)
				} else if want := experimenttest.WithPath.Child(b.field).String(); len(errs) != 1 || errs[0].Field != want {
					t.Errorf("Decode(%q) errors:\n%v\nwant one, at %s", with, errs, want)
				}
			})
		}
	}
}
