#!/usr/bin/env bash
# Builds the generic gRPC client the end-to-end tests drive (grpcurl, which parses reflection descriptors with Go's
# strict parser) into the repository's gitignored tool cache, pinned by version in the path:
#   .cache/tools/grpcurl-<version>/bin/grpcurl
# Idempotent: does nothing when that binary is already there. Needs Go (go install from the Go module proxy; Go's
# module and build caches stay at their defaults outside the repository, so a rebuild after a fresh clone is quick).
# Cold build (empty Go module and build caches): about 2 minutes on 2 cores; with warm Go caches (e.g. a fresh
# clone on a machine that built it before): a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

GRPCURL_VERSION="v1.9.4"
dir=".cache/tools/grpcurl-${GRPCURL_VERSION}"
bin="${dir}/bin/grpcurl"

if [ -x "$bin" ]; then
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  for candidate in /usr/local/go/bin/go /usr/lib/go/bin/go; do
    if [ -x "$candidate" ]; then PATH="$(dirname "$candidate"):$PATH"; break; fi
  done
fi
if ! command -v go >/dev/null 2>&1; then
  echo "" >&2
  echo "############################################################################" >&2
  echo "install-test-tools: ERROR: 'go' is not installed (or not on PATH)." >&2
  echo "grpcurl ${GRPCURL_VERSION} is built from its Go module for the e2e tests;" >&2
  echo "install Go (https://go.dev/dl or the distribution's golang package) and rerun" >&2
  echo "  bash scripts/install-test-tools.sh" >&2
  echo "############################################################################" >&2
  exit 1
fi

echo "install-test-tools: building grpcurl ${GRPCURL_VERSION} into ${bin} ($(go version))"
start=$(date +%s)
tmp="${dir}/bin.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
# Build into a temporary folder and move into place, so an interrupted build never leaves a half-written binary
# that a later run would take as installed.
GOBIN="$(pwd)/${tmp}" go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@${GRPCURL_VERSION}"
mkdir -p "${dir}/bin"
mv -f "${tmp}/grpcurl" "$bin"
echo "install-test-tools: grpcurl ${GRPCURL_VERSION} built in $(( $(date +%s) - start ))s"
