"""Per-family knowledge: how to recognise a model, where its blocks are, how to read the indicator.

One file per family. Adapters recognise models by duck typing (class names in the MRO and
attributes) so that they import nothing from ComfyUI.
"""
from __future__ import annotations

from .base import FamilyAdapter, ModelInfo, UnsupportedModelError
from .wan import WanAdapter

ADAPTERS: list[FamilyAdapter] = [WanAdapter()]


def supported_families() -> list[str]:
    return [a.display for a in ADAPTERS]


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
