// Package store keeps experiment specs and results: in local files here, and
// in Kubernetes Secrets for experiments that run in a cluster.
package store
