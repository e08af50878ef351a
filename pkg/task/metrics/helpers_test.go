package metrics

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/experiment/experimenttest"
)

// seen is one request a fake backend received.
type seen struct {
	method string
	path   string
	query  url.Values
	header http.Header
	body   string
}

// backend is a loopback server that answers every request with status and
// body, and records what it received.
type backend struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newBackend(t *testing.T, status int, body string) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.reqs = append(b.reqs, seen{r.Method, r.URL.Path, r.URL.Query(), r.Header.Clone(), string(data)})
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) requests() []seen {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]seen(nil), b.reqs...)
}

// decode decodes a `with` block for versions, failing the test on errors.
func decode(t *testing.T, with string, versions []string) (*Task, *experiment.Decoding, *experiment.Plan) {
	t.Helper()
	d, plan := experimenttest.Decoding(t, with, versions, nil)
	task, errs := Decode(d)
	if len(errs) > 0 {
		t.Fatalf("Decode(%s): %v", with, errs.ToAggregate())
	}
	return task.(*Task), d, plan
}

// run runs task with secrets, returning the error, the result and the log.
func run(t *testing.T, task *Task, plan *experiment.Plan, secrets map[string]string) (error, *experiment.Result, string) {
	t.Helper()
	var log bytes.Buffer
	env := experimenttest.Env(plan, &log)
	env.Secret = func(n string) (string, bool) { v, ok := secrets[n]; return v, ok }
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	env.Result.StartTime = start
	env.Now = func() time.Time { return start.Add(37 * time.Second) }
	err := task.Run(context.Background(), env)
	return err, env.Result, log.String()
}

// assertNoSecret fails when any form of secret appears in texts.
func assertNoSecret(t *testing.T, secret string, texts ...string) {
	t.Helper()
	forms := []string{secret, url.QueryEscape(secret), base64.StdEncoding.EncodeToString([]byte(secret)), base64.RawURLEncoding.EncodeToString([]byte(secret))}
	for _, text := range texts {
		for _, f := range forms {
			if strings.Contains(text, f) {
				t.Errorf("secret form %q found in %q", f, text)
			}
		}
	}
}

func resultJSON(t *testing.T, r *experiment.Result) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
