#!/usr/bin/env bash
# Start-up benchmark of `kubectl iter8 version` for the issue's acceptance:
# median wall time of 20 runs at most 1.05 times `kubectl version --client`'s
# and median peak RSS at most 1.1 times `helm version`'s (Helm 3), measured
# side by side, interleaved, in one run by scripts/bench/startup (see its
# doc comment). Builds bin/kubectl-iter8 with make build if it is missing
# (delete it or run make build first to measure a fresh one), takes Helm 3
# from the test bed (scripts/testbed.sh, built once into a cache) and
# kubectl from PATH. Extra arguments go to the Go program, e.g. -n 50 or
# -kubectl '/usr/bin/kubectl version --client'. Exits 1 when a target is
# missed, 2 when a command fails.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

GO=${GO:-go}

log() { printf 'bench startup: %s\n' "$*" >&2; }

if [[ ! -x bin/kubectl-iter8 ]]; then
	log "building bin/kubectl-iter8 (make build)"
	make build GO="$GO" >&2
fi
# Traefik is not needed here; Helm 3 (and 4) are built once if missing.
testbed=$(ITER8_TESTBED_TRAEFIK=0 bash scripts/testbed.sh)
helm="$testbed/helm"
[[ -x "$helm" ]] || {
	log "no helm in $testbed"
	exit 2
}
printf -v helm_cmd '%q version' "$helm"
# Built rather than run with go run, which turns every failing exit into 1.
work=$(mktemp -d "${TMPDIR:-/tmp}/iter8-bench-startup.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$GO" build -o "$work/startup" ./scripts/bench/startup
status=0
"$work/startup" -check -helm "$helm_cmd" "$@" || status=$?
exit "$status"
