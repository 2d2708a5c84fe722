"""TeaCache on the fp8 weight formats users load (issue 21), tiny real Wan models.

Formats (each file written here from one seeded fp32 tiny Wan, tests/tiny_models.build_wan):
- `unet_fp8_e4m3fn` / `unet_fp8_e5m2`: a plain checkpoint loaded with ComfyUI's own
  UNETLoader node and its weight_dtype widget (the weights are cast to fp8 at load).
- `scaled_fp8`: the `*_fp8_scaled` files Comfy-Org ships (Wan 2.1/2.2, Qwen-Image): the Linear
  weights of the blocks stored as float8_e4m3fn divided by a per-tensor scale, each with its
  `<layer>.scale_weight`, plus the `scaled_fp8` marker key (2 elements: full-precision matmul),
  the rest bf16. `scaled_fp8_scale_input`: the same with the empty marker and a
  `<layer>.scale_input` per layer (what ComfyUI's own model save writes for such a model).
- `quant_metadata`: float8_e4m3fn weights with `<layer>.weight_scale` and the layer list in the
  safetensors header `_quantization_metadata` (ComfyUI's "mixed precision" format, read by
  0.3.75 and newer).
- `comfy_quant`: the same weights with a per-layer `<layer>.comfy_quant` JSON tensor instead of
  the header (the format the newest ComfyUI writes; 0.3.75 cannot read it: skipped there).

How ComfyUI runs them on the CPU (read from comfy/ops.py, comfy/quant_ops.py and checked by
test_no_fp8_matmul_on_cpu): `model_management.supports_fp8_compute` is False off NVIDIA GPUs in
both versions, so no fp8 matmul runs on the CPU: UNETLoader's fp8 weights go through
`manual_cast` (upcast to the fp32 compute dtype per call); 0.3.75's `scaled_fp8_ops` multiplies
the upcast weight by its scale; the quantized (QuantizedTensor) layers of 0.3.75's mixed
precision ops and of the newest ComfyUI (where `scaled_fp8` files are converted to `comfy_quant`
layers at load) are dequantized before an ordinary matmul. So every format runs on the CPU in
both versions, and the weights stay stored in fp8 (checked).

For each format: threshold 0 bit-identical to the same model without the node (same block
executions), a huge threshold computes only the first and last step (blocks counted), and
target_speedup=2 computes exactly the budget of each cond (the rule of tests/test_target.py).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import load_file, save_file

import comfy.model_management
import comfy.utils
import folder_paths
import nodes

import tiny_models as tm
from harness import count_calls, summary
from test_target import expected_k  # noqa: F401  (also used by test_gguf)

from comfyui_teacache.nodes.apply import TeaCacheApply
from comfyui_teacache.teacache_core.adapters import find_adapter

LAYERS = 2
STEPS = 6
FP8_MAX = 448.0                      # largest finite float8_e4m3fn


@dataclass(frozen=True)
class Fmt:
    id: str
    weight_dtype: str                # UNETLoader's widget
    file: str                        # which file the loader reads (see _write)


FORMATS = [
    Fmt("unet_fp8_e4m3fn", "fp8_e4m3fn", "plain"),
    Fmt("unet_fp8_e5m2", "fp8_e5m2", "plain"),
    Fmt("scaled_fp8", "default", "scaled_fp8"),
    Fmt("scaled_fp8_scale_input", "default", "scaled_fp8_scale_input"),
    Fmt("quant_metadata", "default", "quant_metadata"),
    Fmt("comfy_quant", "default", "comfy_quant"),
]


def _why_not(fmt: Fmt) -> str | None:
    """Why this ComfyUI cannot load the format (None: it can)."""
    if fmt.file == "comfy_quant" and not hasattr(comfy.utils, "detect_layer_quantization"):
        return ("this ComfyUI (0.3.75) does not read per-layer .comfy_quant keys: it reports them "
                "and the .weight_scale keys as unexpected and loads the raw fp8 values unscaled "
                "(a wrong model); such files need a newer ComfyUI")
    return None


def _quantized_layer(key: str, v: torch.Tensor) -> bool:
    """The Linear weights of the transformer blocks (what the fp8_scaled conversions quantize;
    embeddings, head and the modulation parameters stay high precision)."""
    return key.startswith("blocks.") and key.endswith(".weight") and v.ndim == 2 \
        and "modulation" not in key and "norm" not in key


def _write(src: dict, kind: str, path) -> str:
    """Write `src` (fp32 state dict) in one of the checkpoint formats above; returns the name."""
    if kind == "plain":
        save_file(src, str(path))
        return path.name
    out, layers = {}, {}
    for k, v in src.items():
        if not _quantized_layer(k, v):
            out[k] = v.to(torch.bfloat16)
            continue
        layer = k[:-len(".weight")]
        scale = (v.abs().max().float() / FP8_MAX).clamp(min=1e-12)
        out[k] = (v.float() / scale).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
        if kind.startswith("scaled_fp8"):
            out[f"{layer}.scale_weight"] = scale.reshape(())
            if kind == "scaled_fp8_scale_input":
                out[f"{layer}.scale_input"] = torch.ones(())
        else:
            out[f"{layer}.weight_scale"] = scale.reshape(())
            layers[layer] = {"format": "float8_e4m3fn"}
            if kind == "comfy_quant":
                out[f"{layer}.comfy_quant"] = torch.tensor(
                    list(json.dumps(layers[layer]).encode("utf-8")), dtype=torch.uint8)
    metadata = None
    if kind == "scaled_fp8":
        # 2 elements: "full precision matrix mult" (no input scales), as in ComfyUI's loaders
        out["scaled_fp8"] = torch.zeros(2, dtype=torch.float8_e4m3fn)
    elif kind == "scaled_fp8_scale_input":
        out["scaled_fp8"] = torch.tensor([], dtype=torch.float8_e4m3fn)
    elif kind == "quant_metadata":
        metadata = {"_quantization_metadata": json.dumps({"format_version": "1.0",
                                                           "layers": layers})}
    save_file(out, str(path), metadata=metadata)
    return path.name


def _storage_dtype(t: torch.Tensor):
    """What a weight is stored as (a QuantizedTensor keeps its fp8 data in _qdata)."""
    return getattr(t, "_qdata", t).dtype


def apply(model, thresh, target=0.0):
    msg = TeaCacheApply.validate_inputs(thresh, 0, -1, 0, target_speedup=target)
    assert msg is True, msg
    return TeaCacheApply.execute(model, thresh, 0, -1, "auto", "model_device", False, 0, "reuse",
                                 target).result[0]


def run(model):
    """(sampled latent, block executions): KSampler, euler, CFG 4 (cond and uncond batched)."""
    pos, neg = tm.wan_conds()
    counter, handles = count_calls(list(model.get_model_object("diffusion_model").blocks))
    try:
        out = nodes.common_ksampler(model, 7, STEPS, 4.0, "euler", "simple", pos, neg,
                                    {"samples": torch.zeros(1, 16, 3, 8, 8)})[0]["samples"]
    finally:
        for h in handles:
            h.remove()
    return out, counter["n"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A temporary diffusion_models folder holding the tiny Wan in every format, registered
    with folder_paths for the module and removed again afterwards."""
    d = tmp_path_factory.mktemp("diffusion_models")
    src_path = tm.build_wan(d / "src.safetensors", num_layers=LAYERS, seed=21)
    src = load_file(str(src_path))
    names = {kind: _write(src, kind, d / f"tiny_wan_{kind}.safetensors")
             for kind in {f.file for f in FORMATS}}
    paths = folder_paths.folder_names_and_paths["diffusion_models"][0]
    added = str(d) not in paths
    folder_paths.add_model_folder_path("diffusion_models", str(d))
    try:
        yield d, names
    finally:
        if added and str(d) in paths:
            paths.remove(str(d))


