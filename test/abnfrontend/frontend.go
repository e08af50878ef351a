// Package abnfrontend is a sample frontend of an A/B/n test: for each
// request it asks the A/B/n service (through the Go SDK) which version of
// the backend the user gets, sends the request there, and records what the
// user did as business metrics credited to the version that served them.
// Tests and the A/B/n tutorial run it in front of two versions of the
// sample app.
//
// With [Options.Log] it writes one JSON line per request ([LogEntry]);
// [ReadLog], [UserVersions] and [ChangedUsers] turn such a log back into
// who was served by which version, so a test can count the users whose
// version changed.
package abnfrontend

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/iter8-tools/iter8/abn/client"
)

// Options configure a Frontend.
type Options struct {
	// ABN is the SDK's client for the backend application.
	ABN *client.Client
	// Backends maps a version's name to its base URL, for direct routing.
	Backends map[string]string
	// Gateway, when set, is the base URL of the Gateway that routes the
	// app: requests go there with the header that Lookup answered, and
	// Backends is not used.
	Gateway string
	// HTTP sends the requests; default http.DefaultClient.
	HTTP *http.Client
	// PurchaseHeader, when set (the sample app's is "X-Purchase"), lets
	// the backend say who buys: a request records a purchase only when
	// the backend's successful answer carries this header, whose value is
	// the amount, and ?amount= is ignored. Empty, the default, means every
	// successful answer records a purchase of ?amount=, which is then
	// required.
	PurchaseHeader string
	// Log, when set, gets one JSON line per request that was looked up
	// (a LogEntry), written whole and before the request is answered, so
	// it is safe for concurrent requests and a client that has all its
	// answers finds all their lines.
	Log io.Writer
}

// LogEntry is one line of Options.Log.
type LogEntry struct {
	// User is the request's ?user=.
	User string `json:"user"`
	// Version is the version the user was sent to.
	Version string `json:"version"`
	// Fallback is true when Version is the baseline because the A/B/n
	// service did not name a version (client.Assignment.Fallback).
	Fallback bool `json:"fallback"`
	// Status is the status the frontend answered.
	Status int `json:"status"`
	// Purchased is true when the request recorded "purchases" = 1 and
	// "revenue" = Revenue for the user on Version.
	Purchased bool    `json:"purchased"`
	Revenue   float64 `json:"revenue,omitempty"`
	// Error says what went wrong, if anything did: the lookup (with
	// Fallback), the backend, or writing the metrics.
	Error string `json:"error,omitempty"`
}

// Handler serves GET /buy?user=U (with &amount=A unless
// Options.PurchaseHeader is set): the user's request goes to their version,
// as GET /buy?user=U; a successful answer that is a purchase (see
// Options.PurchaseHeader) records "purchases" = 1 and "revenue" = the
// amount for the user on that version. The answer is the backend's status
// and body, with X-Version naming the version that served it and, when
// Options.PurchaseHeader is set, that header as the backend sent it.
func Handler(o Options) http.Handler {
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	f := &frontend{Options: o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /buy", f.buy)
	return mux
}

type frontend struct {
	Options
	logMu sync.Mutex // serialises writes to Log
}

func (f *frontend) buy(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	var amount float64
	if f.PurchaseHeader == "" {
		var err error
		amount, err = strconv.ParseFloat(r.URL.Query().Get("amount"), 64)
		if user == "" || err != nil {
			http.Error(w, "want ?user=USER&amount=NUMBER", http.StatusBadRequest)
			return
		}
	} else if user == "" {
		http.Error(w, "want ?user=USER", http.StatusBadRequest)
		return
	}
	a := f.ABN.Lookup(r.Context(), user)
	e := LogEntry{User: user, Version: a.Version, Fallback: a.Fallback}
	var errs []error
	if a.Err != nil {
		errs = append(errs, fmt.Errorf("lookup: %w", a.Err))
	}
	fail := func(err error) {
		errs = append(errs, err)
		e.Status, e.Error = http.StatusBadGateway, errors.Join(errs...).Error()
		f.log(e)
		http.Error(w, err.Error(), http.StatusBadGateway)
	}
	req, err := f.request(r, a, user)
	if err != nil {
		fail(err)
		return
	}
	resp, err := f.HTTP.Do(req)
	if err != nil {
		fail(fmt.Errorf("version %s: %v", a.Version, err))
		return
	}
	defer resp.Body.Close()
	purchase := ""
	if f.PurchaseHeader != "" {
		purchase = resp.Header.Get(f.PurchaseHeader)
	}
	if resp.StatusCode < 300 {
		switch {
		case f.PurchaseHeader == "":
			e.Purchased = true
		case purchase != "":
			if amount, err = strconv.ParseFloat(purchase, 64); err != nil {
				fail(fmt.Errorf("version %s: %s %q: want a number", a.Version, f.PurchaseHeader, purchase))
				return
			}
			e.Purchased = true
		}
	}
	if e.Purchased {
		// Credit the version that served the user, even if the user's
		// assignment changes before the value reaches the service.
		e.Revenue = amount
		if err := f.ABN.WriteMetric(user, a.Version, "purchases", 1); err != nil {
			errs = append(errs, err)
		}
		if err := f.ABN.WriteMetric(user, a.Version, "revenue", amount); err != nil {
			errs = append(errs, err)
		}
	}
	e.Status = resp.StatusCode
	if len(errs) > 0 {
		e.Error = errors.Join(errs...).Error()
	}
	f.log(e)
	w.Header().Set("X-Version", a.Version)
	if purchase != "" {
		w.Header().Set(f.PurchaseHeader, purchase)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// log writes e as one line to Log, if set, in one Write under a lock so
// that lines of concurrent requests do not interleave.
func (f *frontend) log(e LogEntry) {
	if f.Log == nil {
		return
	}
	b, err := json.Marshal(e)
	if err != nil {
		return // cannot happen: strings, bools and finite numbers
	}
	b = append(b, '\n')
	f.logMu.Lock()
	defer f.logMu.Unlock()
	_, _ = f.Log.Write(b)
}

// request addresses the user's version: through the Gateway with the
// version's header when both are known, else directly.
func (o Options) request(r *http.Request, a client.Assignment, user string) (*http.Request, error) {
	path := "/buy?" + url.Values{"user": {user}}.Encode()
	if o.Gateway != "" && a.Header != "" {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, o.Gateway+path, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set(a.Header, a.HeaderValue)
		return req, nil
	}
	base, ok := o.Backends[a.Version]
	if !ok {
		return nil, fmt.Errorf("version %s: no backend URL", a.Version)
	}
	return http.NewRequestWithContext(r.Context(), http.MethodGet, base+path, nil)
}
