"""The shared family table: every model family the pack caches joins the parametrised checks of
tests/test_families.py with ONE entry here.

An entry says how to build a tiny real model of the family (ComfyUI's own class, seeded, saved
with safetensors and loaded back through ComfyUI's own loader so that its detection runs), which
model_base config class detection must pick, which adapter must claim it, what to sample it with
and which modules to count (one call per executed transformer block). Builders live in
tests/tiny/<family>.py (or tests/tiny_models.py for the old ones); behaviour that only one
family has keeps its own small test file.

Checks (tests/test_families.py): detection; threshold 0 bit-identical to no node with the same
block executions; a huge threshold computes only the first and last step (blocks counted);
the input model untouched; two runs identical; target_speedup realised per cond.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Callable

import torch


@dataclass(frozen=True)
class Family:
    id: str
    #: build(model_dir) -> ModelPatcher, loaded through ComfyUI's loader
    build: Callable
    #: type(model_patcher.model).__name__ that ComfyUI's detection must pick
    config_class: str
    #: the `family` of the adapter that must claim the diffusion model
    adapter: str
    #: inputs() -> (latent dict for the sampler, positive conds, negative conds)
    inputs: Callable
    #: counted(diffusion_model) -> modules called once per executed transformer block
    counted: Callable = lambda dm: list(dm.blocks)
    steps: int = 6
    cfg: float = 4.0
    sampler: str = "euler"
    scheduler: str = "simple"
    #: modules that must import (e.g. the family's comfy.ldm module): else skipped with why
    needs: tuple = ()
    #: (module, attribute) that must exist, for a class added to a module that older ComfyUI
    #: already has (e.g. ("comfy.model_base", "WAN21_SCAIL")): else skipped with why
    needs_attr: tuple = ()
    #: a threshold that skips some steps but not all on this tiny model (two-run check)
    moderate: float = 0.1
    #: calls at which a huge threshold still computes, per cond (first and last step)
    forced: int = 2
    #: free-form note shown with a skip
    note: str = ""
    extra: dict = field(default_factory=dict)

    def missing(self) -> str | None:
        """Why this family cannot be tested on the running ComfyUI (None: it can)."""
        for name in self.needs:
            try:
                if importlib.util.find_spec(name) is None:
                    raise ImportError
            except (ImportError, ValueError):
                return f"this ComfyUI has no {name} ({self.note or 'added in a newer ComfyUI'})"
        if self.needs_attr:
            module, attr = self.needs_attr
            try:
                found = hasattr(importlib.import_module(module), attr)
            except ImportError:
                found = False
            if not found:
                return (f"this ComfyUI has no {module}.{attr} "
                        f"({self.note or 'added in a newer ComfyUI'})")
        return None


def _lazy(module: str, name: str):
    """A builder/inputs function of a tests/tiny module, imported when first called (the module
    may import ComfyUI classes that only the newest ComfyUI has)."""
    def call(*a, **kw):
        return getattr(importlib.import_module(module), name)(*a, **kw)
    call.__name__ = f"{module}.{name}"
    return call


def first_tensor(out):
    """The sampled latent as a list of tensors (a NestedTensor of video + audio becomes its
    parts)."""
    if isinstance(out, torch.Tensor) and getattr(out, "is_nested", False):
        return list(out.unbind())
    if hasattr(out, "tensors"):                       # comfy.nested_tensor.NestedTensor
        return list(out.tensors)
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in first_tensor(o)]
    return [out]


def L(module, name):  # noqa: N802  (short on purpose: the table below stays one line an entry)
    return _lazy(module, name)


# ---- the table ---------------------------------------------------------------------------
# One entry per family (or per variant that loads through another class). Keep sections apart.
FAMILIES: list[Family] = [
    # --- Wan 2.1/2.2 and variants ---
    Family("wan21_t2v", L("tiny.wan", "build_t2v"), "WAN21", "wan", L("tiny.wan", "inputs")),
    Family("wan21_i2v", L("tiny.wan", "build_i2v"), "WAN21", "wan", L("tiny.wan", "inputs_i2v")),
    Family("wan22_ti2v_5b", L("tiny.wan", "build_ti2v"), "WAN22", "wan",
           L("tiny.wan", "inputs_ti2v")),
    Family("wan21_vace", L("tiny.wan", "build_vace"), "WAN21_Vace", "wan", L("tiny.wan", "inputs")),
    Family("wan22_animate", L("tiny.wan_variants", "build_animate"), "WAN22_Animate", "wan",
           L("tiny.wan_variants", "inputs_animate")),
    Family("wan_animate2", L("tiny.wan_variants", "build_animate2"), "WAN_Animate2", "wan",
           L("tiny.wan_variants", "inputs_animate2"),
           counted=L("tiny.wan_variants", "counted_animate2"),
           needs=("comfy.ldm.wan.model_animate2",), note="Wan Animate 2 is in the newest ComfyUI"),
    Family("wan22_wandancer", L("tiny.wan_variants", "build_wandancer"), "WAN22_WanDancer", "wan",
           L("tiny.wan_variants", "inputs_wandancer"),
           needs=("comfy.ldm.wan.model_wandancer",), note="WanDancer is in the newest ComfyUI"),
    Family("wan21_scail", L("tiny.wan_variants", "build_scail"), "WAN21_SCAIL", "wan",
           L("tiny.wan_variants", "inputs_scail"), needs_attr=("comfy.model_base", "WAN21_SCAIL"),
           note="SCAIL is in the newest ComfyUI"),
    Family("wan21_scail2", L("tiny.wan_variants", "build_scail2"), "WAN21_SCAIL2", "wan",
           L("tiny.wan_variants", "inputs_scail2"),
           needs_attr=("comfy.model_base", "WAN21_SCAIL2"), note="SCAIL 2 is in the newest ComfyUI"),
    Family("wan21_flowrvs", L("tiny.wan_variants", "build_flowrvs"), "WAN21_FlowRVS", "wan",
           L("tiny.wan_variants", "inputs_flowrvs"),
           needs_attr=("comfy.model_base", "WAN21_FlowRVS"), note="FlowRVS is in the newest ComfyUI"),
    Family("wan22_s2v", L("tiny.wan_variants", "build_s2v"), "WAN22_S2V", "wan",
           L("tiny.wan_variants", "inputs_s2v")),
    Family("wan21_humo", L("tiny.wan_variants", "build_humo"), "WAN21_HuMo", "wan",
           L("tiny.wan_variants", "inputs_humo")),
    # --- existing families (migrated) ---
    Family("hunyuan_video_t2v", L("tiny.hunyuan_video", "build_t2v"), "HunyuanVideo",
           "hunyuan_video", L("tiny.hunyuan_video", "inputs_t2v"),
           counted=L("tiny.hunyuan_video", "counted")),
    Family("hunyuan_video15", L("tiny.hunyuan_video", "build_v15"), "HunyuanVideo15",
           "hunyuan_video", L("tiny.hunyuan_video", "inputs_v15"),
           counted=L("tiny.hunyuan_video", "counted")),
    Family("ltxv", L("tiny.ltxv", "build"), "LTXV", "ltxv", L("tiny.ltxv", "inputs"),
           counted=L("tiny.ltxv", "counted"), cfg=3.0),
    Family("ltxav", L("tiny.ltxv", "build_av"), "LTXAV", "ltxv", L("tiny.ltxv", "inputs_av"),
           counted=L("tiny.ltxv", "counted"), cfg=3.0,
           needs=("comfy.ldm.lightricks.av_model",), note="LTX-2 audio-video"),
    Family("mochi", L("tiny.mochi", "build"), "GenmoMochi", "mochi", L("tiny.mochi", "inputs")),
    Family("cosmos_predict2", L("tiny.cosmos", "build_predict2"), "CosmosPredict2", "cosmos",
           L("tiny.cosmos", "inputs"), counted=L("tiny.cosmos", "counted_predict2")),
    Family("cosmos1", L("tiny.cosmos", "build_c1"), "CosmosVideo", "cosmos1",
           L("tiny.cosmos", "inputs"), counted=L("tiny.cosmos", "counted_cosmos1")),
    Family("flux1", L("tiny.flux", "build_flux1"), "Flux", "flux", L("tiny.flux", "inputs_flux1"),
           counted=L("tiny.flux", "counted")),
    Family("chroma", L("tiny.flux", "build_chroma_model"), "Chroma", "chroma",
           L("tiny.flux", "inputs_chroma"), counted=L("tiny.flux", "counted")),
    Family("lumina2", L("tiny.lumina2", "build_lumina2"), "Lumina2", "lumina2",
           L("tiny.lumina2", "inputs"), counted=L("tiny.lumina2", "counted")),
    Family("z_image", L("tiny.lumina2", "build_zimage"), "Lumina2", "lumina2",
           L("tiny.lumina2", "inputs"), counted=L("tiny.lumina2", "counted")),
    Family("hidream_i1", L("tiny.hidream", "build"), "HiDream", "hidream",
           L("tiny.hidream", "inputs"), counted=L("tiny.hidream", "counted")),
    Family("qwen_image", L("tiny.qwen_image", "build"), "QwenImage", "qwen_image",
           L("tiny.qwen_image", "inputs"), counted=L("tiny.qwen_image", "counted")),
    # --- Kandinsky 5, MiniMax H3 ---
    Family("kandinsky5_video", L("tiny.kandinsky5", "build_video"), "Kandinsky5", "kandinsky5",
           L("tiny.kandinsky5", "inputs_video"), counted=L("tiny.kandinsky5", "counted"),
           needs=("comfy.ldm.kandinsky5.model",)),
    Family("kandinsky5_image", L("tiny.kandinsky5", "build_image"), "Kandinsky5Image",
           "kandinsky5", L("tiny.kandinsky5", "inputs_image"),
           counted=L("tiny.kandinsky5", "counted"), needs=("comfy.ldm.kandinsky5.model",)),
    Family("minimax_h3", L("tiny.minimax", "build"), "MiniMaxH3", "minimax",
           L("tiny.minimax", "inputs"), needs=("comfy.ldm.minimax.model",)),
    # --- CogVideoX ---
    Family("cogvideox_t2v", L("tiny.cogvideo", "build_t2v"), "CogVideoX", "cogvideox",
           L("tiny.cogvideo", "inputs_t2v"), counted=L("tiny.cogvideo", "counted"),
           needs=("comfy.ldm.cogvideo.model",), note="CogVideoX is in the newest ComfyUI"),
    Family("cogvideox15_i2v", L("tiny.cogvideo", "build_i2v_15"), "CogVideoX", "cogvideox",
           L("tiny.cogvideo", "inputs_i2v"), counted=L("tiny.cogvideo", "counted"),
           needs=("comfy.ldm.cogvideo.model",), note="CogVideoX is in the newest ComfyUI"),
    # --- forward-hooked image DiTs (PixArt, Omnigen2, Krea2, Ernie, Ideogram 4, PixelDiT) ---
    # the block module itself is always called (its forward is the gate): count a submodule
    # that runs once per executed block
    Family("pixart_sigma", L("tiny.pixart", "build"), "PixArt", "pixart",
           L("tiny.pixart", "inputs"), counted=lambda dm: [b.mlp for b in dm.blocks]),
    Family("omnigen2", L("tiny.omnigen2", "build"), "Omnigen2", "omnigen2",
           L("tiny.omnigen2", "inputs"), counted=lambda dm: [b.feed_forward for b in dm.layers]),
    Family("boogu", L("tiny.omnigen2", "build_boogu"), "Boogu", "boogu",
           L("tiny.omnigen2", "inputs"),
           counted=lambda dm: [b.feed_forward for b in dm.single_stream_layers],
           needs=("comfy.ldm.boogu.model",)),
    Family("krea2", L("tiny.krea2", "build"), "Krea2", "krea2", L("tiny.krea2", "inputs"),
           counted=lambda dm: [b.mlp for b in dm.blocks], needs=("comfy.ldm.krea2.model",)),
    Family("ernie_image", L("tiny.ernie", "build"), "ErnieImage", "ernie",
           L("tiny.ernie", "inputs"), counted=lambda dm: [b.mlp for b in dm.layers],
           needs=("comfy.ldm.ernie.model",)),
    Family("ideogram4", L("tiny.ideogram4", "build"), "Ideogram4", "ideogram4",
           L("tiny.ideogram4", "inputs"), counted=lambda dm: [b.feed_forward for b in dm.layers],
           needs=("comfy.ldm.ideogram4.model",)),
    Family("pixeldit_t2i", L("tiny.pixeldit", "build"), "PixelDiTT2I", "pixeldit",
           L("tiny.pixeldit", "inputs"), counted=lambda dm: [b.mlp_x for b in dm.patch_blocks],
           needs=("comfy.ldm.pixeldit.model",)),
    # --- generic path (patches_replace families without an adapter) ---
    Family("sd3", L("tiny.generic", "build_sd3"), "SD3", "generic", L("tiny.generic", "sd3_inputs"),
           counted=lambda dm: list(dm.joint_blocks)),
    Family("auraflow", L("tiny.generic", "build_auraflow"), "AuraFlow", "generic",
           L("tiny.generic", "auraflow_inputs"), counted=L("tiny.generic", "auraflow_counted")),
    Family("hunyuan_dit", L("tiny.generic", "build_hunyuan_dit"), "HunyuanDiT", "generic",
           L("tiny.generic", "hunyuan_dit_inputs"), counted=lambda dm: list(dm.blocks)),
    Family("lens", L("tiny.generic", "build_lens"), "Lens", "generic",
           L("tiny.generic", "lens_inputs"), counted=lambda dm: list(dm.transformer_blocks),
           needs=("comfy.ldm.lens.model",)),
    Family("joyimage", L("tiny.generic", "build_joyimage"), "JoyImage", "generic",
           L("tiny.generic", "joyimage_inputs"), counted=lambda dm: list(dm.double_blocks),
           needs=("comfy.ldm.joyimage.model",)),
    Family("mageflow", L("tiny.generic", "build_mageflow"), "MageFlow", "generic",
           L("tiny.generic", "mageflow_inputs"), counted=lambda dm: list(dm.transformer_blocks),
           needs=("comfy.ldm.mage_flow.model",)),
    Family("stable_audio", L("tiny.generic", "build_stable_audio"), "StableAudio1", "generic",
           L("tiny.generic", "stable_audio_inputs"),
           counted=L("tiny.generic", "stable_audio_counted")),
    # Stable Audio 3 is refused (adapters/refused.py; tests/test_generic.py shows why: ComfyUI's
    # replace path drops its blocks' local conditioning, so any block hook changes its output)
    Family("hunyuan3d2", L("tiny.generic", "build_hunyuan3d2"), "Hunyuan3Dv2", "generic",
           L("tiny.generic", "hunyuan3d2_inputs"), counted=L("tiny.generic", "hunyuan3d2_counted")),
    # Hunyuan3D 2.1 fails every sampling check: HunYuanDiTPlain's ("block", i) replace hook is
    # called with {"x", "t", "cond", "skip"} and its original_block returns the block's output
    # tensor, which the forward uses as is (not a dict as every other DiT's). The generic path
    # reads dict outputs only: refused at the end of the first call with threshold 0, a
    # TypeError in GenericAdapter.block_output otherwise.
    # Hunyuan3D 2.1: its ("block", i) hook returns the block's bare tensor (no dict)
    Family("hunyuan3d21", L("tiny.generic", "build_hunyuan3d21"), "Hunyuan3Dv2_1", "generic",
           L("tiny.generic", "hunyuan3d21_inputs"), counted=lambda dm: list(dm.blocks)),
]

BY_ID = {f.id: f for f in FAMILIES}
