#!/usr/bin/env bash
# The README's first command (`make demo`): start two versions of a sample
# app on 127.0.0.1 (v2 slower and with some errors), run a local experiment
# that compares them against SLOs with bin/kubectl-iter8, print the report,
# write an HTML one, and stop everything it started. Files land in demo-out/.
# It runs the kubectl-iter8 that `make build` made (make demo builds it
# first) and never replaces it, so that a later `make build` has nothing to
# redo; only the sample app, which is test code, is built here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out="$root/demo-out"
GO=${GO:-go}

if [ ! -x bin/kubectl-iter8 ]; then
	echo "bin/kubectl-iter8 is missing: run make demo (or make build first)" >&2
	exit 2
fi
mkdir -p "$out"
echo "==> building the sample app" >&2
CGO_ENABLED=0 "$GO" build -trimpath -ldflags '-s -w' -o "$out/sampleapp" ./test/sampleapp/cmd/sampleapp

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

start() { # start VERSION LATENCY ERROR_RATE
	rm -f "$out/$1.addr"
	"$out/sampleapp" --listen 127.0.0.1:0 --version "$1" --latency "$2" --error-rate "$3" \
		--addr-file "$out/$1.addr" 2>"$out/$1.log" &
	pids+=($!)
}
start v1 uniform:2ms-6ms 0
start v2 uniform:10ms-20ms 0.05

addr() { # wait up to 10 s for an app's address file
	for _ in $(seq 100); do
		[ -s "$out/$1.addr" ] && { cat "$out/$1.addr"; return; }
		sleep 0.1
	done
	echo "sample app $1 did not start; see $out/$1.log" >&2
	exit 1
}
v1=$(addr v1)
v2=$(addr v2)
echo "==> v1 on http://$v1/ (2-6 ms), v2 on http://$v2/ (10-20 ms, 5% errors)" >&2

rm -f "$out/experiment.yaml" "$out/experiment.result.json"
status=0
bin/kubectl-iter8 launch --local --spec "$out/experiment.yaml" \
	--set 'versions={v1,v2}' \
	--set 'tasks={ready,http,assess}' \
	--set ready.url="http://$v2/healthz" \
	--set http.duration=5s --set http.qps=200 --set http.connections=8 \
	--set 'http.endpoints[0].version=v1' --set "http.endpoints[0].url=http://$v1/" \
	--set 'http.endpoints[1].version=v2' --set "http.endpoints[1].url=http://$v2/" \
	--set 'assess.slos[0].metric=http/latency-p95' --set 'assess.slos[0].upper=15' \
	--set 'assess.slos[1].metric=http/error-rate' --set 'assess.slos[1].upper=0.01' \
	--set 'assess.rewards.min={http/latency-mean,http/error-rate}' \
	--set 'assess.comparisons[0].metric=http/latency' \
	--set 'assess.comparisons[1].metric=http/error-rate' || status=$?
bin/kubectl-iter8 report -f "$out/experiment.yaml" -o html >"$out/report.html"
echo >&2
echo "==> spec: $out/experiment.yaml, result: $out/experiment.result.json" >&2
echo "==> HTML report (opens offline): $out/report.html" >&2
echo "==> try: bin/kubectl-iter8 report -f $out/experiment.yaml -o yaml" >&2
exit "$status"
