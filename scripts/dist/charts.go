package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	helmaction "helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	helmcli "helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/registry"
)

// ReleasedCharts are the charts that charts packages, in charts/.
var ReleasedCharts = []string{"iter8", "release", "abn"}

// ChartsConfig says where charts pushes the packaged charts.
type ChartsConfig struct {
	// Push is an oci:// registry and path (oci://ghcr.io/iter8-tools/charts);
	// each chart goes to <Push>/<name>:<version>. Empty: package only.
	Push string
	// PlainHTTP pushes over HTTP, for a registry without TLS.
	PlainHTTP bool
}

// PackagedChart is one chart archive that charts wrote.
type PackagedChart struct {
	Name, Version string
	// Path is the archive, <out>/<name>-<version>.tgz.
	Path   string
	SHA256 string
	// Ref is where it was pushed (host/path/name:version); empty if not.
	Ref string
}

// Charts packages ReleasedCharts (each at the version its Chart.yaml gives)
// into cfg.Out, as helm package does, and pushes them as helm push does
// when cc.Push is set. Logins come from Helm's registry config (helm
// registry login).
func Charts(cfg Config, cc ChartsConfig) ([]PackagedChart, error) {
	if cc.Push != "" && !registry.IsOCI(cc.Push) {
		return nil, fmt.Errorf("-push %q: want an OCI registry and path, oci://HOST[:PORT]/PATH", cc.Push)
	}
	if cc.PlainHTTP && cc.Push == "" {
		return nil, fmt.Errorf("-plain-http is for -push")
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, err
	}
	var push *helmaction.Push
	if cc.Push != "" {
		settings := helmcli.New()
		opts := []registry.ClientOption{registry.ClientOptWriter(io.Discard), registry.ClientOptCredentialsFile(settings.RegistryConfig)}
		if cc.PlainHTTP {
			opts = append(opts, registry.ClientOptPlainHTTP())
		}
		rc, err := registry.NewClient(opts...)
		if err != nil {
			return nil, fmt.Errorf("registry client: %w", err)
		}
		push = helmaction.NewPushWithOpts(helmaction.WithPushConfig(&helmaction.Configuration{RegistryClient: rc}),
			helmaction.WithPlainHTTP(cc.PlainHTTP))
		push.Settings = settings
	}
	var out []PackagedChart
	for _, name := range ReleasedCharts {
		dir := filepath.Join(cfg.Root, "charts", name)
		ch, err := loader.LoadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", dir, err)
		}
		pkg := helmaction.NewPackage()
		pkg.Destination = cfg.Out
		path, err := pkg.Run(dir, nil)
		if err != nil {
			return nil, fmt.Errorf("package %s: %w", dir, err)
		}
		sum, err := fileSHA256(path)
		if err != nil {
			return nil, err
		}
		p := PackagedChart{Name: ch.Name(), Version: ch.Metadata.Version, Path: path, SHA256: sum}
		if push != nil {
			if _, err := push.Run(path, cc.Push); err != nil {
				return nil, fmt.Errorf("push %s to %s: %w", filepath.Base(path), cc.Push, err)
			}
			p.Ref = strings.TrimPrefix(strings.TrimSuffix(cc.Push, "/"), registry.OCIScheme+"://") + "/" + p.Name + ":" + p.Version
		}
		fmt.Fprintf(cfg.Log, "chart %s %s: %s\n", p.Name, p.Version, path)
		out = append(out, p)
	}
	return out, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
