package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// TestFailedRequestsShown: a load's requests without a complete response
// say why in text and html, per version and endpoint.
func TestFailedRequestsShown(t *testing.T) {
	r := loopsResult(t)
	r.SetFailures("v2", "http", []experiment.RequestFailure{
		{Kind: "short body", Count: 7, Example: "got 10 of 1000 bytes (Content-Length): the server closed the connection"},
		{Kind: "timeout", Count: 2, Example: "no complete response within 5s"},
	})
	words := strings.Join(strings.Fields(text(t, r)), " ")
	for _, want := range []string{
		"http for v2: 7 requests failed: short body (got 10 of 1000 bytes (Content-Length): the server closed the connection)",
		"http for v2: 2 requests failed: timeout (no complete response within 5s)",
	} {
		if !strings.Contains(words, want) {
			t.Errorf("text report lacks %q:\n%s", want, words)
		}
	}
	var buf bytes.Buffer
	if err := writeHTML(&buf, r, ""); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	if !strings.Contains(html, `id="failures"`) || !strings.Contains(html, "7 requests failed: short body") {
		t.Errorf("html report lacks the failed requests")
	}
	if r.SetFailures("v2", "http", nil); strings.Contains(text(t, r), "requests failed") {
		t.Errorf("failures removed from the result still show")
	}
}
