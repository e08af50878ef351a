package cli

import (
	"crypto/x509"
	"testing"
)

// TestFallbackRootsParse: the bundle's roots all parse, so that an image
// without a CA bundle still verifies servers.
func TestFallbackRootsParse(t *testing.T) {
	pool := fallbackRoots()
	//lint:ignore SA1019 the count is all this test needs
	if n := len(pool.Subjects()); n < 100 {
		t.Fatalf("the fallback pool holds %d roots, want the bundle's 100 or more", n)
	}
	if pool.Equal(x509.NewCertPool()) {
		t.Fatal("the fallback pool is empty")
	}
}
