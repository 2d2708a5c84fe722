"""TeaCache on GGUF models loaded by city96's ComfyUI-GGUF (issue 21).

ComfyUI-GGUF is not on PyPI, so the suite cannot install it: this module runs when the
environment variable COMFYUI_GGUF_PATH names a checkout of its source (the folder holding its
nodes.py) and `import gguf` (the PyPI package `gguf`) works, and skips with the reason
otherwise. Its code is never part of this repository. Example:

    pip install --target /tmp/gguf-site gguf
    COMFYUI_GGUF_PATH=/path/to/ComfyUI-GGUF PYTHONPATH=/tmp/gguf-site \
        ./run_tests.sh tests/test_gguf.py

The files: a seeded tiny Wan (tests/tiny_models.build_wan) written as .gguf by this module's own
small converter, following what ComfyUI-GGUF's tools do for Wan (read from tools/convert.py,
tools/fix_5d_tensors.py and tools/lcpp.patch): architecture "wan"; 1-D tensors, tensors of at
most 1024 values and the `.modulation` parameters in F32; the rest in the source precision (BF16
from a bf16 source, F16 otherwise); the 5-D patch embedding (which convert.py cannot write)
added back in F32 right after its bias, as fix_5d_tensors.py does; for a quantized file, the
2-D weights llama-quantize would quantize (not modulation, patch/text/time embeddings, img_emb,
head) in the quantized type (Q4_0 files take Q4_1 for the FFN down projection, as lcpp.patch
does), with the gguf package's own quantizers. K-quants (Q4_K...) cannot be written from Python
(gguf has no quantizer for them), so they are not covered here.

Loaded with ComfyUI-GGUF's own UnetLoaderGGUF node (its GGMLOps dequantize the weights on the
fly; the model patcher is its GGUFModelPatcher). For each file: threshold 0 bit-identical to the
same GGUF model without TeaCache (same block executions), a huge threshold computes only the
first and last step (blocks counted), target_speedup=2 computes exactly the budget per cond.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch

GGUF_PATH = os.environ.get("COMFYUI_GGUF_PATH", "")


def _why_skip() -> str | None:
    if not GGUF_PATH:
        return ("COMFYUI_GGUF_PATH is not set: point it at a checkout of city96's ComfyUI-GGUF "
                "(not on PyPI, so the suite cannot install it)")
    if not (Path(GGUF_PATH) / "nodes.py").is_file():
        return f"COMFYUI_GGUF_PATH={GGUF_PATH!r} holds no ComfyUI-GGUF source (no nodes.py)"
    try:
        import gguf  # noqa: F401
    except ImportError as e:
        return f"`import gguf` fails ({e}): pip install gguf (e.g. with --target and PYTHONPATH)"
    return None


if _why_skip():
    pytest.skip(_why_skip(), allow_module_level=True)

import gguf  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

import folder_paths  # noqa: E402

import tiny_models as tm  # noqa: E402
from harness import summary  # noqa: E402
from test_weight_formats import STEPS, apply, expected_k, run  # noqa: E402,F401

from comfyui_teacache.teacache_core.adapters import find_adapter  # noqa: E402

Q = gguf.GGMLQuantizationType
LAYERS = 2
PACKAGE = "comfyui_gguf_under_test"
#: file type -> (source dtype, main tensor type, quantized type of the block weights or None)
KINDS = {
    "F16": (torch.float32, Q.F16, None),
    "BF16": (torch.bfloat16, Q.BF16, None),
    "Q8_0": (torch.bfloat16, Q.BF16, Q.Q8_0),
    "Q4_0": (torch.bfloat16, Q.BF16, Q.Q4_0),
}
_FILE_TYPE = {Q.F16: gguf.LlamaFileType.MOSTLY_F16, Q.BF16: gguf.LlamaFileType.MOSTLY_BF16,
              Q.Q8_0: gguf.LlamaFileType.MOSTLY_Q8_0, Q.Q4_0: gguf.LlamaFileType.MOSTLY_Q4_0}
#: tensors llama-quantize (with ComfyUI-GGUF's patch) leaves unquantized in a Wan model
_WAN_KEEP = ("modulation", "patch_embedding.", "text_embedding.", "time_projection.",
             "time_embedding.", "img_emb.", "head.")


def _tensor_type(key: str, t: torch.Tensor, main, quant):
    """The GGUF type of one tensor (see the module docstring)."""
    n = t.numel()
    if t.ndim == 1 or n <= 1024 or ".modulation" in key or t.ndim > 4:
        return Q.F32
    if quant is None or not key.endswith(".weight") or any(s in key for s in _WAN_KEEP):
        return main
    qtype = Q.Q4_1 if (quant == Q.Q4_0 and ".ffn.2.weight" in key) else quant
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    return qtype if t.shape[-1] % block == 0 else Q.F16    # llama-quantize's fallback


def write_gguf(sd: dict, path: Path, kind: str) -> Path:
    """Our converter: a Wan state dict -> a .gguf file ComfyUI-GGUF loads."""
    _src, main, quant = KINDS[kind]
    w = gguf.GGUFWriter(path=None, arch="wan")
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_file_type(_FILE_TYPE[quant or main])
    five_d = {k: v for k, v in sd.items() if v.ndim > 4}
    for key, t in sd.items():
        if t.ndim > 4:
            continue                                       # added back after its bias
        qtype = _tensor_type(key, t, main, quant)
        data = t.float().numpy()
        w.add_tensor(key, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        k5 = key.replace(".bias", ".weight")
        if k5 in five_d:
            w.add_tensor(k5, gguf.quants.quantize(five_d.pop(k5).float().numpy(), Q.F32),
                         raw_dtype=Q.F32)
    for k5, t in five_d.items():
        w.add_tensor(k5, gguf.quants.quantize(t.float().numpy(), Q.F32), raw_dtype=Q.F32)
    w.write_header_to_file(path=str(path))
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def gguf_nodes():
    """ComfyUI-GGUF imported as ComfyUI imports a custom node package; its module and the
    folder_paths keys it adds ("unet_gguf", "clip_gguf") are removed again afterwards."""
    keys = ("unet_gguf", "clip_gguf")
    before = {k: folder_paths.folder_names_and_paths.get(k) for k in keys}
    spec = importlib.util.spec_from_file_location(
        PACKAGE, Path(GGUF_PATH) / "__init__.py", submodule_search_locations=[GGUF_PATH])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = mod
    try:
        spec.loader.exec_module(mod)
        yield mod.NODE_CLASS_MAPPINGS
    finally:
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]
        for k, v in before.items():
            if v is None:
                folder_paths.folder_names_and_paths.pop(k, None)
            else:
                folder_paths.folder_names_and_paths[k] = v


@pytest.fixture(scope="module")
def gguf_files(gguf_nodes, tmp_path_factory):
    """A temporary diffusion_models folder with the tiny Wan in every kind, registered with
    folder_paths for this module only."""
    d = tmp_path_factory.mktemp("gguf_models")
    sources, reference = {}, {}
    for dtype in {v[0] for v in KINDS.values()}:
        p = tm.build_wan(d / f"src_{str(dtype)[6:]}.safetensors", num_layers=LAYERS, seed=23,
                         dtype=dtype)
        sources[dtype] = load_file(str(p))
        reference[dtype] = run(tm.load(p))[0]      # the source through ComfyUI's own loader
    names = {}
    for kind, (dtype, _main, _q) in KINDS.items():
        names[kind] = write_gguf(sources[dtype], d / f"tiny_wan-{kind}.gguf", kind).name
    paths = folder_paths.folder_names_and_paths["diffusion_models"][0]
    added = str(d) not in paths
    folder_paths.add_model_folder_path("diffusion_models", str(d))
    try:
        yield names, reference
    finally:
        if added and str(d) in paths:
            paths.remove(str(d))


_LOADED: dict = {}


@pytest.fixture(params=list(KINDS), ids=str)
def loaded(request, gguf_nodes, gguf_files):
    """(kind, model from UnetLoaderGGUF, baseline (output, block executions) without node)."""
    kind = request.param
    names, _reference = gguf_files
    if kind not in _LOADED:
        _LOADED.clear()
        loader = gguf_nodes["UnetLoaderGGUF"]
        assert names[kind] in loader.INPUT_TYPES()["required"]["unet_name"][0]
        model = loader().load_unet(names[kind])[0]
        _LOADED[kind] = (model, run(model))
    return (kind, *_LOADED[kind])


def test_loaded_through_comfyui_gguf_and_claimed(loaded, gguf_files):
    kind, model, (out, n) = loaded
    assert type(model).__name__ == "GGUFModelPatcher"
    assert type(model.model).__name__ == "WAN21"
    dm = model.get_model_object("diffusion_model")
    assert find_adapter(dm).family == "wan"
    _src, main, quant = KINDS[kind]
    q = dm.blocks[0].self_attn.q.weight
    assert type(q).__name__ == "GGMLTensor" and q.tensor_type == (quant or main)
    assert dm.blocks[0].ffn[2].weight.tensor_type == (Q.Q4_1 if quant == Q.Q4_0 else quant or main)
    assert torch.isfinite(out).all() and n == STEPS * LAYERS
    # the GGUF weights are what ran: near the source checkpoint's output
    ref = gguf_files[1][KINDS[kind][0]]
    assert (out - ref).abs().mean() < 0.1 * ref.abs().mean()


def test_threshold_zero_is_bit_identical(loaded):
    _kind, model, (base, n_base) = loaded
    patched = apply(model, 0.0)
    assert type(patched).__name__ == "GGUFModelPatcher"     # TeaCache's clone keeps its class
    out, n = run(patched)
    assert n == n_base == STEPS * LAYERS
    assert torch.equal(out, base)
    again, _ = run(model)                                    # the input model is unchanged
    assert torch.equal(again, base)


def test_huge_threshold_skips_blocks(loaded):
    _kind, model, (_base, n_base) = loaded
    patched = apply(model, 1e6)
    out, n = run(patched)
    assert torch.isfinite(out).all()
    assert n == 2 * LAYERS < n_base                          # first and last step only
    for label, recs in summary(patched)["branches"].items():
        assert sum(r["computed"] for r in recs) == 2, label


def test_target_speedup_is_realised(loaded):
    _kind, model, (_base, n_base) = loaded
    patched = apply(model, 0.1, target=2.0)
    out, n = run(patched)
    assert torch.isfinite(out).all()
    k = expected_k(STEPS, 2.0, 2)
    s = summary(patched)
    assert set(s["branches"]) == {"cond", "uncond"}
    for label, recs in s["branches"].items():
        assert len(recs) == STEPS and sum(r["computed"] for r in recs) == k, label
    assert n == n_base // STEPS * k == k * LAYERS
