#!/usr/bin/env bash
# Regenerates abn/grpc's Go code from abn/grpc/abn.proto. protoc and the
# well-known types' .proto files come from Debian's packages; the Go
# plugins are built at pinned versions into a cache outside the clone. The
# generated code is committed: builds and tests never need protoc.
set -euo pipefail
cd "$(dirname "$0")/.."
PROTOC_GEN_GO=v1.36.11
PROTOC_GEN_GO_GRPC=v1.6.2
if ! command -v protoc >/dev/null || [ ! -f /usr/include/google/protobuf/empty.proto ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "proto: need root to install protobuf-compiler and libprotobuf-dev with apt-get" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends protobuf-compiler libprotobuf-dev >/dev/null
fi
bin="${XDG_CACHE_HOME:-$HOME/.cache}/iter8/protoc-gen-go-$PROTOC_GEN_GO-grpc-$PROTOC_GEN_GO_GRPC"
if [ ! -x "$bin/protoc-gen-go-grpc" ]; then
	GOBIN="$bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO"
	GOBIN="$bin" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC"
fi
PATH="$bin:$PATH" protoc -I. -I/usr/include \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative \
	abn/grpc/abn.proto
