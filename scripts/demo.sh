#!/usr/bin/env bash
# The README's first command: build iter8 and a sample app, start two versions
# of the app on 127.0.0.1 (v2 slower and with some errors), run a local
# experiment that compares them against SLOs, print the report, write an HTML
# one, and stop everything it started. Files land in demo-out/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out="$root/demo-out"
mkdir -p "$out" bin

echo "==> building iter8 and the sample app" >&2
make --no-print-directory plotly >&2
go build -o bin/kubectl-iter8 ./cmd/kubectl-iter8
go build -o bin/sampleapp ./test/sampleapp/cmd/sampleapp

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

start() { # start VERSION LATENCY ERROR_RATE
	rm -f "$out/$1.addr"
	bin/sampleapp --listen 127.0.0.1:0 --version "$1" --latency "$2" --error-rate "$3" \
		--addr-file "$out/$1.addr" 2>"$out/$1.log" &
	pids+=($!)
}
start v1 uniform:2ms-6ms 0
start v2 uniform:10ms-20ms 0.02

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
echo "==> v1 on http://$v1/ (2-6 ms), v2 on http://$v2/ (10-20 ms, 2% errors)" >&2

rm -f "$out/experiment.yaml" "$out/experiment.result.json"
status=0
bin/kubectl-iter8 launch --local --spec "$out/experiment.yaml" \
	--set 'versions={v1,v2}' \
	--set 'tasks={ready,http,assess}' \
	--set ready.url="http://$v2/healthz" \
	--set http.duration=5s --set http.qps=200 --set http.connections=4 \
	--set http.endpoints[0].version=v1 --set http.endpoints[0].url="http://$v1/" \
	--set http.endpoints[1].version=v2 --set http.endpoints[1].url="http://$v2/" \
	--set assess.slos[0].metric=http/latency-p95 --set assess.slos[0].upper=15 \
	--set assess.slos[1].metric=http/error-rate --set assess.slos[1].upper=0.01 \
	--set 'assess.rewards.min={http/latency-mean,http/error-rate}' \
	--set assess.comparisons[0].metric=http/latency \
	--set assess.comparisons[1].metric=http/error-rate || status=$?
bin/kubectl-iter8 report -f "$out/experiment.yaml" -o html >"$out/report.html"
echo >&2
echo "==> spec: $out/experiment.yaml, result: $out/experiment.result.json" >&2
echo "==> HTML report (opens offline): $out/report.html" >&2
echo "==> try: bin/kubectl-iter8 report -f $out/experiment.yaml -o yaml" >&2
exit "$status"
