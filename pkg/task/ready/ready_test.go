package ready

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

func decode(t *testing.T, with string) (*Task, field.ErrorList) {
	t.Helper()
	task, errs := Decode(&experiment.Decoding{With: []byte(with), Path: field.NewPath("with")})
	if task == nil {
		return nil, errs
	}
	return task.(*Task), errs
}

func env() *experiment.Env {
	return &experiment.Env{Log: slog.New(slog.DiscardHandler)}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ with, want string }{
		{`{}`, "with.url: Required value"},
		{`{"url": "127.0.0.1:80"}`, "with.url: Invalid value"},
		{`{"url": "ftp://h/"}`, "want an http:// or https:// URL"},
		{`{"url": "http:///x"}`, "the URL has no host"},
		{`{"url": "http://h/", "timeout": "soon"}`, "with.timeout: Invalid value"},
		{`{"url": "http://h/", "timeout": "0s"}`, "with.timeout: Invalid value"},
		{`{"url": "http://h/", "interval": "-1s"}`, "with.interval: Invalid value"},
		{`{"url": "http://h/", "status": [99]}`, "with.status[0]: Invalid value"},
		{`{"url": "http://h/", "extra": 1}`, "with.extra: unknown field"},
		{`{"url": "http://h/", "method": "GET /"}`, `with.method: Invalid value: "GET /": not an HTTP method`},
	}
	for _, tc := range tests {
		_, errs := decode(t, tc.with)
		if !strings.Contains(errs.ToAggregate().Error(), tc.want) && !strings.Contains(describe(errs), tc.want) {
			t.Errorf("Decode(%s) = %v, want an error containing %q", tc.with, errs, tc.want)
		}
	}
}

func describe(errs field.ErrorList) string {
	var s []string
	for _, e := range errs {
		s = append(s, e.Field+": "+e.Detail)
	}
	return strings.Join(s, "; ")
}

func TestWaitsUntilReady(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	task, errs := decode(t, `{"url": "`+srv.URL+`", "interval": "10ms", "timeout": "10s"}`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if err := task.Run(context.Background(), env()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("checks = %d, want 3 (two 503s, then 200)", got)
	}
}

func TestStatusList(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	task, _ := decode(t, `{"url": "`+srv.URL+`", "status": [404], "timeout": "1s"}`)
	if err := task.Run(context.Background(), env()); err != nil {
		t.Fatalf("Run with status [404] against a 404: %v", err)
	}
}

func TestTimeoutSaysWhatItSaw(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + closed.Addr().String() + "/"
	closed.Close()

	for _, tc := range []struct{ url, want string }{
		{srv.URL + "/?token=s3cret", "status 500, want 2xx"},
		{refused, "connection refused"},
	} {
		task, _ := decode(t, `{"url": "`+tc.url+`", "interval": "20ms", "timeout": "200ms"}`)
		start := time.Now()
		err := task.Run(context.Background(), env())
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "not ready after 200ms") {
			t.Errorf("Run(%s) = %v; want not ready after 200ms with %q", tc.url, err, tc.want)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Run(%s) took %v, want about the 200ms timeout", tc.url, took)
		}
	}
}

func TestCancel(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	task, _ := decode(t, `{"url": "`+srv.URL+`", "interval": "10ms", "timeout": "1h"}`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := task.Run(ctx, env()); err == nil {
		t.Fatal("Run with a cancelled context succeeded")
	}
}
