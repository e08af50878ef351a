#!/bin/sh
# Install and update hook of the `helm iter8` plugin (plugin.yaml). In a
# checkout with Go at hand it builds bin/helm-iter8; a release archive
# carries that binary, so without Go the one there is kept. Running it again
# is harmless: Go's build cache makes a rebuild quick.
set -eu
dir=${HELM_PLUGIN_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$dir"
exe=bin/helm-iter8
if command -v go >/dev/null 2>&1 && [ -f go.mod ] && [ -d cmd/helm-iter8 ]; then
  echo "helm iter8: building $dir/$exe"
  # The plugin's version (the release's, as make build sets it).
  version=v$(sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' plugin.yaml)
  CGO_ENABLED=0 go build -trimpath -ldflags "-X github.com/iter8-tools/iter8/pkg/action.version=$version" -o "$exe" ./cmd/helm-iter8
elif [ ! -x "$exe" ]; then
  echo "helm iter8: $dir/$exe is missing and there is no Go to build it; install a release archive of the plugin instead" >&2
  exit 1
fi
"./$exe" version --short >/dev/null
