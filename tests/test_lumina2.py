"""TeaCache on tiny real Lumina 2 / Z-Image models (ComfyUI's NextDiT, loader, KSampler).

NextDiT has no per-block patches_replace hooks: the "forward" hook style gates `layers.<i>`.
- Lumina Image 2.0: detection fixes the width (2304, 24 heads, RoPE 32+32+32), so the tiny model
  is 2304 wide with one main layer (first gate == last gate) and the two noise + two context
  refiners detection expects (~300M parameters, saved in bf16, run in fp32 as on any CPU);
  loaded with comfy.sd.load_diffusion_model.
- Z-Image: detection only knows the 3840-wide 6B. The tiny one (256 wide, 3 layers, Z-Image
  modulation, token padding) is loaded the way load_diffusion_model_state_dict does after
  detection, with ComfyUI's ZImage config class.
"""
from __future__ import annotations

import pytest
import torch

import comfy.patcher_extension as pe
import harness as h
import tiny_models as tm
from tiny.lumina2 import LATENT, build_lumina2_file, build_zimage_file, conds, counted, load_zimage

from comfyui_teacache.teacache_core.adapters import find_adapter
from comfyui_teacache.teacache_core.adapters import lumina2
from comfyui_teacache.teacache_core.patching import KEY, ForwardGate

STEPS = 4


def _layers(model):
    """What to count: with the "forward" hook style every layer module is still called (its
    forward is the gate), so count its attention, which runs once per executed layer."""
    return counted(model.get_model_object("diffusion_model"))


def _sample(model, **kw):
    pos, neg = conds()
    return h.sample(model, torch.zeros(LATENT), pos, neg, steps=STEPS, blocks=_layers(model), **kw)


@pytest.fixture(scope="module", params=["lumina2", "z_image"])
def model(request, model_dir):
    if request.param == "lumina2":
        m = tm.load(build_lumina2_file(model_dir / "lumina2_tiny.safetensors"), keep_file=False)
        assert type(m.model).__name__ == "Lumina2"
    else:
        m = load_zimage(build_zimage_file(model_dir / "zimage_tiny.safetensors"))
        assert type(m.model).__name__ == "Lumina2"
        assert type(m.model.model_config).__name__ == "ZImage"
    m.test_kind = request.param
    m.test_options_before = repr(m.model_options)
    yield m
    del m.test_kind, m.test_options_before


@pytest.fixture(scope="module")
def base(model):
    return _sample(model)


# threshold 0 bit-identical, huge threshold, two runs, input untouched and detection of both
# also run in tests/test_families.py (entries "lumina2", "z_image")
@pytest.fixture(scope="module")
def huge(model):
    dm = model.get_model_object("diffusion_model")
    seen, handles = h.record_residual_stream(dm.layers[0], dm.final_layer)
    patched = h.apply(model, 1e6)
    try:
        out, n = _sample(patched)
    finally:
        for hd in handles:
            hd.remove()
    return patched, out, n, seen


MODERATE = {"lumina2": 0.15, "z_image": 0.9}   # one middle step skipped, one computed


@pytest.fixture(scope="module")
def moderate(model):
    patched = h.apply(model, MODERATE[model.test_kind])
    out, n = _sample(patched)
    return patched, out, n, h.decisions(patched)


def test_huge_threshold_skips_all_but_first_and_last(model, huge):
    patched, out, n, seen = huge
    assert torch.isfinite(out).all()
    assert n == 2 * len(_layers(model))              # cond+uncond batched: one call per step
    assert h.computed_steps(patched) == [0, STEPS - 1]
    assert h.computed_steps(patched, "uncond") == [0, STEPS - 1]
    # the joint sequence the final layer gets on a skipped call: input + cached residual
    h.assert_skips_add_the_cached_residual(seen, [c for _, c in h.decisions(patched)["cond"]])


def test_cfg_branches_isolated(model, moderate, monkeypatch):
    patched, batched, _, dec_b = moderate
    mids = [c for s, c in dec_b["cond"] + dec_b["uncond"] if 0 < s < STEPS - 1]
    assert any(mids) and not all(mids), dec_b        # the threshold skips some, not all
    h.force_separate_cond_calls(monkeypatch, patched)
    separate, _ = _sample(patched)
    assert h.summary(patched)["calls"] == 2 * STEPS  # really ran cond and uncond apart
    assert h.decisions(patched) == dec_b
    assert torch.allclose(batched, separate, atol=1e-3)


def test_no_state_left(model, base, moderate):
    patched = moderate[0]
    assert h.state_released(patched)
    assert repr(model.model_options) == model.test_options_before and not model.object_patches
    assert not model.get_wrappers(pe.WrappersMP.OUTER_SAMPLE, KEY)
    after, n = _sample(model)                        # the input model, after the patched clone
    assert torch.equal(after, base[0]) and n == base[1]
    layers = model.get_model_object("diffusion_model").layers
    assert not [b for b in layers if isinstance(vars(b).get("forward"), ForwardGate)]


def test_detection_and_presets(model, huge):
    dm = model.get_model_object("diffusion_model")
    assert find_adapter(dm) is lumina2.ADAPTER
    info = lumina2.ADAPTER.describe(dm)
    patched = huge[0]
    if model.test_kind == "lumina2":
        assert info.kind == "lumina2"
        assert info.description == "Lumina Image 2.0 2.6B (NextDiT, hidden 2304, 1 layers)"
        assert h.summary(patched)["preset"] == "lumina2"
        assert h.summary(patched)["model"] == info.description
    else:
        assert info.kind == "z_image"
        assert info.description == "Z-Image hidden 256 (NextDiT, hidden 256, 3 layers)"
        assert h.summary(patched)["preset"] == "uncalibrated"
        with pytest.raises(ValueError) as e:                 # Lumina 2's preset on Z-Image
            h.apply(model, 0.3, model_type="lumina2")
        assert "hidden=2304" in str(e.value) and "Z-Image" in str(e.value)
    with pytest.raises(ValueError) as e:                     # a preset of another family
        h.apply(model, 0.2, model_type="hidream_i1_full")
    assert "hidream" in str(e.value) and info.description in str(e.value)
