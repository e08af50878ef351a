#!/usr/bin/env bash
# testbed.sh builds the test bed's binaries (kube-apiserver, etcd, helm) from
# the versions pinned in test/tools/go.mod, once, into a cache outside the
# clone keyed by those versions, and prints that directory on stdout (the value
# for KUBEBUILDER_ASSETS). Binaries already in the cache are not rebuilt, so a
# second run costs nothing; progress goes to stderr.
#
#   export KUBEBUILDER_ASSETS="$(bash scripts/testbed.sh)"
#
# It also builds Traefik (the Gateway API data plane of the routing tests)
# from test/traefik/tools/go.mod into a cache directory of its own, keyed by
# Traefik's version, and links it as "traefik" in the printed directory, so
# tests find it at $KUBEBUILDER_ASSETS/traefik. ITER8_TESTBED_TRAEFIK=0 skips
# it. Helm 4 is built the same way from test/helm4/tools/go.mod and linked
# as "helm4" (the tests install the charts and the plugin with both Helms).
#
# ITER8_TESTBED_CACHE overrides the cache root (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/iter8/testbed); ITER8_TESTBED_TIMEOUT bounds
# each build (default 30m). A cold build takes about 6 minutes on 2 cores, and
# Traefik's about 7 more, Helm 4's about 4.
set -euo pipefail

# Keep in step with test/tools/go.mod (checked below).
K8S_VERSION=1.37.1
ETCD_VERSION=3.7.0
HELM_VERSION=3.22.0
# Keep in step with test/traefik/tools/go.mod (checked below).
TRAEFIK_VERSION=3.6.12
# Keep in step with test/helm4/tools/go.mod (checked below).
HELM4_VERSION=4.3.1

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/test/tools"
traefik_tools="$root/test/traefik/tools"
helm4_tools="$root/test/helm4/tools"
GO="${GO:-go}"

log() { echo "testbed: $*" >&2; }

for pin in "k8s.io/kubernetes v$K8S_VERSION" "go.etcd.io/etcd/server/v3 v$ETCD_VERSION" "helm.sh/helm/v3 v$HELM_VERSION"; do
	if ! grep -qE "^[[:space:]]*(require[[:space:]]+)?${pin//./\\.}( |$)" "$tools/go.mod"; then
		log "test/tools/go.mod does not pin $pin; update the versions in $0"
		exit 2
	fi
done

cache_root="${ITER8_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iter8/testbed}"
dir="$cache_root/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION"
mkdir -p "$dir"

# binary name -> package (the name is the last path element, as go build -o dir/ writes it)
declare -A pkgs=(
	[kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
	[etcd]=github.com/iter8-tools/iter8/test/tools/etcd
	[helm]=helm.sh/helm/v3/cmd/helm
)

missing() {
	local name out=()
	for name in kube-apiserver etcd helm; do
		[[ -x "$dir/$name" ]] || out+=("$name")
	done
	echo "${out[@]}"
}

if [[ -n "$(missing)" ]]; then
	# One builder at a time per cache directory: test packages and CI steps
	# may call this script concurrently.
	exec 9>"$dir/.lock"
	if ! flock -w "${ITER8_TESTBED_LOCK_WAIT:-1800}" 9; then
		log "timed out waiting for the lock on $dir"
		exit 1
	fi
	read -r -a todo <<<"$(missing)"
	if ((${#todo[@]} > 0)); then
		targets=()
		for name in "${todo[@]}"; do targets+=("${pkgs[$name]}"); done
		tmp="$(mktemp -d "$dir/.build.XXXXXX")"
		trap 'rm -rf "$tmp"' EXIT
		ldflags=(
			-s -w
			-X "k8s.io/component-base/version.gitVersion=v$K8S_VERSION"
			-X "k8s.io/component-base/version.gitMajor=${K8S_VERSION%%.*}"
			-X "k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION")"
			-X "k8s.io/component-base/version.gitTreeState=clean"
			-X "k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION"
			-X "k8s.io/client-go/pkg/version.gitMajor=${K8S_VERSION%%.*}"
			-X "k8s.io/client-go/pkg/version.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION")"
			-X "helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
			-X "helm.sh/helm/v3/internal/version.gitTreeState=clean"
		)
		log "building ${todo[*]} into $dir (cold: about 6 minutes on 2 cores)"
		start=$SECONDS
		(cd "$tools" && CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=readonly" \
			timeout "${ITER8_TESTBED_TIMEOUT:-30m}" \
			"$GO" build -trimpath -ldflags "${ldflags[*]}" -o "$tmp/" "${targets[@]}")
		for name in "${todo[@]}"; do
			mv -f "$tmp/$name" "$dir/$name"
		done
		log "built ${todo[*]} in $((SECONDS - start))s"
	fi
fi

# own_module_tool NAME VERSION MODULE_DIR PIN PACKAGE LDFLAGS: a tool
# built from a module of its own (its version is not part of $dir's key)
# into a cache directory of its own, linked into $dir as NAME.
own_module_tool() {
	local name=$1 version=$2 tools_dir=$3 pin=$4 pkg=$5 ldflags=$6
	if ! grep -qE "^[[:space:]]*(require[[:space:]]+)?${pin//./\\.}( |$)" "$tools_dir/go.mod"; then
		log "${tools_dir#"$root"/}/go.mod does not pin $pin; update the version in $0"
		exit 2
	fi
	local tdir="$cache_root/$name-$version"
	mkdir -p "$tdir"
	if [[ ! -x "$tdir/$name" ]]; then
		exec 8>"$tdir/.lock"
		if ! flock -w "${ITER8_TESTBED_LOCK_WAIT:-1800}" 8; then
			log "timed out waiting for the lock on $tdir"
			exit 1
		fi
		if [[ ! -x "$tdir/$name" ]]; then
			ttmp="$(mktemp -d "$tdir/.build.XXXXXX")"
			trap 'rm -rf "${tmp:-}" "${ttmp:-}"' EXIT
			log "building $name v$version into $tdir"
			local start=$SECONDS
			(cd "$tools_dir" && CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=readonly" \
				timeout "${ITER8_TESTBED_TIMEOUT:-30m}" \
				"$GO" build -trimpath -ldflags "-s -w $ldflags" -o "$ttmp/" "$pkg")
			mv -f "$ttmp/$(basename "$pkg")" "$tdir/$name"
			rm -rf "$ttmp"
			log "built $name in $((SECONDS - start))s"
		fi
		exec 8>&-
	fi
	if [[ "$(readlink "$dir/$name" 2>/dev/null || true)" != "$tdir/$name" ]]; then
		ln -sfn "$tdir/$name" "$dir/$name.tmp.$$"
		mv -fT "$dir/$name.tmp.$$" "$dir/$name"
	fi
}

# Traefik: cold, about 7 minutes on 2 cores.
if [[ "${ITER8_TESTBED_TRAEFIK:-1}" != 0 ]]; then
	own_module_tool traefik "$TRAEFIK_VERSION" "$traefik_tools" "github.com/traefik/traefik/v3 v$TRAEFIK_VERSION" \
		github.com/traefik/traefik/v3/cmd/traefik "-X github.com/traefik/traefik/v3/pkg/version.Version=v$TRAEFIK_VERSION"
fi
# Helm 4: cold, about 4 minutes on 2 cores.
own_module_tool helm4 "$HELM4_VERSION" "$helm4_tools" "helm.sh/helm/v4 v$HELM4_VERSION" \
	helm.sh/helm/v4/cmd/helm "-X helm.sh/helm/v4/internal/version.version=v$HELM4_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean"

echo "$dir"
