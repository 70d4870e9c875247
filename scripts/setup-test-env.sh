#!/usr/bin/env bash
# Everything the test suite drives for real, installed when missing (each step is idempotent and returns at once
# when its part is there): system tools (apt, needs root or sudo), the pinned test servers built with Go into
# .cache/tools/, and the QEMU guest kernel for the xfs/lvm quota tests in .cache/guest-kernel/.
# `npm test` runs it first (pretest), so the README's `npm ci && npm test` sets up a fresh machine; WSD_SKIP_SETUP=1
# skips it (a developer re-running tests offline).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${WSD_SKIP_SETUP:-}" = "1" ] && exit 0
bash .ci/install-system-deps
bash scripts/install-test-tools.sh
bash scripts/prepare-guest-kernel.sh
