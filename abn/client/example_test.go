package client_test

import (
	"context"
	"errors"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"time"

	"github.com/iter8-tools/iter8/abn/client"
)

// A frontend asks which version of the backend each user gets, sends the
// request there, and records what the user did, credited to that version.
func Example() {
	abn, err := client.New(client.Options{
		Target:      "abn.iter8-system:50051",
		Application: "default/backend",
		Baseline:    "backend-0",
	})
	if err != nil {
		log.Fatal(err)
	}

	gateway := &url.URL{Scheme: "http", Host: "backend-gateway.default"}
	http.HandleFunc("/buy", func(w http.ResponseWriter, r *http.Request) {
		user := r.Header.Get("X-User")
		// Never fails: the baseline when the service is slow or down.
		a := abn.Lookup(r.Context(), user)
		if a.Err != nil {
			log.Printf("abn lookup: %v (serving %s)", a.Err, a.Version)
		}
		target := gateway
		if a.Header != "" {
			// The Gateway routes on this header to the chosen version.
			r.Header.Set(a.Header, a.HeaderValue)
		} else {
			// Otherwise address the version's own service.
			target = &url.URL{Scheme: "http", Host: a.Version + ".default"}
		}
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
		// Non-blocking: queued for the background sender.
		if err := abn.WriteMetric(user, a.Version, "purchases", 1); err != nil {
			log.Printf("abn write metric: %v", err)
		}
	})

	srv := &http.Server{Addr: ":8080"}
	go func() {
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	<-ctx.Done()

	// On shutdown: finish the requests, then flush the queued values for
	// at most 5 seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	flush, cancelFlush := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelFlush()
	if err := abn.Close(flush); err != nil {
		log.Printf("abn: %v (stats %+v)", err, abn.Stats())
	}
}
