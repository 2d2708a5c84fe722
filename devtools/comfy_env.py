"""Bring a real ComfyUI into the test process (CPU) and load this pack the way ComfyUI does.

ComfyUI comes from COMFYUI_PATH, else from .comfyui/ (made by scripts/bootstrap.sh).
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]   # the repository (the pack) root
PACK_NAME = "comfyui_teacache"


def comfyui_path() -> Path:
    p = Path(os.environ.get("COMFYUI_PATH") or ROOT / ".comfyui").resolve()
    if not (p / "comfy" / "model_management.py").exists():
        raise RuntimeError(f"No ComfyUI at {p}: run scripts/bootstrap.sh or set COMFYUI_PATH")
    return p


def setup_comfy():
    """Import ComfyUI in CPU mode (idempotent)."""
    p = str(comfyui_path())
    if p not in sys.path:
        sys.path.insert(0, p)
    from comfy.cli_args import args
    args.cpu = True
    import comfy.model_management  # noqa: F401  (after args.cpu)
    return p


def load_pack():
    """Import the repository root as a package, as ComfyUI's custom node loader does."""
    setup_comfy()
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    spec = importlib.util.spec_from_file_location(
        PACK_NAME, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = mod
    spec.loader.exec_module(mod)
    return mod
