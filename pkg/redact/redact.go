// Package redact removes secret values, in every form they may take in a
// message, from the errors, log lines and results of tasks.
package redact

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Redacted replaces a secret in every message.
const Redacted = "REDACTED"

// minPartLen is the shortest part of a secret URL (a query value, a path
// segment) that is redacted on its own: shorter parts ("1", "v2") are not
// secret by themselves, and replacing them would garble messages.
const minPartLen = 6

// Redactor removes secret values from text. It is the one way that errors
// and log lines of a task that holds secrets are made safe; see Add for
// what it looks for. The zero value is ready to use.
type Redactor struct {
	olds []string // longest first, so that a longer form wins over its parts
}

// Add registers a secret value. Besides the value itself it registers the
// forms in which it may appear in a message: query- and path-escaped, JSON
// and Go quoted, HTML escaped, JSON with escaped slashes, base64 in its four
// alphabets (a Basic Authorization header echoed back); the longer words
// after the first ("Bearer <token>"); and, when the value is a URL, its path
// and query and their longer parts, and its password.
func (r *Redactor) Add(secret string) {
	if secret == "" {
		return
	}
	parts := []string{secret}
	// A header value such as "Bearer <token>" may be echoed without its
	// scheme; the scheme (the first of several words) is no secret.
	if words := strings.Fields(secret); len(words) > 1 {
		for _, w := range words[1:] {
			if len(w) >= minPartLen {
				parts = append(parts, w)
			}
		}
	}
	if u, err := url.Parse(secret); err == nil && u.Host != "" {
		parts = append(parts, u.Path, u.EscapedPath(), u.RawQuery, u.Fragment)
		if p, ok := u.User.Password(); ok {
			parts = append(parts, p)
		}
		for _, seg := range strings.Split(u.Path, "/") {
			if len(seg) >= minPartLen {
				parts = append(parts, seg)
			}
		}
		for _, vs := range u.Query() {
			for _, v := range vs {
				if len(v) >= minPartLen {
					parts = append(parts, v)
				}
			}
		}
	}
	for _, p := range parts {
		if p == "" || p == "/" {
			continue
		}
		r.olds = append(r.olds, forms(p)...)
	}
	slices.SortFunc(r.olds, func(a, b string) int { return len(b) - len(a) })
	r.olds = slices.Compact(r.olds)
}

// forms lists the ways s may be written in a message.
func forms(s string) []string {
	out := []string{s, url.QueryEscape(s), url.PathEscape(s), html.EscapeString(s)}
	if j, err := json.Marshal(s); err == nil {
		inner := string(j[1 : len(j)-1])
		out = append(out, inner, strings.ReplaceAll(inner, "/", `\/`))
	}
	q := strconv.Quote(s)
	out = append(out, q[1:len(q)-1])
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		out = append(out, enc.EncodeToString([]byte(s)))
	}
	return slices.DeleteFunc(out, func(f string) bool { return f == "" })
}

// String returns s with every registered form replaced by Redacted.
func (r *Redactor) String(s string) string {
	// One ReplaceAll per form, longest first: a single pass of a
	// strings.Replacer would let a shorter form that starts earlier hide
	// part of a longer one.
	for _, old := range r.olds {
		s = strings.ReplaceAll(s, old, Redacted)
	}
	return s
}

// Error returns err as an error whose text holds no secret: the URL of every
// *url.Error in its tree is removed, then registered secrets are replaced.
// The result does not unwrap to err, so that nobody can reach the URL through
// errors.As.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, u := range urlErrors(err) {
		// url.Error prints the URL quoted (%q); replace both forms.
		msg = strings.ReplaceAll(msg, strconv.Quote(u), Redacted)
		if u != "" {
			msg = strings.ReplaceAll(msg, u, Redacted)
		}
	}
	return errors.New(r.String(msg))
}

// WithoutURL returns the error that err's *url.Error wraps, or err when it
// has none: an HTTP client's errors repeat the request's URL, which may be a
// secret (a Slack webhook) and is long; callers name the endpoint their own
// way.
func WithoutURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

// excerptLen bounds an Excerpt, in characters.
const excerptLen = 200

// Excerpt returns the start of b (a response, which may echo a secret) on
// one line, for an error message. Secrets are replaced before the cut, so
// that none is cut in half and half kept, and again once whitespace is
// folded, which may join one up.
func (r *Redactor) Excerpt(b []byte) string {
	s := r.String(strings.Join(strings.Fields(r.String(strings.ToValidUTF8(string(b), "\uFFFD"))), " "))
	if s == "" {
		return "(empty body)"
	}
	if rs := []rune(s); len(rs) > excerptLen {
		s = string(rs[:excerptLen]) + "…"
	}
	return s
}

// Client returns an HTTP client for requests that carry secrets (tokens in
// headers, secret URLs, payloads): it follows no redirect, which would carry
// them along to another host, and has its own connections.
func Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:       timeout,
		Transport:     http.DefaultTransport.(*http.Transport).Clone(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// urlErrors collects the URLs of the *url.Errors in err's tree.
func urlErrors(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if ue, ok := e.(*url.Error); ok {
			out = append(out, ue.URL)
		}
		switch w := e.(type) {
		case interface{ Unwrap() error }:
			walk(w.Unwrap())
		case interface{ Unwrap() []error }:
			for _, c := range w.Unwrap() {
				walk(c)
			}
		}
	}
	walk(err)
	return out
}
