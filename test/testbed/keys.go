package testbed

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// TestKeyrings writes a new OpenPGP key with the user id name (and an
// invalid address), as a secret keyring and a public one in binary form,
// as gpg --export-secret-keys and gpg --export write them, and returns
// their paths: what make dist signs with and what Helm 4 verifies with.
func TestKeyrings(t testing.TB, name string) (secret, public string) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "test", "test@iter8.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	secret, public = filepath.Join(dir, "secring.gpg"), filepath.Join(dir, "pubring.gpg")
	for path, write := range map[string]func(*os.File) error{
		secret: func(f *os.File) error { return e.SerializePrivate(f, nil) },
		public: func(f *os.File) error { return e.Serialize(f) },
	} {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := write(f); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return secret, public
}
