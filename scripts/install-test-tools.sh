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

. scripts/go-tools.sh
install_go_tools install-test-tools "${TOOLS[@]}"
