#!/usr/bin/env bash
# Installs what the tests need beyond Go, from Debian's packages: Chromium
# (the HTML report is opened in it), unshare (to open it with no network),
# Prometheus (test/promtest starts it as a metrics backend), Redis
# (test/redistest starts it for the ledger of pkg/abn/ledger/redisledger)
# and ip from iproute2 (test/traefik puts app versions in network
# namespaces). Does nothing when they are already there.
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v unshare >/dev/null || missing+=(util-linux)
command -v ip >/dev/null || missing+=(iproute2)
# test/promtest runs this exact path, not whatever prometheus is on PATH.
[ -x /usr/bin/prometheus ] || missing+=(prometheus)
# test/redistest likewise runs /usr/bin/redis-server.
[ -x /usr/bin/redis-server ] || missing+=(redis-server)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "install-test-deps: need root to install ${missing[*]} with apt-get" >&2
	exit 1
fi
echo "install-test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The prometheus package enables a daemon on :9090 where systemd runs. Tests
# start their own server on a free port, so the daemon is only in the way.
if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
	systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
# Likewise the redis-server package's daemon on :6379: tests start their own
# server on a free port with its own append-only file.
if [[ " ${missing[*]} " == *" redis-server "* ]] && [ -d /run/systemd/system ]; then
	systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
