#!/usr/bin/env bash
# Benchmarks of the http task for the release notes (make bench):
#   (a) throughput at full speed: the http task, fortio's own runner without
#       our per-request hook, and wrk, in interleaved rounds;
#   (b) memory: live heap of the latency recorders at 10^5 and 10^7 values,
#       and peak RSS of a process sending 10^6 requests with the http task;
#   (c) accuracy of the reported percentiles against a sample app with
#       uniform latency, after measuring the loopback floor.
# All traffic stays on 127.0.0.1. The servers run on CPU 0 and every load
# generator runs as its own process on CPU 1. The throughput and RSS
# runs load scripts/bench/fastserver, a minimal HTTP/1.1 server, because
# the sample app's net/http server saturates its CPU first and would leave
# the generators idle (THROUGHPUT_SERVER=sampleapp measures that instead).
# scripts/bench/loadbench does the measuring; this script builds it, starts
# and stops the servers and prints the summary. Settings below can be
# overridden from the environment; BENCH_OUT=FILE keeps the raw JSON lines,
# and SECTIONS picks parts (e.g. SECTIONS=accuracy make bench).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

GO=${GO:-go}
SECTIONS=${SECTIONS:-throughput memory accuracy hook} # which parts to run
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
ROUNDS=${ROUNDS:-6}                   # interleaved rounds of ours, fortio, wrk
CONNS=${CONNS:-16}                    # connections for throughput and RSS
DURATION=${DURATION:-5}               # seconds per throughput run
THROUGHPUT_SERVER=${THROUGHPUT_SERVER:-fastserver} # or sampleapp
BODY_SIZE=${BODY_SIZE:-2}             # fastserver's response body in bytes (e.g. 16384)
RSS_REQUESTS=${RSS_REQUESTS:-1000000}
ACC_LATENCY=${ACC_LATENCY:-uniform:2ms-20ms}
ACC_SEED=${ACC_SEED:-$(($(od -An -N4 -tu4 /dev/urandom) + 1))} # fresh draws each run
ACC_CONNS=${ACC_CONNS:-16}
ACC_QPS=${ACC_QPS:-800}
ACC_REPS=${ACC_REPS:-3}
ACC_REQUESTS=${ACC_REQUESTS:-13000}   # per repetition
FLOOR_REQUESTS=${FLOOR_REQUESTS:-2000}
ACC_PIN=${ACC_PIN:-0}                 # 1: pin the accuracy servers and load like the others
ADDR_WAIT=${ADDR_WAIT:-10}            # seconds to wait for a server's address

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/iter8-bench.XXXXXX")
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS
results=$work/results.jsonl
: >"$results"

# --- tools -----------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
	log "installing wrk from Debian's packages"
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
command -v taskset >/dev/null 2>&1 || die "taskset (util-linux) is needed to pin processes to CPUs"
taskset -c "$SERVER_CPU" true 2>/dev/null && taskset -c "$LOAD_CPU" true 2>/dev/null ||
	die "cannot pin to CPUs $SERVER_CPU and $LOAD_CPU; set SERVER_CPU and LOAD_CPU to two allowed CPUs"

log "building the sample app, the fast server and the benchmark driver"
"$GO" build -o "$work/sampleapp" ./test/sampleapp/cmd/sampleapp
"$GO" build -o "$work/fastserver" ./scripts/bench/fastserver
"$GO" build -o "$work/loadbench" ./scripts/bench/loadbench
lb=$work/loadbench
load() { taskset -c "$LOAD_CPU" "$lb" "$@"; }

# env_record NAME VALUE adds a line about the machine to the results.
env_record() { printf '{"bench":"env","name":"%s","value":%s}\n' "$1" "$2" >>"$results"; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }

# server_pin is the command prefix that pins a server; empty runs it on any CPU.
server_pin=(taskset -c "$SERVER_CPU")

# start_server NAME PROGRAM ARGS... starts fastserver or sampleapp with
# server_pin and sets server_pid and server_addr once it has written its
# address.
start_server() {
	local name=$1 prog=$2
	shift 2
	local addr_file=$work/$name.addr
	"${server_pin[@]}" "$work/$prog" --listen 127.0.0.1:0 --addr-file "$addr_file" "$@" \
		2>"$work/$name.log" &
	server_pid=$!
	pids+=("$server_pid")
	local deadline=$((SECONDS + ADDR_WAIT))
	until [ -s "$addr_file" ]; do
		if ! kill -0 "$server_pid" 2>/dev/null; then
			cat "$work/$name.log" >&2
			die "the $name server exited before listening"
		fi
		[ "$SECONDS" -lt "$deadline" ] || die "the $name server wrote no address within ${ADDR_WAIT}s"
		sleep 0.05
	done
	server_addr=$(cat "$addr_file")
	case $server_addr in
	127.0.0.1:*) ;;
	*) die "the $name server listens on $server_addr, not 127.0.0.1" ;;
	esac
	log "$name server: $prog $* on $server_addr (${server_pin[*]:-not pinned})"
}

# stop_server PID NAME stops a server and sets served to the number of
# requests it answered. (Not in a subshell: wait needs this shell's child.)
stop_server() {
	local pid rest=()
	kill -TERM "$1"
	wait "$1" || die "the $2 server failed: $(cat "$work/$2.log")"
	for pid in "${pids[@]}"; do
		[ "$pid" = "$1" ] || rest+=("$pid")
	done
	pids=("${rest[@]}")
	served=$(sed -n 's/.*shut down after \([0-9]*\) requests.*/\1/p' "$work/$2.log")
}

