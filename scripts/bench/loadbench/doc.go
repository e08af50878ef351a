// Command loadbench measures the http task for the release notes: its
// throughput against fortio's own runner and wrk, the memory its latency
// histograms take, and the accuracy of the percentiles it reports.
//
// scripts/bench/run.sh (make bench) starts the loopback servers, pins the
// processes to CPUs and calls the subcommands below; each one appends its
// measurements to stdout as JSON lines, and report turns those lines into
// the summary table. Progress and details go to stderr.
//
//	loadbench throughput --tool ours|fortio|wrk --url URL [--connections 16] [--duration 5s]
//	                     [--run N] [--server-pid PID]
//	loadbench memory [--recorders 16]
//	loadbench rss --url URL [--requests 1000000] [--connections 16]
//	loadbench accuracy --floor-url URL --url URL --latency uniform:2ms-20ms --seed N
//	                   [--connections 16] [--qps 800] [--reps 3] [--requests 13000] [--floor-requests 2000]
//	loadbench report [FILE]
//
// Every URL must be on a loopback address.
package main
