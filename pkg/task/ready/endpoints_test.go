package ready

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// fakeReader is an ObjectReader over objects held in memory. Tests change
// them between checks through set; listErr, when set, answers every List.
type fakeReader struct {
	mu      sync.Mutex
	objects map[schema.GroupVersionResource][]*unstructured.Unstructured
	listErr error
	lists   []string // "namespace labelSelector" of each List
}

func newFakeReader() *fakeReader {
	return &fakeReader{objects: map[schema.GroupVersionResource][]*unstructured.Unstructured{}}
}

// set replaces the objects of gvr.
func (f *fakeReader) set(gvr schema.GroupVersionResource, objs ...*unstructured.Unstructured) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[gvr] = objs
}

func (f *fakeReader) Get(_ context.Context, gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.objects[gvr] {
		if o.GetNamespace() == namespace && o.GetName() == name {
			return o.DeepCopy(), nil
		}
	}
	return nil, apierrors.NewNotFound(gvr.GroupResource(), name)
}

func (f *fakeReader) List(_ context.Context, gvr schema.GroupVersionResource, namespace, labelSelector string) (*unstructured.UnstructuredList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists = append(f.lists, namespace+" "+labelSelector)
	if f.listErr != nil {
		return nil, f.listErr
	}
	sel, err := labels.Parse(labelSelector)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	list := &unstructured.UnstructuredList{}
	for _, o := range f.objects[gvr] {
		if o.GetNamespace() == namespace && sel.Matches(labels.Set(o.GetLabels())) {
			list.Items = append(list.Items, *o.DeepCopy())
		}
	}
	return list, nil
}

func (f *fakeReader) env(ns string) *experiment.Env {
	e := env()
	e.Kube = func() (experiment.ObjectReader, string, error) { return f, ns, nil }
	return e
}

// slice builds an EndpointSlice of service svc in team-a from the YAML of
// its endpoints.
func slice(t *testing.T, name, svc, endpoints string) *unstructured.Unstructured {
	t.Helper()
	return object(t, `{apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4,
		metadata: {name: `+name+`, namespace: team-a, labels: {kubernetes.io/service-name: `+svc+`}},
		endpoints: `+endpoints+`}`)
}

func TestDecodeEndpoints(t *testing.T) {
	task, errs := decode(t, `{"objects": [{"version": "v1", "resource": "services", "name": "app", "endpoints": true},
		{"version": "v1", "resource": "services", "name": "web", "endpoints": false}]}`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := []Object{{Resource: services, Name: "app", Endpoints: true}, {Resource: services, Name: "web"}}
	if !reflect.DeepEqual(task.Objects, want) {
		t.Errorf("objects:\n got %+v\nwant %+v", task.Objects, want)
	}

	const only = `with.objects[0].endpoints: Invalid value: true: only for Services (group "", version v1, resource services)`
	for _, with := range []string{
		`{"objects": [{"group": "apps", "version": "v1", "resource": "deployments", "name": "app", "endpoints": true}]}`,
		`{"objects": [{"group": "serving.knative.dev", "version": "v1", "resource": "services", "name": "app", "endpoints": true}]}`,
		`{"objects": [{"version": "v2", "resource": "services", "name": "app", "endpoints": true}]}`,
	} {
		task, errs := decode(t, with)
		if got := errs.ToAggregate(); task != nil || got == nil || !strings.Contains(got.Error(), only) {
			t.Errorf("Decode(%s) = %v, want an error containing %q", with, got, only)
		}
	}
	with := `{"objects": [{"version": "v1", "resource": "services", "name": "app", "endpoints": "yes"}]}`
	if _, errs := decode(t, with); errs.ToAggregate() == nil || !strings.Contains(errs.ToAggregate().Error(), "with.objects[0].endpoints") {
		t.Errorf("Decode(%s) = %v, want an error naming with.objects[0].endpoints", with, errs.ToAggregate())
	}
}

func TestUnready(t *testing.T) {
	tests := []struct {
		name   string
		slices []string // endpoints of each slice
		want   string
	}{
		{"no slices", nil, "no EndpointSlice"},
		{"ready", []string{`[{addresses: [10.0.0.1], conditions: {ready: true}}]`}, ""},
		{"none ready", []string{`[{addresses: [10.0.0.1], conditions: {ready: false}}, {addresses: [10.0.0.2], conditions: {ready: false, serving: true}},
			{addresses: [10.0.0.3], conditions: {ready: false, serving: true, terminating: true}}]`}, "0 of 3 endpoints ready"},
		{"one of several ready", []string{`[{addresses: [10.0.0.1], conditions: {ready: false}}, {addresses: [10.0.0.2], conditions: {ready: true}}]`}, ""},
		{"ready in another slice", []string{`[{addresses: [10.0.0.1], conditions: {ready: false}}]`, `[{addresses: [10.0.0.2], conditions: {ready: true}}]`}, ""},
		{"no conditions: ready", []string{`[{addresses: [10.0.0.1]}]`}, ""},
		{"conditions without ready: ready", []string{`[{addresses: [10.0.0.1], conditions: {serving: false}}]`}, ""},
		{"ready null: ready", []string{`[{addresses: [10.0.0.1], conditions: {ready: null}}]`}, ""},
		// Slices that no API server would serve (it validates them) are
		// named as unreadable, not guessed at.
		{"ready not a bool", []string{`[{addresses: [10.0.0.1], conditions: {ready: "true"}}]`}, "EndpointSlice app-a unreadable: unrecognized type: bool"},
		{"empty slice", []string{`[]`}, "no endpoints in 1 EndpointSlice"},
		{"slices without endpoints", []string{`null`, `[]`}, "no endpoints in 2 EndpointSlices"},
		{"one endpoint in two slices counts once", []string{`[{addresses: [10.0.0.1], conditions: {ready: false}}]`, `[{addresses: [10.0.0.1], conditions: {ready: false}}]`}, "0 of 1 endpoint ready"},
		{"odd entries", []string{`[1, "x", {addresses: [10.0.0.1], conditions: {ready: false}}]`}, "EndpointSlice app-a unreadable: cannot restore struct from: float64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var items []unstructured.Unstructured
			for i, eps := range tc.slices {
				items = append(items, *slice(t, "app-"+string(rune('a'+i)), "app", eps))
			}
			if got := unready(items); got != tc.want {
				t.Errorf("unready(%q):\n got %q\nwant %q", tc.slices, got, tc.want)
			}
		})
	}
}

