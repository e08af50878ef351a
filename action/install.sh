#!/usr/bin/env bash
# install.sh installs kubectl-iter8 from a release archive, for the Iter8
# GitHub Action (action.yml) or any CI on linux or macOS (amd64, arm64):
#
#   ITER8_VERSION=v0.1.0 bash install.sh
#
# It downloads kubectl-iter8_<version>_<os>_<arch>.tar.gz from
# $ITER8_DOWNLOAD_URL/<version>/ and checks its sha256 against
# $ITER8_SHA256 when given, else against the release's sha256sums.txt; on a
# mismatch it installs nothing and exits 1. The binary goes to
# $ITER8_INSTALL_DIR (default $RUNNER_TEMP/iter8-bin in GitHub Actions,
# else ~/.local/bin), which is added to $GITHUB_PATH when that is set.
set -euo pipefail

fail() {
	echo "::error title=iter8 install::$*" >&2
	exit 1
}

version=${ITER8_VERSION:-}
[[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || fail "version \"$version\": want a release tag such as v0.1.0"
base=${ITER8_DOWNLOAD_URL:-https://github.com/iter8-tools/iter8/releases/download}
base=${base%/}
want=${ITER8_SHA256:-}
[[ -z $want || $want =~ ^[0-9a-f]{64}$ ]] || fail "sha256 \"$want\": want 64 lowercase hex digits"

case "$(uname -s)" in
Linux) os=linux ;;
Darwin) os=darwin ;;
*) fail "no kubectl-iter8 archive for $(uname -s) in this action: use linux or macOS" ;;
esac
case "$(uname -m)" in
x86_64 | amd64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) fail "no kubectl-iter8 archive for $(uname -m): use amd64 or arm64" ;;
esac

archive="kubectl-iter8_${version}_${os}_${arch}.tar.gz"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL --retry 3 -o "$tmp/$archive" "$base/$version/$archive" || fail "download $base/$version/$archive failed"
if [[ -z $want ]]; then
	curl -fsSL --retry 3 -o "$tmp/sha256sums.txt" "$base/$version/sha256sums.txt" || fail "download $base/$version/sha256sums.txt failed"
	want=$(awk -v f="$archive" '$2 == f { print $1 }' "$tmp/sha256sums.txt")
	[[ -n $want ]] || fail "$base/$version/sha256sums.txt lists no $archive"
fi
if command -v sha256sum >/dev/null; then
	got=$(sha256sum "$tmp/$archive" | cut -d' ' -f1)
else
	got=$(shasum -a 256 "$tmp/$archive" | cut -d' ' -f1)
fi
[[ $got == "$want" ]] || fail "sha256 mismatch for $archive: got $got, want $want; nothing installed"

dir=${ITER8_INSTALL_DIR:-${RUNNER_TEMP:+$RUNNER_TEMP/iter8-bin}}
dir=${dir:-$HOME/.local/bin}
mkdir -p "$dir"
tar -xzf "$tmp/$archive" -C "$tmp" kubectl-iter8
mv -f "$tmp/kubectl-iter8" "$dir/kubectl-iter8"
if [[ -n ${GITHUB_PATH:-} ]]; then
	echo "$dir" >>"$GITHUB_PATH"
fi
echo "installed $("$dir/kubectl-iter8" version --short) into $dir"
