package redact

import (
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net/url"
	"strings"
	"testing"
)

func TestRedactor(t *testing.T) {
	r := &Redactor{}
	secretURL := "https://hooks.example.com/services/T1/B2/tokentokentoken?sig=abcdef123&v=1"
	r.Add(secretURL)
	r.Add(`pa"ss wörd/+`)
	r.Add("")
	r.Add("Bearer bearer-token-123")
	ue := &url.Error{Op: "Post", URL: "https://other.example.com/x?y=z", Err: errors.New("connection reset")}
	for _, tc := range []struct{ in, want string }{
		{"to " + secretURL + "!", "to REDACTED!"},
		{"path /services/T1/B2/tokentokentoken only", "path REDACTED only"},
		{"segment tokentokentoken", "segment REDACTED"},
		{"query sig=abcdef123&v=1", "query REDACTED"},
		{"value abcdef123", "value REDACTED"},
		{"escaped " + url.QueryEscape(secretURL), "escaped REDACTED"},
		{`json "https:\/\/hooks.example.com\/services\/T1\/B2\/tokentokentoken?sig=abcdef123\u0026v=1"`, `json "REDACTED"`},
		{"short parts stay: v=1, T1, B2", "short parts stay: v=1, T1, B2"},
		{`quoted "pa\"ss wörd/+"`, `quoted "REDACTED"`},
		{"query-escaped " + url.QueryEscape(`pa"ss wörd/+`), "query-escaped REDACTED"},
		{"path-escaped " + url.PathEscape(`pa"ss wörd/+`), "path-escaped REDACTED"},
		{"html " + html.EscapeString(`pa"ss wörd/+`), "html REDACTED"},
		{"auth=Bearer bearer-token-123 token=bearer-token-123", "auth=REDACTED token=REDACTED"},
		{"Bearer scheme stays", "Bearer scheme stays"},
		{"basic " + base64.StdEncoding.EncodeToString([]byte(`pa"ss wörd/+`)), "basic REDACTED"},
		{"raw url " + base64.RawURLEncoding.EncodeToString([]byte(`pa"ss wörd/+`)), "raw url REDACTED"},
	} {
		if got := r.String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	err := r.Error(fmt.Errorf("target 0: %w", errors.Join(ue, errors.New("tokentokentoken"))))
	if want := "target 0: Post REDACTED: connection reset\nREDACTED"; err.Error() != want {
		t.Errorf("Error = %q, want %q", err, want)
	}
	var target *url.Error
	if errors.As(err, &target) {
		t.Error("the redacted error unwraps to the url.Error, whose URL holds the secret")
	}
	if r.Error(nil) != nil {
		t.Error("Error(nil) != nil")
	}
}

func TestWithoutURL(t *testing.T) {
	inner := errors.New("connection refused")
	ue := &url.Error{Op: "Post", URL: "https://hooks.example.com/services/secret", Err: inner}
	for _, tc := range []struct {
		name    string
		in, out error
	}{
		{"url.Error", ue, inner},
		{"wrapped url.Error", fmt.Errorf("send: %w", ue), inner},
		{"no url.Error", inner, inner},
		{"nil", nil, nil},
	} {
		if got := WithoutURL(tc.in); got != tc.out {
			t.Errorf("WithoutURL(%s) = %v, want %v", tc.name, got, tc.out)
		}
	}
}

func TestExcerpt(t *testing.T) {
	secret := "tok-" + strings.Repeat("s", 20)
	r := &Redactor{}
	r.Add(secret)
	for _, tc := range []struct{ name, in, want string }{
		{"empty", " \n\t", "(empty body)"},
		{"folded", "a\n  b\tc", "a b c"},
		{"invalid UTF-8", "a\xffb", "a\uFFFDb"},
		// Cut first, the secret would leave its first half behind.
		{"secret across the cut", strings.Repeat("x", 190) + secret, strings.Repeat("x", 190) + "REDACTED"},
		{"long", strings.Repeat("é", 300), strings.Repeat("é", 200) + "…"},
	} {
		if got := r.Excerpt([]byte(tc.in)); got != tc.want {
			t.Errorf("Excerpt(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
