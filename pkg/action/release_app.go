package action

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	helmaction "helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/iter8-tools/iter8/pkg/kube"
	"github.com/iter8-tools/iter8/pkg/route"
)

// ErrNoRoute matches (errors.Is) the error of a release command whose app
// has neither an HTTPRoute nor a VirtualService.
var ErrNoRoute = errors.New("no route")

// NoRouteError says that an app has no route in a namespace.
type NoRouteError struct {
	App, Namespace string
}

func (e *NoRouteError) Error() string {
	return fmt.Sprintf("no HTTPRoute or VirtualService named %s in namespace %s", e.App, e.Namespace)
}

// Is makes a NoRouteError match ErrNoRoute.
func (e *NoRouteError) Is(target error) bool { return target == ErrNoRoute }

// The route kinds charts/release renders, in the order they are looked for.
var routeResources = []struct {
	kind string
	gvr  schema.GroupVersionResource
}{
	{route.KindHTTPRoute, schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}},
	{route.KindVirtualService, schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}},
}

// findRoute reads and parses app's route in the cluster's namespace: the
// HTTPRoute, else the VirtualService. The error wraps ErrNoRoute when there
// is neither.
func findRoute(ctx context.Context, cl *Cluster, app string) (*route.Route, error) {
	for _, rr := range routeResources {
		u, err := cl.Dynamic.Resource(rr.gvr).Namespace(cl.Namespace).Get(ctx, app, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			// No such object, or the kind is not installed.
			continue
		case err != nil:
			return nil, fmt.Errorf("get %s %s in namespace %s: %w", rr.kind, app, cl.Namespace, err)
		}
		return route.Parse(u)
	}
	return nil, &NoRouteError{App: app, Namespace: cl.Namespace}
}

// releaseOf names the Helm release of app: the route's
// app.kubernetes.io/instance label, else (no route, or no label) app
// itself, since app.name defaults to the release's name.
func releaseOf(ctx context.Context, cl *Cluster, app string) (string, error) {
	r, err := findRoute(ctx, cl, app)
	switch {
	case errors.Is(err, ErrNoRoute):
		return app, nil
	case err != nil:
		return "", err
	case r.Release != "":
		return r.Release, nil
	}
	return app, nil
}

// appRelease finds the Helm release that routes app and reads its newest
// revision, with the cluster and Helm configuration to act on it.
func (c *Configuration) appRelease(ctx context.Context, app string) (*Cluster, *helmaction.Configuration, string, *release.Release, error) {
	cl, helm, err := c.helmAction()
	if err != nil {
		return nil, nil, "", nil, err
	}
	rel, err := releaseOf(ctx, cl, app)
	if err != nil {
		return nil, nil, "", nil, err
	}
	last, err := lastRelease(helm, rel, cl.Namespace)
	if err != nil {
		return nil, nil, "", nil, err
	}
	return cl, helm, rel, last, nil
}

// lastRelease reads the newest revision of rel.
func lastRelease(helm *helmaction.Configuration, rel, ns string) (*release.Release, error) {
	last, err := helmaction.NewGet(helm).Run(rel)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, fmt.Errorf("release %s not found in namespace %s", rel, ns)
	}
	if err != nil {
		return nil, fmt.Errorf("release %s in namespace %s: %w", rel, ns, err)
	}
	if last.Chart == nil {
		return nil, fmt.Errorf("release %s in namespace %s: revision %d holds no chart", rel, ns, last.Version)
	}
	return last, nil
}

// intValue reads a whole number from values decoded from JSON or YAML.
func intValue(v any) (int, bool) {
	n, ok := kube.WholeNumber(v)
	return int(n), ok
}

// validateApp checks an app name as the route's name: a DNS subdomain.
func validateApp(app string) error {
	if errs := validation.IsDNS1123Subdomain(app); len(errs) > 0 {
		return fmt.Errorf("app name %q: %s", app, strings.Join(errs, "; "))
	}
	return nil
}

// validateTimeout checks the bound of an upgrade or rollback; 0 is
// DefaultTimeout.
func validateTimeout(timeout time.Duration) error {
	if timeout < 0 {
		return fmt.Errorf("timeout must not be negative, got %v", timeout)
	}
	return nil
}
