#!/usr/bin/env bash
# Installs what the tests need beyond Go, from Debian's packages: Chromium
# (the HTML report is opened in it) and unshare (to open it with no network).
# Does nothing when they are already there.
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v unshare >/dev/null || missing+=(util-linux)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "install-test-deps: need root to install ${missing[*]} with apt-get" >&2
	exit 1
fi
echo "install-test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
