// Package abnfrontend is a sample frontend of an A/B/n test: for each
// request it asks the A/B/n service (through the Go SDK) which version of
// the backend the user gets, sends the request there, and records what the
// user did as business metrics credited to the version that served them.
// Tests and the A/B/n tutorial run it in front of two versions of the
// sample app.
package abnfrontend

import (
	"fmt"
	"io"
	"net/http"
	"strconv"

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
}

// Handler serves GET /buy?user=U&amount=A: the user's request goes to
// their version; each answered request records "purchases" = 1 and
// "revenue" = A for the user on that version. The answer is the backend's
// status and body, with X-Version naming the version that served it.
func Handler(o Options) http.Handler {
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /buy", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		amount, err := strconv.ParseFloat(r.URL.Query().Get("amount"), 64)
		if user == "" || err != nil {
			http.Error(w, "want ?user=USER&amount=NUMBER", http.StatusBadRequest)
			return
		}
		a := o.ABN.Lookup(r.Context(), user)
		req, err := o.request(r, a)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		resp, err := o.HTTP.Do(req)
		if err != nil {
			http.Error(w, fmt.Sprintf("version %s: %v", a.Version, err), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode < 300 {
			// Credit the version that served the user, even if the user's
			// assignment changes before the value reaches the service.
			_ = o.ABN.WriteMetric(user, a.Version, "purchases", 1)
			_ = o.ABN.WriteMetric(user, a.Version, "revenue", amount)
		}
		w.Header().Set("X-Version", a.Version)
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
	return mux
}

// request addresses the user's version: through the Gateway with the
// version's header when both are known, else directly.
func (o Options) request(r *http.Request, a client.Assignment) (*http.Request, error) {
	if o.Gateway != "" && a.Header != "" {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, o.Gateway+"/buy", nil)
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
	return http.NewRequestWithContext(r.Context(), http.MethodGet, base+"/buy", nil)
}
