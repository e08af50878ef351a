package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/iter8-tools/iter8/abn/grpc"
)

// maxBody bounds a request body: a full batch of values fits many times.
const maxBody = 4 << 20

// NewHTTPServer is the HTTP server of the service (Handler) with the
// limits `abn serve` runs it with: a client that sends slowly or sits idle
// does not hold a connection for long.
func NewHTTPServer(s *Service) *http.Server {
	return &http.Server{Handler: Handler(s), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
}

// Handler serves the Service over HTTP/JSON, with the gRPC messages in
// their JSON form (protojson):
//
//	POST /v1/lookup    Application  → Session
//	POST /v1/metrics   MetricValues → 204 once durable
//	GET  /v1/summary?application=NS/NAME → the summary (ledger.Summary);
//	                   &buckets=false leaves out buckets and histograms
//	GET  /healthz      the process is up
//	GET  /readyz       applications read and the ledger writable
//
// Refused input is 400 with {"error": "<field>: <reason>"}; a ledger that
// cannot store is 503, which clients retry.
func Handler(s *Service) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/lookup", func(w http.ResponseWriter, r *http.Request) {
		var in pb.Application
		if !decode(w, r, &in) {
			return
		}
		a, err := s.Lookup(in.GetName(), in.GetUser())
		if err != nil {
			fail(w, err)
			return
		}
		b, _ := protojson.Marshal(session(a))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("POST /v1/metrics", func(w http.ResponseWriter, r *http.Request) {
		var in pb.MetricValues
		if !decode(w, r, &in) {
			return
		}
		vs := make([]Value, len(in.GetValues()))
		for i, v := range in.GetValues() {
			vs[i] = value(v)
		}
		if err := s.WriteMetrics(r.Context(), vs); err != nil {
			fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /v1/summary", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		sum, err := s.Summary(r.Context(), q.Get("application"))
		if err != nil {
			fail(w, err)
			return
		}
		switch q.Get("buckets") {
		case "", "true":
		case "false":
			sum = sum.Totals()
		default:
			writeError(w, http.StatusBadRequest, &InputError{"buckets", fmt.Sprintf("%q: want true or false", q.Get("buckets"))})
			return
		}
		// A summary JSON cannot hold (a non-finite sum) is a 500 naming
		// it; the encoder's error, once ignored, made it a 200 with an
		// empty body.
		b, err := json.Marshal(sum)
		if err != nil {
			writeError(w, http.StatusInternalServerError, fmt.Errorf("encode summary: %w", err))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(b, '\n'))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	// notReady logs once when the service becomes not ready, and once when
	// it is ready again, not at every probe.
	var notReady atomic.Bool
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		// Within the probe's timeout (charts/abn: 5s), so that a slow
		// ledger reads as not ready rather than as a probe that hung.
		ctx, cancel := context.WithTimeout(r.Context(), 4*time.Second)
		defer cancel()
		if err := s.Ready(ctx); err != nil {
			if !notReady.Swap(true) {
				s.opts.Logger.Warn("not ready", "error", err)
			}
			if errors.Is(err, errLedgerUnusable) {
				err = errLedgerUnusable
			}
			writeError(w, http.StatusServiceUnavailable, fmt.Errorf("not ready: %w", err))
			return
		}
		if notReady.Swap(false) {
			s.opts.Logger.Warn("ready again")
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}

// decode reads a protojson body; on failure it answers and returns false.
func decode(w http.ResponseWriter, r *http.Request, m proto.Message) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("body: larger than %d bytes", maxBody))
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return false
	}
	if err := protojson.Unmarshal(b, m); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return false
	}
	return true
}

func fail(w http.ResponseWriter, err error) {
	var ie *InputError
	if errors.As(err, &ie) {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeError(w, http.StatusServiceUnavailable, err)
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
