#!/usr/bin/env bash
# Benchmark (d) of the grpc task: throughput at full speed against the ghz CLI
# on the same greeter server, at the same concurrency and connections, in
# interleaved rounds; and the task's memory for a small and a large load.
#
# Contenders, each sending load for $DURATION per round unless said:
#   ours            the grpc task (its own load generator over grpc-go) in the
#                   driver
#   ghz             the ghz CLI v0.120.0 built standalone (`go install`), with
#                   the grpc-go its own go.mod selects
#   ghz-samegrpc    the same CLI built against this module's go.mod, so with
#                   the grpc-go (and protobuf) that the task uses: ghz vs
#                   ghz-samegrpc is the effect of grpc-go's version alone
#   ours-templated, ghz-samegrpc-templated
#                   both with a template action in the metadata, so that
#                   ghz builds and runs templates for every call in both (its
#                   CLI always builds one, the task only when data or
#                   metadata use them), and both counted ($TEMPLATED_TOTAL
#                   calls): the task's load generator against ghz's with the
#                   same grpc-go and the same work per call. (In a timed load
#                   the CLI reserves 64 MB of call details up front, which
#                   makes its garbage collector run far less often; the task
#                   keeps no details, only histograms.)
# The greeter (test/greeter/cmd/greeter) serves on CPU $SERVER_CPU and every
# load generator runs as its own process on CPU $LOAD_CPU. The ghz binary is
# cached by version under $BENCH_CACHE, as its first build downloads and
# compiles its old dependency graph (about 2 minutes); later runs take about
# a minute and a half on 2 CPUs. BENCH_OUT=FILE keeps the raw JSON lines.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$ROOT"

GO=${GO:-go}
GHZ_VERSION=${GHZ_VERSION:-v0.120.0}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-2s}
CONCURRENCY=${CONCURRENCY:-50}
CONNECTIONS=${CONNECTIONS:-1}
TEMPLATED_TOTAL=${TEMPLATED_TOTAL:-12000}
MEM_SMALL=${MEM_SMALL:-20000}   # calls of the small memory run
MEM_LARGE=${MEM_LARGE:-100000}  # calls of the large memory run
ADDR_WAIT=${ADDR_WAIT:-10}      # seconds to wait for the greeter's address
BENCH_CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iter8/bench}

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/iter8-grpc-bench.XXXXXX")
server_pid=
cleanup() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS
results=$work/results.jsonl
: >"$results"

command -v taskset >/dev/null 2>&1 || die "taskset (util-linux) is needed to pin processes to CPUs"
taskset -c "$SERVER_CPU" true 2>/dev/null && taskset -c "$LOAD_CPU" true 2>/dev/null ||
	die "cannot pin to CPUs $SERVER_CPU and $LOAD_CPU; set SERVER_CPU and LOAD_CPU to two allowed CPUs"

# --- tools -----------------------------------------------------------------
log "building the greeter and the benchmark driver"
"$GO" build -o "$work/greeter" ./test/greeter/cmd/greeter
"$GO" build -o "$work/driver" ./scripts/bench/grpc
proto=$ROOT/test/greeter/greeter.proto

