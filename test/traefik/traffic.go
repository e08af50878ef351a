package traefik

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// NewClient returns an HTTP client for requests through Traefik or to a
// backend: no proxy from the environment, a 5s timeout per request and
// enough idle connections for Count's workers.
func NewClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: countWorkers, DisableCompression: true},
		Timeout:   5 * time.Second,
	}
}

// countWorkers is how many requests Count has in flight.
const countWorkers = 8

// Count sends n GET requests to url with header set, countWorkers at a time,
// and counts the answers by the X-Version header that the sample app sets;
// requests that fail or answer other than 200 count in errs (and the first
// such failure is in firstErr).
func Count(ctx context.Context, client *http.Client, url string, header map[string]string, n int) (versions map[string]int, errs int, firstErr error) {
	var (
		mu     sync.Mutex
		next   atomic.Int64
		wg     sync.WaitGroup
		counts = map[string]int{}
	)
	fail := func(err error) {
		mu.Lock()
		errs++
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	for range min(countWorkers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if err != nil {
					fail(err)
					continue
				}
				for k, v := range header {
					req.Header.Set(k, v)
				}
				resp, err := client.Do(req)
				if err != nil {
					fail(err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					fail(fmt.Errorf("GET %s: %s", url, resp.Status))
					continue
				}
				mu.Lock()
				counts[resp.Header.Get("X-Version")]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts, errs, firstErr
}

// gatewayCRDs are the Gateway API CRDs that Traefik's provider watches.
var gatewayCRDs = []string{
	"gatewayclasses.gateway.networking.k8s.io",
	"gateways.gateway.networking.k8s.io",
	"httproutes.gateway.networking.k8s.io",
	"grpcroutes.gateway.networking.k8s.io",
	"referencegrants.gateway.networking.k8s.io",
	"backendtlspolicies.gateway.networking.k8s.io",
}

// WaitCRDs polls until the Gateway API CRDs that Traefik watches are
// established, or ctx ends.
func WaitCRDs(ctx context.Context, admin *rest.Config) error {
	dyn, err := dynamic.NewForConfig(admin)
	if err != nil {
		return err
	}
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, name := range gatewayCRDs {
		for {
			var crd apiextensionsv1.CustomResourceDefinition
			u, err := dyn.Resource(crds).Get(ctx, name, metav1.GetOptions{})
			if err == nil {
				err = runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &crd)
			}
			if err == nil && established(&crd) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("CRD %s not established: %v (%w)", name, err, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}
