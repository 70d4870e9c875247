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

find_go() {
  command -v go >/dev/null 2>&1 && return 0
  for candidate in /usr/local/go/bin/go /usr/lib/go/bin/go; do
    if [ -x "$candidate" ]; then PATH="$(dirname "$candidate"):$PATH"; return 0; fi
  done
  echo "install-bench-tools: ERROR: 'go' is not installed (or not on PATH); install Go and rerun" >&2
  exit 1
}

for tool in "${TOOLS[@]}"; do
  read -r name version module <<<"$tool"
  dir=".cache/tools/${name}-${version}"
  bin="${dir}/bin/${name}"
  [ -x "$bin" ] && continue
  find_go
  echo "install-bench-tools: building ${name} ${version} into ${bin} ($(go version))"
  start=$(date +%s)
  tmp="${dir}/bin.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # Into a temporary folder first: an interrupted build never leaves a half-written binary taken as installed.
  GOBIN="$(pwd)/${tmp}" go install "${module}@${version}"
  mkdir -p "${dir}/bin"
  mv -f "${tmp}/${name}" "$bin"
  rm -rf "$tmp"
  echo "install-bench-tools: ${name} ${version} built in $(( $(date +%s) - start ))s"
done