@pytest.fixture(scope="module")
def fp32_output(files):
    d, names = files
    return run(tm.load(d / names["plain"]))[0]


_LOADED: dict = {}


@pytest.fixture(params=FORMATS, ids=lambda f: f.id)
def fmt(request, files):
    """(format, model loaded by UNETLoader, baseline (output, block executions) without node)."""
    f = request.param
    why = _why_not(f)
    if why:
        pytest.skip(why)
    if f.id not in _LOADED:
        _LOADED.clear()                                  # one model in memory at a time
        _d, names = files
        model = nodes.UNETLoader().load_unet(names[f.file], f.weight_dtype)[0]
        _LOADED[f.id] = (model, run(model))
    return (f, *_LOADED[f.id])


def test_no_fp8_matmul_on_cpu():
    """ComfyUI never runs an fp8 matmul on the CPU (it upcasts / dequantizes the weights)."""
    assert comfy.model_management.get_torch_device().type == "cpu"
    assert not comfy.model_management.supports_fp8_compute(torch.device("cpu"))


def test_loaded_in_fp8_and_claimed(fmt, fp32_output):
    f, model, (out, _) = fmt
    assert type(model.model).__name__ == "WAN21"
    dm = model.get_model_object("diffusion_model")
    assert find_adapter(dm).family == "wan"
    want = torch.float8_e5m2 if f.weight_dtype == "fp8_e5m2" else torch.float8_e4m3fn
    for lin in (dm.blocks[0].self_attn.q, dm.blocks[-1].ffn[2]):
        assert _storage_dtype(lin.weight) == want
    # the fp8 weights are what ran: near the fp32 model's output, not equal to it
    assert torch.isfinite(out).all() and not torch.equal(out, fp32_output)
    assert (out - fp32_output).abs().mean() < 0.1 * fp32_output.abs().mean()


def test_threshold_zero_is_bit_identical(fmt):
    _f, model, (base, n_base) = fmt
    out, n = run(apply(model, 0.0))
    assert n == n_base == STEPS * LAYERS
    assert torch.equal(out, base)


def test_huge_threshold_skips_blocks(fmt):
    _f, model, (_base, n_base) = fmt
    patched = apply(model, 1e6)
    out, n = run(patched)
    assert torch.isfinite(out).all()
    assert n == 2 * LAYERS < n_base                        # first and last step only
    for label, recs in summary(patched)["branches"].items():
        assert sum(r["computed"] for r in recs) == 2, label


def test_target_speedup_is_realised(fmt):
    _f, model, (_base, n_base) = fmt
    patched = apply(model, 0.1, target=2.0)
    out, n = run(patched)
    assert torch.isfinite(out).all()
    k = expected_k(STEPS, 2.0, 2)
    s = summary(patched)
    assert set(s["branches"]) == {"cond", "uncond"}
    for label, recs in s["branches"].items():
        assert len(recs) == STEPS and sum(r["computed"] for r in recs) == k, label
    assert n == n_base // STEPS * k == k * LAYERS

