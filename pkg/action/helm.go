package action

import (
	"fmt"
	"io"

	helmaction "helm.sh/helm/v3/pkg/action"
	helmcli "helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/registry"
)

// helmAction connects to the cluster and makes Helm's action
// configuration for it.
func (c *Configuration) helmAction() (*Cluster, *helmaction.Configuration, error) {
	cl, err := c.cluster()
	if err != nil {
		return nil, nil, err
	}
	helm, err := newHelmConfig(c, helmSettingsOf(c), cl)
	if err != nil {
		return nil, nil, err
	}
	return cl, helm, nil
}

// newHelmConfig is Helm's action configuration for the cluster cl.
func newHelmConfig(cfg *Configuration, settings *helmcli.EnvSettings, cl *Cluster) (*helmaction.Configuration, error) {
	helm := new(helmaction.Configuration)
	debug := func(string, ...any) {}
	if settings.Debug {
		debug = func(format string, v ...any) { fmt.Fprintf(cfg.Log, "helm: "+format+"\n", v...) }
	}
	if err := helm.Init(cl.Getter, cl.Namespace, cl.HelmDriver, debug); err != nil {
		return nil, fmt.Errorf("helm: %w", err)
	}
	if cfg.Helm == nil {
		return helm, nil // no registries: Helm's client would read the user's logins
	}
	rc, err := newRegistryClient(settings, false)
	if err != nil {
		return nil, err
	}
	helm.RegistryClient = rc
	return helm, nil
}

// newRegistryClient is Helm's client of OCI registries, with the user's
// logins (helm registry login); plainHTTP talks HTTP, not HTTPS.
func newRegistryClient(settings *helmcli.EnvSettings, plainHTTP bool) (*registry.Client, error) {
	opts := []registry.ClientOption{
		registry.ClientOptDebug(settings.Debug),
		registry.ClientOptEnableCache(true),
		registry.ClientOptWriter(io.Discard),
		registry.ClientOptCredentialsFile(settings.RegistryConfig),
	}
	if plainHTTP {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	rc, err := registry.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("helm registry client: %w", err)
	}
	return rc, nil
}

// helmSettingsOf are Helm's settings for repositories and registries: the
// front-end's (pkg/cli reads them from Helm's environment), else none, so
// that a library caller's process environment never changes what the
// action does.
func helmSettingsOf(cfg *Configuration) *helmcli.EnvSettings {
	if cfg.Helm != nil {
		return cfg.Helm
	}
	return &helmcli.EnvSettings{}
}
