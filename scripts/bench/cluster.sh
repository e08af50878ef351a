#!/usr/bin/env bash
# What a cluster experiment adds to its load (make bench-cluster): `helm
# install` of charts/iter8 with an http task against a sample app on
# 127.0.0.1, to a readable completed result, minus the task's own duration
# and minus the node harness's measured latency; the median of RUNS installs
# (default 5). Runs on the test bed's API server (scripts/testbed.sh) as root,
# like the tests. Prints go test's benchmark line: s-overhead is the figure,
# s-total, s-load, s-harness and s-run (the run's process without its load)
# its parts.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
RUNS=${RUNS:-5}
KUBEBUILDER_ASSETS=$(bash scripts/testbed.sh)
export KUBEBUILDER_ASSETS
${GO:-go} test -count=1 -run '^$' -bench 'InstallToResult|LaunchToResult|AssertAnswer|WorkerPods' -benchtime "${RUNS}x" ./test/cluster
