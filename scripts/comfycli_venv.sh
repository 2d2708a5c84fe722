#!/usr/bin/env bash
# Idempotent: a small virtualenv of its own that holds the Comfy Registry's command-line tool,
# comfy-cli (PyPI comfy-cli), for the packaging tests (tests/test_packaging.py): they build the
# archive the registry would receive with `comfy node pack` and run `comfy node validate`.
# It is separate from the suite's venv (comfy-cli's dependencies never touch ComfyUI's) and
# lives under out/ (gitignored), so the pack's file list never sees it.
#   usage: scripts/comfycli_venv.sh [PYTHON]     (default: .venv/bin/python's interpreter)
# Progress goes to stderr; the last line on stdout is the comfy executable.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
PIN="comfy-cli==1.23.0"
VENV="${COMFYCLI_VENV:-$here/out/comfycli-venv}"
STAMP="$VENV/.teacache-comfycli-v1"
log() { printf '[comfycli-venv] %s\n' "$*" >&2; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PIN" ] && [ -x "$VENV/bin/comfy" ]; then
  echo "$VENV/bin/comfy"
  exit 0
fi
# one installer at a time (the suite may run under two ComfyUI versions at once)
mkdir -p "$(dirname "$VENV")"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$VENV.lock"
  flock 9
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PIN" ] && [ -x "$VENV/bin/comfy" ]; then
    echo "$VENV/bin/comfy"
    exit 0
  fi
fi
start=$(date +%s)
PY="${1:-}"
if [ -z "$PY" ]; then
  if [ -x "$here/.venv/bin/python" ]; then PY="$here/.venv/bin/python"; else PY="$(command -v python3)"; fi
fi
interp="$("$PY" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$interp" -m venv "$VENV"
fi
log "installing $PIN"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "$PIN" \
  2> >(grep -v 'is ignored: it is neither' >&2) >&2
"$VENV/bin/python" -c 'import comfy_cli.command.custom_nodes.command' >&2
printf '%s' "$PIN" > "$STAMP"
log "ready in $(( $(date +%s) - start )) s: $VENV/bin/comfy"
echo "$VENV/bin/comfy"
