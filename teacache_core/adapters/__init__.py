"""Per-family knowledge: how to recognise a model, where its blocks are, how to read the indicator.

One file per family. Adapters recognise models by duck typing (class names in the MRO and
attributes) so that they import nothing from ComfyUI.
"""
from __future__ import annotations

import importlib
import importlib.util

from .base import FamilyAdapter, ModelInfo, UnsupportedModelError

# One module per family, each exposing ADAPTER (or ADAPTERS when one file serves close
# relatives, e.g. Flux and Chroma); listed in the order they are tried.
_FAMILY_MODULES = ("wan", "hunyuan_video", "ltxv", "mochi", "cosmos", "flux", "lumina2",
                   "hidream", "qwen_image", "kandinsky5", "minimax", "cogvideo", "pixart",
                   "omnigen2", "krea2", "ernie", "ideogram4", "pixeldit", "seedvr",
                   "refused",
                   # last: claims any diffusion transformer with patches_replace hooks that no
                   # adapter above claimed
                   "generic")


def _load_adapters() -> list:
    out = []
    for name in _FAMILY_MODULES:
        if importlib.util.find_spec(f"{__name__}.{name}") is not None:
            mod = importlib.import_module(f"{__name__}.{name}")
            out.extend(mod.ADAPTERS if hasattr(mod, "ADAPTERS") else (mod.ADAPTER,))
    return out


ADAPTERS: list[FamilyAdapter] = _load_adapters()


def supported_families() -> list[str]:
    return [a.display for a in ADAPTERS if not getattr(a, "refuses", False)]


def find_adapter(diffusion_model) -> FamilyAdapter:
    for a in ADAPTERS:
        if a.matches(diffusion_model):
            reason = a.unsupported_reason(diffusion_model)
            if reason:
                raise UnsupportedModelError(
                    f"TeaCache cannot cache {type(diffusion_model).__name__}: {reason}")
            return a
    raise UnsupportedModelError(
        f"TeaCache does not support this model: its diffusion model is "
        f"{type(diffusion_model).__module__}.{type(diffusion_model).__name__}. Supported "
        f"families: {', '.join(supported_families())}. Remove the TeaCache node for this model.")


__all__ = ["ADAPTERS", "FamilyAdapter", "ModelInfo", "UnsupportedModelError", "find_adapter",
           "supported_families"]