# wants SECTION tells whether SECTIONS includes SECTION.
wants() { [[ " $SECTIONS " == *" $1 "* ]]; }

# start_fast_server starts the server of the throughput and RSS runs and sets
# fast_pid and fast_url.
start_fast_server() {
	case $THROUGHPUT_SERVER in
	fastserver) start_server fast fastserver --body-size "$BODY_SIZE" ;;
	sampleapp) start_server fast sampleapp --latency 0 ;;
	*) die "THROUGHPUT_SERVER=$THROUGHPUT_SERVER: want fastserver or sampleapp" ;;
	esac
	fast_pid=$server_pid
	fast_url=http://$server_addr/
	printf '{"bench":"env","name":"throughput-server","value":0,"info":{"server":"%s","bodySize":"%s"}}\n' \
		"$THROUGHPUT_SERVER" "$BODY_SIZE" >>"$results"
}

# (a) throughput: the three tools in interleaved rounds.
bench_throughput() {
	# A short unrecorded run so that the first measured run meets a warm server.
	load throughput --tool wrk --url "$fast_url" --connections "$CONNS" --duration 1s >/dev/null 2>"$work/warmup.log" ||
		die "the warm-up run failed: $(cat "$work/warmup.log")"
	log "(a) throughput: $ROUNDS rounds of ours, fortio, wrk; ${DURATION}s each at $CONNS connections"
	# Each run changes the machine a little for the next (caches, sockets,
	# frequency), and other work comes and goes. Six orders in which every
	# tool is first, second and third twice and follows each other tool
	# equally often (a Williams design) keep such effects out of the
	# comparison.
	local orders=("ours fortio wrk" "fortio wrk ours" "wrk ours fortio" "wrk fortio ours" "fortio ours wrk" "ours wrk fortio")
	local round tool
	for round in $(seq "$ROUNDS"); do
		for tool in ${orders[$(((round - 1) % ${#orders[@]}))]}; do
			load throughput --tool "$tool" --url "$fast_url" --connections "$CONNS" \
				--duration "${DURATION}s" --run "$round" --server-pid "$fast_pid" >>"$results"
		done
	done
}

# (b) memory: the recorders' live heap, then peak RSS of a long run.
bench_memory() {
	log "(b) memory: recorders at 10^5 and 10^7 values"
	load memory >>"$results"
	log "(b) peak RSS: $RSS_REQUESTS requests with the http task at full speed"
	load rss --url "$fast_url" --requests "$RSS_REQUESTS" --connections "$CONNS" >>"$results"
}

# (c) accuracy against a seeded sample app with uniform latency. Unpinned by
# default: the load is light, and on a shared machine a process free to move
# escapes a CPU that other work has taken, which a pinned one cannot (the
# sample app spin-waits the last millisecond of each latency, so its waits
# stretch when it must share its CPU).
bench_accuracy() {
	local pin_load=(taskset -c "$LOAD_CPU")
	if [ "$ACC_PIN" != 1 ]; then
		server_pin=()
		pin_load=()
	fi
	env_record accuracy-pinned "$([ "$ACC_PIN" = 1 ] && echo 1 || echo 0)"
	start_server floor sampleapp --latency 0
	local floor_pid=$server_pid floor_url=http://$server_addr/
	start_server uniform sampleapp --latency "$ACC_LATENCY" --seed "$ACC_SEED"
	local uniform_pid=$server_pid
	log "(c) accuracy: $ACC_REPS repetitions of $ACC_REQUESTS requests at qps $ACC_QPS, the floor around each"
	"${pin_load[@]}" "$lb" accuracy --floor-url "$floor_url" --url "http://$server_addr/" --latency "$ACC_LATENCY" \
		--seed "$ACC_SEED" --connections "$ACC_CONNS" --qps "$ACC_QPS" --reps "$ACC_REPS" \
		--requests "$ACC_REQUESTS" --floor-requests "$FLOOR_REQUESTS" >>"$results"
	stop_server "$uniform_pid" uniform
	printf '{"bench":"accuracy","name":"server-requests","value":%s}\n' "${served:-0}" >>"$results"
	stop_server "$floor_pid" floor
}

# The recording hook's own cost, from pkg/stats's benchmark.
bench_hook() {
	local out ns
	if ! out=$("$GO" test -run '^$' -bench '^BenchmarkRecorderRecord$' -benchtime 1s ./pkg/stats 2>&1); then
		log "BenchmarkRecorderRecord did not run (pkg/stats may be mid-edit); skipped"
		return
	fi
	ns=$(awk '$1 ~ /^BenchmarkRecorderRecord/ { for (i = 1; i < NF; i++) if ($(i + 1) == "ns/op") print $i }' <<<"$out")
	[ -z "$ns" ] || printf '{"bench":"hook","name":"BenchmarkRecorderRecord","value":%s,"unit":"ns/op"}\n' "$ns" >>"$results"
}

env_record loadavg-start "$(loadavg)"
if wants throughput || wants memory; then
	start_fast_server
	if wants throughput; then bench_throughput; fi
	if wants memory; then bench_memory; fi
	stop_server "$fast_pid" fast
fi
if wants accuracy; then bench_accuracy; fi
if wants hook; then bench_hook; fi
env_record loadavg-end "$(loadavg)"
env_record elapsed "$((SECONDS - started))"

if [ -n "${BENCH_OUT:-}" ]; then
	cp "$results" "$BENCH_OUT"
fi
"$lb" report "$results"
