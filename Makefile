# Iter8's build, test and demo entry points. `make test` is what CI runs.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
# The release version is the chart's appVersion, so that the binaries, the
# image tag the chart pulls and the krew manifest agree.
APP_VERSION := $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' charts/iter8/Chart.yaml)
VERSION ?= v$(APP_VERSION)
GIT_COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -s -w -X github.com/iter8-tools/iter8/pkg/action.version=$(VERSION) -X github.com/iter8-tools/iter8/pkg/action.gitCommit=$(GIT_COMMIT)
# How much CI fuzzes the spec decoder: a count, not a duration, because a
# duration races Go 1.26's fuzz coordinator at its deadline (go.dev/issue/75804)
# and fails with "context deadline exceeded" on a busy machine.
FUZZTIME ?= 50000x
# plotly.js for the HTML report, from npm at build time (not committed),
# embedded gzip-compressed.
PLOTLY_VERSION := 4.1.2
PLOTLY := pkg/report/assets/plotly.min.js.gz

.PHONY: all build test test-deps testbed lint unit sim fuzz demo bench bench-grpc bench-cluster bench-abn bench-startup bench-size clean plotly dist image charts proto

all: build

## plotly: embed plotly.js in the HTML report (without it, histograms are tables)
plotly: $(PLOTLY)
$(PLOTLY):
	bash scripts/fetch-plotly.sh $(PLOTLY_VERSION) $@

## build: the two plugin binaries into bin/
build: $(PLOTLY)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/kubectl-iter8 ./cmd/kubectl-iter8
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/helm-iter8 ./cmd/helm-iter8

## lint: go vet (of both modules: the product and the A/B/n SDK in abn/) and gofmt
lint:
	$(GO) vet ./...
	cd abn && $(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## test-deps: what the tests need beyond Go (Chromium and Prometheus, from Debian's packages)
test-deps:
	bash scripts/install-test-deps.sh

## testbed: build the test bed's kube-apiserver, etcd and helm once, into a cache outside the clone
testbed:
	bash scripts/testbed.sh >/dev/null

## unit: every package's tests, with the race detector (test packages that need
## Kubernetes start their own API server from the test bed). -timeout: Go's
## default of 10 minutes a package is close to what test/release takes under
## -race on 2 cores (7-9 minutes).
unit: $(PLOTLY) test-deps testbed
	KUBEBUILDER_ASSETS="$$(bash scripts/testbed.sh)" ITER8_REQUIRE_BROWSER=1 ITER8_REQUIRE_PROMETHEUS=1 ITER8_REQUIRE_REDIS=1 $(GO) test -race -count=1 -timeout 30m ./...
	cd abn && $(GO) test -race -count=1 ./...

## sim: the statistics' acceptance simulations at full size (2000 A/A runs per
## condition, power, tails, peeking over 10 and 100 loops, P(best)
## calibration, bandits over identical and different versions), without
## -race and verbose, so that every figure is printed with its repetitions
## and standard error. GOGC=400: the simulations churn
## large HDR arrays over a small heap, and collect four times faster so.
sim:
	GOGC=400 $(GO) test -count=1 -v -timeout 20m -run 'Acceptance' ./pkg/stats/ ./pkg/bandit/

## fuzz: a short, bounded fuzz run of the spec decoder
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$(FUZZTIME) ./pkg/experiment/

## test: everything CI checks
test: lint unit sim fuzz

## demo: a local experiment against two versions of a sample app on 127.0.0.1,
## run with the kubectl-iter8 that build makes
demo: build
	GO=$(GO) bash scripts/demo.sh

## bench: the http load generator's benchmarks (installs wrk from Debian's packages)
bench:
	bash scripts/bench/run.sh

## bench-startup: `kubectl iter8 version` against `kubectl version --client`
## (time) and `helm version` (peak RSS), side by side, 20 runs each
bench-startup: build testbed
	bash scripts/bench/startup.sh

## bench-size: the stripped binary's size (at most 75 MB) and a table of its
## size by module
bench-size: $(PLOTLY)
	$(GO) build -o $(BIN)/binsize ./scripts/bench/binsize
	$(BIN)/binsize

## bench-grpc: the grpc task against the ghz CLI
bench-grpc:
	bash scripts/bench/grpc/run.sh

## bench-abn: the A/B/n service: Lookup throughput and latency over loopback gRPC
## (and over HTTP and the Lookups stream from a client that never waits in the
## kernel),
## WriteMetric through the SDK on bbolt and Redis, heap from 10^4 to 10^6 users
bench-abn: test-deps
	$(GO) run ./scripts/bench/abn

## bench-cluster: helm install to a readable result, minus the load (median of 5)
bench-cluster: testbed
	bash scripts/bench/cluster.sh

## dist: release archives of kubectl-iter8 and of the helm plugin (linux, darwin: amd64,
## arm64; windows: amd64) into dist/ with dist/sha256sums.txt, and kubectl's sha256 into
## krew/iter8.yaml; the version is the chart's appVersion. SIGN_KEYRING=FILE SIGN_KEY=NAME
## sign the helm plugin's archives (.prov files, which Helm 4 checks)
dist: $(PLOTLY)
	GO=$(GO) $(GO) run ./scripts/dist -commit '$(GIT_COMMIT)' $(if $(SIGN_KEY)$(SIGN_KEYRING),-sign-keyring '$(SIGN_KEYRING)' -sign-key '$(SIGN_KEY)') archives

## image: the OCI image of kubectl-iter8 (linux/amd64, linux/arm64), without Docker, as an
## OCI image layout in dist/image named ghcr.io/iter8-tools/iter8:<the chart's appVersion>
image: $(PLOTLY)
	GO=$(GO) $(GO) run ./scripts/dist -commit '$(GIT_COMMIT)' image

## charts: package charts/iter8, charts/release and charts/abn into dist/charts; with
## REGISTRY=oci://HOST/PATH also push them there, as helm push does (logins from
## helm registry login; PLAIN_HTTP=1 for a registry without TLS)
charts:
	$(GO) run ./scripts/dist $(if $(REGISTRY),-push '$(REGISTRY)') $(if $(filter 1 true yes,$(PLAIN_HTTP)),-plain-http) charts

## proto: regenerate the A/B/n API's Go code (abn/grpc) from abn/grpc/abn.proto
## (installs protoc from Debian's packages and builds the Go plugins at pinned versions)
proto:
	bash scripts/proto.sh

clean:
	rm -rf $(BIN) demo-out $(PLOTLY)
