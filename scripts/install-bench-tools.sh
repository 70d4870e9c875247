#!/usr/bin/env bash
# Builds the tools `npm run bench` drives into the repository's gitignored tool cache, pinned by version in the path
# (the layout of scripts/install-test-tools.sh):
#   .cache/tools/ghz-<version>/bin/ghz   gRPC load generator (Go): the API figures need a client that can saturate
#                                        the server, which one written in Node could not on 2 cores
# Idempotent: a tool whose binary is there is skipped. Needs Go (go install from the Go module proxy; ~30 s cold on
# 2 cores). Never run by the test command.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=(
  "ghz v0.120.0 github.com/bojand/ghz/cmd/ghz"
)

. scripts/go-tools.sh
install_go_tools install-bench-tools "${TOOLS[@]}"
