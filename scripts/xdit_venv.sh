#!/usr/bin/env bash
# Idempotent: a small virtualenv for the sequence-parallel tests that holds xDiT (PyPI xfuser)
# and whatever of its dependencies the base venv lacks, layered over a base venv (the one that
# runs the suite: ComfyUI, torch). The base venv is never changed: the overlay's site-packages
# come first, the base's site-packages are reached through a .pth file, and pip is held to the
# base's installed versions by a constraints file, so nothing the base has is replaced.
#   usage: scripts/xdit_venv.sh [BASE_PYTHON]     (default: .venv/bin/python)
# Progress goes to stderr; the last line on stdout is the overlay's python.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
BASE="${1:-$here/.venv/bin/python}"
XFUSER_PIN="xfuser==0.7.0"
base_prefix="$("$BASE" -c 'import sys; print(sys.prefix)')"
VENV="$here/.venv-xdit-$(printf '%s' "$base_prefix" | cksum | cut -d' ' -f1)"
STAMP="$VENV/.teacache-xdit-v1"
log() { printf '[xdit-venv] %s\n' "$*" >&2; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$base_prefix $XFUSER_PIN" ]; then
  echo "$VENV/bin/python"
  exit 0
fi
start=$(date +%s)
interp="$("$BASE" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $(basename "$VENV") over $base_prefix"
  "$interp" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
site="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
"$BASE" -c 'import sysconfig; p = sysconfig.get_paths(); print(p["purelib"]); print(p["platlib"])' \
  | sort -u > "$site/_teacache_base_venv.pth"
# hold every package the base has at its version (editable and direct-URL lines left out)
"$BASE" -m pip freeze --disable-pip-version-check 2>/dev/null | grep -E '^[A-Za-z0-9_.-]+==' \
  > "$VENV/base-constraints.txt" || true
log "installing $XFUSER_PIN (dependencies the base lacks only)"
"$VPY" -m pip install -q --disable-pip-version-check -c "$VENV/base-constraints.txt" "$XFUSER_PIN" \
  2> >(grep -v 'is ignored: it is neither' >&2)
"$VPY" -c 'import xfuser.core.distributed as d; d.get_sequence_parallel_world_size' >&2
printf '%s' "$base_prefix $XFUSER_PIN" > "$STAMP"
log "ready in $(( $(date +%s) - start )) s: $VPY"
echo "$VPY"
