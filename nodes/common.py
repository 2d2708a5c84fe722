"""What the nodes share: where the pack keeps user data inside ComfyUI, the category and
names shown in the page, and the schema options that only newer ComfyUI versions have."""
from __future__ import annotations

import dataclasses
import functools
import inspect
from pathlib import Path

# Shown in the node search and the Add Node menu. Another pack (welltop-cn/ComfyUI-TeaCache)
# shows a node "TeaCache" in a category "TeaCache": ours say what they are (TeaCache for
# ComfyUI's native diffusion transformers) and live under sampling/caching, next to where a
# user looks for speed-ups. The node ids (TeaCacheApply, ...) never change.
CATEGORY = "sampling/caching/TeaCache (native DiT)"
SUFFIX = " (native DiT)"
SEARCH_ALIASES = ["teacache", "tea cache", "cache", "caching", "speed up", "speedup", "faster",
                  "skip steps", "step skipping", "accelerate", "timestep embedding aware cache"]


def calibration_folder() -> Path:
    """<ComfyUI user directory>/teacache/calibrations (JSON files only)."""
    import folder_paths
    return Path(folder_paths.get_user_directory()) / "teacache" / "calibrations"


def profile_folder() -> Path:
    """<ComfyUI user directory>/teacache: target_speedup's profile store (profiles.json)."""
    import folder_paths
    return Path(folder_paths.get_user_directory()) / "teacache"


@functools.lru_cache(maxsize=None)
def _schema_fields() -> frozenset:
    from comfy_api.latest import io
    try:
        return frozenset(f.name for f in dataclasses.fields(io.Schema))
    except TypeError:
        return frozenset(inspect.signature(io.Schema).parameters)


def schema(**kwargs):
    """io.Schema(**kwargs) without the fields this ComfyUI's Schema does not have (0.3.75
    lacks search_aliases, for one): they are left out, everything else is the same."""
    from comfy_api.latest import io
    fields = _schema_fields()
    return io.Schema(**{k: v for k, v in kwargs.items() if k in fields})


@functools.lru_cache(maxsize=None)
def _takes(input_cls, name: str) -> bool:
    try:
        return name in inspect.signature(input_cls.__init__).parameters
    except (TypeError, ValueError):
        return False


def advanced(input_cls) -> dict:
    """{'advanced': True} where this ComfyUI's input class knows advanced inputs (the page then
    folds them away behind "show advanced"); {} on versions without (0.3.75)."""
    return {"advanced": True} if _takes(input_cls, "advanced") else {}
