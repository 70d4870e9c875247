#!/usr/bin/env bash
# Builds the test servers and tools the integration tests drive for real into the repository's gitignored tool
# cache, pinned by version in the path:
#   .cache/tools/grpcurl-<version>/bin/grpcurl                   generic gRPC client (Go's strict descriptor parser)
#   .cache/tools/minio-<version>/bin/minio                       S3 server for storage/s3
#   .cache/tools/versitygw-<version>/bin/versitygw               S3 gateway for storage/s3 (conditions checked on Complete, as AWS)
#   .cache/tools/fake-gcs-server-<version>/bin/fake-gcs-server   GCS emulator for storage/gcs
# (Azurite, the Azure Blob emulator, is an npm devDependency.)
# Idempotent: a tool whose binary is there is skipped. Needs Go (go install from the Go module proxy; Go's module and
# build caches stay at their defaults outside the repository, so a rebuild after a fresh clone is quick).
# Cold builds on 2 cores: grpcurl ~2 min, MinIO ~6.5 min, fake-gcs-server ~6 min, versitygw ~2 min; with warm Go
# caches, seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# MinIO publishes no tagged Go module versions; the proxy serves pseudo-versions, so the pin is one.
TOOLS=(
  "grpcurl v1.9.4 github.com/fullstorydev/grpcurl/cmd/grpcurl"
  "minio v0.0.0-20260212201848-7aac2a2c5b7c github.com/minio/minio"
  "versitygw v1.8.0 github.com/versity/versitygw/cmd/versitygw"
  "fake-gcs-server v1.56.1 github.com/fsouza/fake-gcs-server"
)

find_go() {
  command -v go >/dev/null 2>&1 && return 0
  for candidate in /usr/local/go/bin/go /usr/lib/go/bin/go; do
    if [ -x "$candidate" ]; then PATH="$(dirname "$candidate"):$PATH"; return 0; fi
  done
  echo "" >&2
  echo "############################################################################" >&2
  echo "install-test-tools: ERROR: 'go' is not installed (or not on PATH)." >&2
  echo "The test servers (MinIO, fake-gcs-server) and grpcurl are built from their Go" >&2
  echo "modules; install Go (https://go.dev/dl or the distribution's golang package) and rerun" >&2
  echo "  bash scripts/install-test-tools.sh" >&2
  echo "############################################################################" >&2
  exit 1
}

for tool in "${TOOLS[@]}"; do
  read -r name version module <<<"$tool"
  dir=".cache/tools/${name}-${version}"
  bin="${dir}/bin/${name}"
  [ -x "$bin" ] && continue
  find_go
  echo "install-test-tools: building ${name} ${version} into ${bin} ($(go version))"
  start=$(date +%s)
  tmp="${dir}/bin.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # Build into a temporary folder and move into place, so an interrupted build never leaves a half-written binary
  # that a later run would take as installed.
  GOBIN="$(pwd)/${tmp}" go install "${module}@${version}"
  mkdir -p "${dir}/bin"
  mv -f "${tmp}/${name}" "$bin"
  rm -rf "$tmp"
  echo "install-test-tools: ${name} ${version} built in $(( $(date +%s) - start ))s"
done
