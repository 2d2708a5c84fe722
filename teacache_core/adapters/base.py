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
    #: how blocks are reached: "replace" = ComfyUI's patches_replace["dit"] entries, keys
    #: like ("double_block", i); "forward" = an object patch on each block module's forward,
    #: keys are attribute paths under the diffusion model ("layers.3").
    hook: str = "replace"
    #: indicators this family can measure (see coefficients.py), and the one calibration uses
    indicators: tuple = ("modulated_input",)
    calibration_indicator: str = "modulated_input"
    #: ModelInfo.dims keys a calibration must match (size and in/out channels)
    calibration_keys: tuple = ("hidden", "in_dim", "out_dim", "in_channels", "out_channels")

    def matches(self, dm) -> bool:
        raise NotImplementedError

    # ---- block I/O ------------------------------------------------------------------------
    # `key` is the block's entry of block_keys(); `args` the block's arguments as a dict (for
    # "replace" families ComfyUI's patches_replace args, for "forward" families what
    # forward_args() made of the call). Defaults: single-stream blocks carrying "img".

    def block_input(self, key, args) -> torch.Tensor:
        """The tensor the residual is taken over, as the first block receives it."""
        return args["img"]

    def passthrough(self, key, args):
        """What a skipped block returns: its input unchanged."""
        return {"img": args["img"]}

    def block_output(self, key, args, out) -> torch.Tensor:
        """The residual stream in what the last block returned."""
        return out["img"]

    def with_output(self, key, args, out, t):
        """`out` with its residual stream replaced by `t`."""
        return {**out, "img": t}

    # ---- "forward" families (no patches_replace): an object patch on each block's forward --
    def forward_args(self, key, a, kw) -> dict:
        raise NotImplementedError

    def unsupported_reason(self, dm) -> str | None:
        return None

    def describe(self, dm) -> ModelInfo:
        raise NotImplementedError

    def block_keys(self, dm) -> list:
        """The transformer blocks, in execution order (see `hook`)."""
        raise NotImplementedError

    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        """The indicator tensor for the whole batch (batch first), read at the first block."""
        raise NotImplementedError

    def calibration_dims(self, info: ModelInfo) -> dict:
        return {k: info.dims[k] for k in self.calibration_keys if k in info.dims}

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



class TensorBlockAdapter(FamilyAdapter):
    """"forward"-hooked blocks that take the residual stream as args["x"] and return it as
    one tensor (Cosmos, Lumina 2, PixArt, ERNIE-Image, ...).

    A family states `model_class` (a class name in the diffusion model's MRO), `stack` (the
    attribute holding its blocks) and `arg_names` (the blocks' positional parameters); the
    defaults below then recognise the model, name the gated blocks and bind their calls."""
    hook = "forward"
    model_class: str = ""
    stack: str = "blocks"
    arg_names: tuple = ("x",)

    def matches(self, dm) -> bool:
        return self.model_class in class_names(dm) and hasattr(dm, self.stack)

    def unsupported_reason(self, dm) -> str | None:
        if len(getattr(dm, self.stack)) == 0:
            return "it has no transformer blocks to cache."
        return None

    def forward_args(self, key, a, kw) -> dict:
        out = dict(zip(self.arg_names, a))
        out.update(kw)
        return out

    def block_keys(self, dm) -> list:
        return [f"{self.stack}.{i}" for i in range(len(getattr(dm, self.stack)))]

    def block_input(self, key, args) -> torch.Tensor:
        return args["x"]

    def passthrough(self, key, args):
        return args["x"]

    def block_output(self, key, args, out) -> torch.Tensor:
        return out

    def with_output(self, key, args, out, t):
        return t
