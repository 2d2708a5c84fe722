#!/usr/bin/env bash
# Runs example_workflows/wan2.1_t2v_1.3B_teacache.json through a real ComfyUI server (CPU,
# 127.0.0.1, a free port, a temporary folder) on a small trained Wan model, with TeaCache
# bypassed and at a few thresholds, and prints what changed (steps skipped, speed-up, PSNR);
# writes previews, TeaCache Report images and the numbers into out/. Sets itself up on first
# use (idempotent), like run_tests.sh. Extra arguments go to demo/demo.py (see --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PY="$(bash scripts/bootstrap.sh | tail -n 1)"
exec "$PY" demo/demo.py "$@"
