#!/usr/bin/env bash
# Samples a small trained Wan-architecture model through real ComfyUI with and without
# TeaCache and prints what changed (steps skipped, speed-up, PSNR). Sets itself up on first
# use (idempotent), like run_tests.sh. Extra arguments go to demo/demo.py (see --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PY="$(bash scripts/bootstrap.sh | tail -n 1)"
exec "$PY" demo/demo.py "$@"
