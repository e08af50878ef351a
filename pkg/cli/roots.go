package cli

import (
	"crypto/x509"
	"sync"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// useFallbackRoots gives Go the roots of Mozilla's trust store (from
// golang.org/x/crypto) to verify servers with when the system has none, as
// in Iter8's image, which has no CA bundle; Go keeps using the system's
// roots where there are some. The roots are parsed when a command that may
// reach a server starts rather than at every start-up, so that `version`
// stays quick and small.
var useFallbackRoots = sync.OnceFunc(func() { x509.SetFallbackRoots(fallbackRoots()) })

// fallbackRoots parses the bundle's roots, with their constraints.
func fallbackRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	for root := range bundle.Roots() {
		cert, err := x509.ParseCertificate(root.Certificate)
		if err != nil {
			continue // checked upstream; one bad root must not fail a command
		}
		if root.Constraint == nil {
			pool.AddCert(cert)
		} else {
			pool.AddCertWithConstraint(cert, root.Constraint)
		}
	}
	return pool
}