ghz_cached=$BENCH_CACHE/ghz-$GHZ_VERSION-$("$GO" env GOVERSION)/ghz
if [ ! -x "$ghz_cached" ]; then
	log "installing ghz $GHZ_VERSION into a temporary GOBIN (cached in $(dirname "$ghz_cached"))"
	mkdir -p "$work/gobin" "$(dirname "$ghz_cached")"
	# Outside this module, so that ghz's own go.mod decides its versions.
	(cd "$work" && GOBIN="$work/gobin" GOFLAGS=-buildvcs=false "$GO" install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION")
	mv "$work/gobin/ghz" "$ghz_cached"
fi
cp "$ghz_cached" "$work/ghz"

log "building ghz $GHZ_VERSION against this module's go.mod"
mkdir -p "$work/mod"
cp go.mod go.sum "$work/mod/"
# A copy of go.mod and go.sum, so that nothing here changes. The module no
# longer needs ghz: add it to the copy at $GHZ_VERSION, keeping this module's
# grpc-go and protobuf.
"$GO" get -modfile="$work/mod/go.mod" "github.com/bojand/ghz@$GHZ_VERSION" google.golang.org/grpc@"$("$GO" list -m -f '{{.Version}}' google.golang.org/grpc)" \
	google.golang.org/protobuf@"$("$GO" list -m -f '{{.Version}}' google.golang.org/protobuf)"
"$GO" build -modfile="$work/mod/go.mod" -mod=mod -o "$work/ghz-samegrpc" github.com/bojand/ghz/cmd/ghz

# --- the greeter -------------------------------------------------------------
taskset -c "$SERVER_CPU" "$work/greeter" --listen 127.0.0.1:0 --addr-file "$work/greeter.addr" 2>"$work/greeter.log" &
server_pid=$!
deadline=$((SECONDS + ADDR_WAIT))
until [ -s "$work/greeter.addr" ]; do
	kill -0 "$server_pid" 2>/dev/null || { cat "$work/greeter.log" >&2; die "the greeter exited before listening"; }
	[ "$SECONDS" -lt "$deadline" ] || die "the greeter wrote no address within ${ADDR_WAIT}s"
	sleep 0.05
done
addr=$(cat "$work/greeter.addr")
case $addr in
127.0.0.1:*) ;;
*) die "the greeter listens on $addr, not 127.0.0.1" ;;
esac
log "greeter on $addr (CPU $SERVER_CPU)"

load=(taskset -c "$LOAD_CPU" "$work/driver")
templated='{"x-worker":"{{.WorkerID}}"}'
common=(--host "$addr" --proto "$proto" --concurrency "$CONCURRENCY" --connections "$CONNECTIONS")
contender() {
	local tool=$1 round=$2
	case $tool in
	ours) "${load[@]}" ours "${common[@]}" --duration "$DURATION" --run "$round" ;;
	ours-templated) "${load[@]}" ours --tool "$tool" --metadata "$templated" "${common[@]}" --total "$TEMPLATED_TOTAL" --run "$round" ;;
	ghz | ghz-samegrpc) "${load[@]}" ghz --bin "$work/$tool" --tool "$tool" "${common[@]}" --duration "$DURATION" --run "$round" ;;
	ghz-samegrpc-templated) "${load[@]}" ghz --bin "$work/ghz-samegrpc" --tool "$tool" --metadata "$templated" \
		"${common[@]}" --total "$TEMPLATED_TOTAL" --run "$round" ;;
	esac
}

# --- throughput --------------------------------------------------------------
# An unrecorded run so that the first measured one meets a warm server.
"${load[@]}" ours "${common[@]}" --duration 1s >/dev/null
tools=(ours ghz ghz-samegrpc ours-templated ghz-samegrpc-templated)
log "throughput: $ROUNDS rounds of ${tools[*]}; $DURATION each at concurrency $CONCURRENCY over $CONNECTIONS connection(s)"
for round in $(seq "$ROUNDS"); do
	# Rotate the order, so that no contender always follows the same one.
	for i in "${!tools[@]}"; do
		contender "${tools[$(((i + round - 1) % ${#tools[@]}))]}" "$round" >>"$results"
	done
done

# --- memory ------------------------------------------------------------------
log "memory: the task at $MEM_SMALL and $MEM_LARGE calls"
for n in "$MEM_SMALL" "$MEM_LARGE"; do
	"${load[@]}" ours --bench memory --tool "ours-$n" "${common[@]}" --total "$n" >>"$results"
done

kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=
printf 'bench: done in %ds (load average %s)\n' "$((SECONDS - started))" "$(cut -d' ' -f1-3 /proc/loadavg)" >&2
if [ -n "${BENCH_OUT:-}" ]; then
	cp "$results" "$BENCH_OUT"
fi
"$work/driver" report "$results"
