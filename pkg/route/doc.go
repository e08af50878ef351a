// Package route reads the routes that charts/release renders (a Gateway API
// HTTPRoute or an Istio VirtualService named after the app) into one form,
// and holds the chart's rules for weights: which weights are valid for a
// strategy, and how Istio's percentages are derived from them.
//
// It is pure: it works on unstructured objects and never talks to a
// cluster.
package route
