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


def bench_session(prefix: str, threads: int | None = 1, level: int = 40) -> Path:
    """Set a benchmark process up to sample on the CPU: the root logger at `level` (40: ERROR),
    `threads` torch threads (None or 0: torch's default), no progress bars, and ComfyUI's user
    directory in a new temporary folder named `prefix`..., removed when the process exits (the
    calibrations and profile stores a run writes land there, never in a real user directory).
    Call after load_pack()."""
    import atexit
    import logging
    import shutil
    import tempfile
    import comfy.utils
    import folder_paths
    import torch
    logging.getLogger().setLevel(level)
    if threads:
        torch.set_num_threads(threads)
    comfy.utils.PROGRESS_BAR_ENABLED = False
    user = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, user, True)
    folder_paths.set_user_directory(user)
    return Path(user)
