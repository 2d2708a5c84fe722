"""What every family adapter provides."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import torch

from ..coefficients import PRESETS, UNCALIBRATED, Preset, retention_variant


class UnsupportedModelError(ValueError):
    """The model cannot be cached by TeaCache; the message names the model and the fix."""


@dataclass(frozen=True)
class ModelInfo:
    family: str
    kind: str                 # variant within the family ("t2v", "i2v", "vace", ...)
    dims: dict = field(default_factory=dict)
    description: str = ""


def class_names(obj) -> list[str]:
    return [c.__name__ for c in type(obj).__mro__]


def defining_module(obj, class_name: str):
    """The module object that defines `class_name` in obj's MRO (to reach its helpers)."""
    for c in type(obj).__mro__:
        if c.__name__ == class_name:
            return sys.modules.get(c.__module__)
    return None


class FamilyAdapter:
    family: str = ""
    display: str = ""
    #: blocks change their input tensor in place: clone it before keeping it
    blocks_mutate_input: bool = False

    def matches(self, dm) -> bool:
        raise NotImplementedError

    # ---- block I/O: single-stream "img" blocks by default; dual-stream families override --
    @staticmethod
    def block_input(args) -> torch.Tensor:
        return args["img"]

    @staticmethod
    def passthrough(args) -> dict:
        """What a skipped block returns: its input unchanged."""
        return {"img": args["img"]}

    @staticmethod
    def block_output(out) -> torch.Tensor:
        return out["img"]

    @staticmethod
    def with_output(out, t) -> dict:
        return {**out, "img": t}

    def unsupported_reason(self, dm) -> str | None:
        return None

    def describe(self, dm) -> ModelInfo:
        raise NotImplementedError

    def block_keys(self, dm) -> list:
        """patches_replace["dit"] keys of the transformer blocks, in execution order."""
        raise NotImplementedError

    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        """The indicator tensor for the whole batch (batch first), read at the first block."""
        raise NotImplementedError

    def auto_preset(self, info: ModelInfo, latent_shape=None) -> Preset:
        return UNCALIBRATED

    def preset_kinds(self, info: ModelInfo) -> set:
        """Preset `kind`s that fit this model's architecture."""
        return {info.kind}

    # ---- shared preset logic ---------------------------------------------------------
    def select_preset(self, info: ModelInfo, model_type: str, retention: bool,
                      latent_shape=None) -> Preset:
        """The preset to use; raises ValueError naming what was detected when it doesn't fit."""
        if model_type == "auto":
            preset = self.auto_preset(info, latent_shape)
        else:
            preset = PRESETS.get(model_type)
            if preset is None:
                raise ValueError(f"model_type {model_type!r} is unknown; choose 'auto' or one of "
                                 f"{', '.join(PRESETS)}.")
            problem = self.preset_mismatch(info, preset)
            if problem:
                raise ValueError(problem)
        return retention_variant(preset) if retention else preset

    def preset_mismatch(self, info: ModelInfo, preset: Preset) -> str | None:
        if preset.family == "*":
            return None
        if preset.family != self.family:
            return (f"model_type {preset.name!r} is for the {preset.family} family, but the loaded "
                    f"model is {info.description}. Choose 'auto' or a {self.family} preset.")
        # architecture (kind) first, then size
        for key, want in sorted(preset.match.items(), key=lambda kv: kv[0] != "kind"):
            if key == "kind":
                if want not in self.preset_kinds(info):
                    return (f"model_type {preset.name!r} was fitted on {want.upper()} models, but "
                            f"the loaded model is {info.description}. Choose 'auto'.")
            elif info.dims.get(key) != want:
                return (f"model_type {preset.name!r} was fitted on {key}={want}, but the loaded "
                        f"model is {info.description} ({key}={info.dims.get(key)}). Choose 'auto' "
                        f"or the preset of this model's size.")
        return None

