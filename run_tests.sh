#!/usr/bin/env bash
# Runs the test suite on a real ComfyUI (CPU). Sets itself up on first use (idempotent):
# a virtualenv in .venv and ComfyUI 0.3.75 in .comfyui, unless COMFYUI_PATH names another
# ComfyUI checkout. Arguments go to pytest (e.g. ./run_tests.sh -k wan -x, or
# ./run_tests.sh tests/test_wan.py); with none it runs everything under tests/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PY="$(bash scripts/bootstrap.sh | tail -n 1)"
exec "$PY" -m pytest -q "$@"