// TestWaitsForEndpoints runs the task against a fake reader whose Service
// appears, gets an EndpointSlice of endpoints that are not ready, and then
// a ready one; each step is one check, and the last one ends the wait.
func TestWaitsForEndpoints(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeReader()
		svc := object(t, `{apiVersion: v1, kind: Service, metadata: {name: app, namespace: team-a}}`)
		// Another Service's slice, which must not count.
		other := slice(t, "web-a", "web", `[{addresses: [10.0.0.9], conditions: {ready: true}}]`)
		notReady := slice(t, "app-a", "app", `[{addresses: [10.0.0.1], conditions: {ready: false}}, {addresses: [10.0.0.2], conditions: {ready: false}}]`)
		steps := []struct {
			change func()
			lists  int // Lists so far
		}{
			{func() {}, 0}, // the Service is missing: no List
			{func() { f.set(services, svc); f.set(endpointSliceResource, other) }, 1},
			{func() { f.set(endpointSliceResource, other, notReady) }, 2},
			{func() {
				f.set(endpointSliceResource, other, notReady, slice(t, "app-b", "app", `[{addresses: [10.0.0.3], conditions: {ready: true}}]`))
			}, 3},
		}
		task, errs := decode(t, `{"objects": [{"version": "v1", "resource": "services", "name": "app", "endpoints": true}], "interval": "5s"}`)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		done := make(chan error, 1)
		go func() { done <- task.Run(context.Background(), f.env("team-a")) }()
		for i, s := range steps {
			s.change()
			if i > 0 {
				time.Sleep(5 * time.Second) // the next check, in the bubble
			}
			synctest.Wait()
			f.mu.Lock()
			lists := len(f.lists)
			f.mu.Unlock()
			if lists != s.lists {
				t.Errorf("step %d: %d Lists, want %d", i, lists, s.lists)
			}
		}
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		for _, l := range f.lists {
			if l != "team-a kubernetes.io/service-name=app" {
				t.Errorf("List of %q, want namespace team-a and kubernetes.io/service-name=app", l)
			}
		}
	})
}

// TestEndpointsTimeout names, for each Service, what its endpoints lack.
func TestEndpointsTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeReader()
		var svcs []*unstructured.Unstructured
		for _, name := range []string{"app", "web", "db"} {
			svcs = append(svcs, object(t, `{apiVersion: v1, kind: Service, metadata: {name: `+name+`, namespace: team-a}}`))
		}
		f.set(services, svcs...)
		f.set(endpointSliceResource,
			slice(t, "web-a", "web", `[{addresses: [10.0.0.1], conditions: {ready: false}}, {addresses: [10.0.0.2], conditions: {ready: false}}]`),
			slice(t, "web-b", "web", `[{addresses: [10.0.0.3], conditions: {ready: false}}]`),
			slice(t, "db-a", "db", `[{addresses: [10.0.0.4]}]`))
		task, errs := decode(t, `{"objects": [
			{"version": "v1", "resource": "services", "name": "app", "endpoints": true},
			{"version": "v1", "resource": "services", "name": "web", "endpoints": true},
			{"version": "v1", "resource": "services", "name": "db", "endpoints": true},
			{"version": "v1", "resource": "services", "name": "gone", "endpoints": true}], "timeout": "10s"}`)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		err := task.Run(context.Background(), f.env("team-a"))
		want := "services team-a/app: no EndpointSlice; services team-a/web: 0 of 3 endpoints ready; services team-a/gone: not found"
		if err == nil || !strings.HasPrefix(err.Error(), "not ready after 10s (") || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("Run:\n got %v\nwant it to end with %s", err, want)
		}
	})
}

// TestEndpointsListErrors: a missing permission to list EndpointSlices
// fails at once, naming the Service; an unreachable API server is retried
// and reported at the timeout.
func TestEndpointsListErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeReader()
		f.set(services, object(t, `{apiVersion: v1, kind: Service, metadata: {name: app, namespace: team-a}}`))
		f.listErr = apierrors.NewForbidden(endpointSliceResource.GroupResource(), "", errors.New("no rule"))
		task, _ := decode(t, `{"objects": [{"version": "v1", "resource": "services", "name": "app", "endpoints": true}], "timeout": "1h"}`)
		start := time.Now()
		err := task.Run(context.Background(), f.env("team-a"))
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "list the EndpointSlices of services team-a/app: ") {
			t.Errorf("Run = %v; want Forbidden naming services team-a/app", err)
		}
		if took := time.Since(start); took != 0 {
			t.Errorf("Run took %v, want no wait", took)
		}

		f.listErr = errors.New("dial tcp 10.0.0.1:443: connect: connection refused")
		task, _ = decode(t, `{"objects": [{"version": "v1", "resource": "services", "name": "app", "endpoints": true}], "timeout": "5s"}`)
		err = task.Run(context.Background(), f.env("team-a"))
		if want := "services team-a/app: list its EndpointSlices: " + f.listErr.Error(); err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("Run:\n got %v\nwant it to end with %s", err, want)
		}
	})
}
