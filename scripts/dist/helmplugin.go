package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"sigs.k8s.io/yaml"
)

// helmMainPackage is the helm plugin's binary.
const helmMainPackage = "./cmd/helm-iter8"

// helmArchiveName is the file name of the helm plugin's archive for p. Helm
// names the plugin's folder after the URL's file name up to "-<version>"
// (helm-iter8), and takes only .tar.gz or .tgz, on every OS.
func helmArchiveName(rel Release, p Platform) string {
	return fmt.Sprintf("helm-iter8-%s-%s-%s.tar.gz", rel.AppVersion, p.OS, p.Arch)
}

// helmBinaryName is the helm plugin's binary on p, as plugin.yaml's
// platformCommand names it.
func helmBinaryName(p Platform) string {
	if p.OS == "windows" {
		return "helm-iter8.exe"
	}
	return "helm-iter8"
}

// helmPluginFiles are the files of the checkout that the helm plugin's
// archive holds besides its binary: what plugin.yaml refers to.
var helmPluginFiles = []struct {
	name string
	mode int64
}{
	{"plugin.yaml", 0o644},
	{"scripts/helm-plugin-install.sh", 0o755},
	{"LICENSE", 0o644},
}

// checkPluginVersion refuses a plugin.yaml whose version is not the
// release's: helm plugin list shows it, and the install hook builds with it.
func checkPluginVersion(root string, rel Release) error {
	b, err := os.ReadFile(filepath.Join(root, "plugin.yaml"))
	if err != nil {
		return err
	}
	var meta struct{ Version string }
	if err := yaml.Unmarshal(b, &meta); err != nil {
		return fmt.Errorf("plugin.yaml: %w", err)
	}
	if meta.Version != rel.AppVersion {
		return fmt.Errorf("plugin.yaml: version %q, want the chart's appVersion %q", meta.Version, rel.AppVersion)
	}
	return nil
}

// writeHelmArchive packs the helm plugin (plugin.yaml, bin/<binary>, its
// install hook and LICENSE) into path with fixed times, as writeArchive
// does, and returns the archive's bytes' sha256.
func writeHelmArchive(path, root string, p Platform, bin string, mtime time.Time) (string, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	// Helm 3 creates no parent folders when it extracts: list them first.
	for _, dir := range []string{"bin/", "scripts/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: mtime, Format: tar.FormatUSTAR}); err != nil {
			return "", err
		}
	}
	if err := tarFile(tw, "bin/"+helmBinaryName(p), bin, 0o755, mtime); err != nil {
		return "", err
	}
	for _, f := range helmPluginFiles {
		if err := tarFile(tw, f.name, filepath.Join(root, filepath.FromSlash(f.name)), f.mode, mtime); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	if err := writeFileAtomic(path, buf.Bytes()); err != nil {
		return "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:]), nil
}

// writeFileAtomic writes data beside path and renames it there, so that a
// failed run leaves no half file.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Signer makes the provenance files (.prov) that Helm 4 checks before it
// installs a plugin archive: an OpenPGP clear-signed message of the plugin's
// metadata, "...", and the archive's sha256 under its file name.
type Signer struct {
	entity *openpgp.Entity
	key    *packet.PrivateKey
}

// NewSigner reads the secret key whose user id is, or else contains, key
// (as helm's --key picks one) from keyring, a binary or ASCII-armoured
// OpenPGP keyring (gpg --export-secret-keys [-a]). The key must not be
// encrypted: decrypt a copy for the release, as CI would.
func NewSigner(keyring, key string) (*Signer, error) {
	data, err := os.ReadFile(keyring)
	if err != nil {
		return nil, fmt.Errorf("-sign-keyring: %w", err)
	}
	ring, err := openpgp.ReadKeyRing(bytes.NewReader(data))
	if err != nil {
		if ring, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("-sign-keyring %s: not an OpenPGP keyring: %w", keyring, err)
		}
	}
	found := matchingKeys(ring, key)
	switch {
	case len(found) == 0:
		return nil, fmt.Errorf("-sign-key %q: no key in %s has that user id", key, keyring)
	case len(found) > 1:
		return nil, fmt.Errorf("-sign-key %q: %d keys in %s match; give the whole user id", key, len(found), keyring)
	}
	// The key that signs: a signing subkey, else the primary key if it may
	// sign (what Helm 4 looks the signature's issuer up by).
	signing, ok := found[0].SigningKey(time.Now())
	switch {
	case !ok:
		return nil, fmt.Errorf("-sign-key %q: the key has no valid signing key or subkey", key)
	case signing.PrivateKey == nil:
		return nil, fmt.Errorf("-sign-key %q: %s holds its public key only; give a keyring with the secret key", key, keyring)
	case signing.PrivateKey.Dummy():
		return nil, fmt.Errorf("-sign-key %q: %s holds a stub of the secret signing key (kept offline); give the key itself", key, keyring)
	case signing.PrivateKey.Encrypted:
		return nil, fmt.Errorf("-sign-key %q: the secret key is encrypted; give a decrypted copy", key)
	}
	return &Signer{entity: found[0], key: signing.PrivateKey}, nil
}

// matchingKeys are the keys with the user id key, else those with a user
// id that contains it.
func matchingKeys(ring openpgp.EntityList, key string) []*openpgp.Entity {
	var containing []*openpgp.Entity
	for _, e := range ring {
		if _, ok := e.Identities[key]; ok {
			return []*openpgp.Entity{e}
		}
		for id := range e.Identities {
			if strings.Contains(id, key) {
				containing = append(containing, e)
				break
			}
		}
	}
	return containing
}

// provConfig is the hash Helm's provenance files use.
var provConfig = packet.Config{DefaultHash: crypto.SHA512}

// Sign returns the provenance file of the archive data named filename (the
// last element of its download URL) for the plugin of plugin.yaml.
func (s *Signer) Sign(data []byte, filename string, pluginYAML []byte) ([]byte, error) {
	var meta struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if err := yaml.Unmarshal(pluginYAML, &meta); err != nil {
		return nil, fmt.Errorf("plugin.yaml: %w", err)
	}
	metaYAML, err := yaml.Marshal(meta)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	files, err := yaml.Marshal(map[string]any{"files": map[string]string{filename: "sha256:" + hex.EncodeToString(sum[:])}})
	if err != nil {
		return nil, err
	}
	// YAML's document start "---" is not allowed in a clear-signed text;
	// Helm separates the two documents by the end marker "...".
	var msg bytes.Buffer
	msg.Write(metaYAML)
	msg.WriteString("\n...\n")
	msg.Write(files)

	var out bytes.Buffer
	w, err := clearsign.Encode(&out, s.key, &provConfig)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(w, &msg); err != nil {
		return nil, errors.Join(err, w.Close())
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("sign %s: %w", filename, err)
	}
	if err := s.check(out.Bytes()); err != nil {
		return nil, fmt.Errorf("sign %s: the signature does not verify as Helm 4 checks it: %w", filename, err)
	}
	return out.Bytes(), nil
}

// check verifies a provenance file's signature as Helm 4 does, by the
// signer's public key alone.
func (s *Signer) check(prov []byte) error {
	block, _ := clearsign.Decode(prov)
	if block == nil {
		return errors.New("no clear-signed block")
	}
	_, err := openpgp.CheckDetachedSignature(openpgp.EntityList{s.entity}, bytes.NewReader(block.Bytes), block.ArmoredSignature.Body, &provConfig)
	return err
}
