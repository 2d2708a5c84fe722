"""TeaCache on a tiny real HiDream-I1 (ComfyUI's HiDreamImageTransformer2DModel and KSampler).

HiDream has no per-block patches_replace hooks: the "forward" hook style gates its double- and
single-stream blocks. ComfyUI's detection always builds the full 17B configuration, so the tiny
model is loaded the way comfy.sd.load_diffusion_model_state_dict does after detection: the
detected config class (HiDream) with the tiny model's sizes, get_model, load_model_weights,
ModelPatcher.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

import comfy.patcher_extension as pe
import harness as h
from tiny.hidream import (LATENT, N_DOUBLE, N_SINGLE, TINY, build_hidream, conds, counted,
                          load_after_detection)

from comfyui_teacache.teacache_core import coefficients
from comfyui_teacache.teacache_core.adapters import find_adapter
from comfyui_teacache.teacache_core.adapters import hidream
from comfyui_teacache.teacache_core.patching import KEY, ForwardGate

STEPS = 4


@pytest.fixture(scope="module")
def model(model_dir):
    m = load_after_detection(build_hidream(model_dir / "hidream_tiny.safetensors"), **TINY)
    m.test_options_before = repr(m.model_options)
    yield m
    del m.test_options_before


def _blocks(model):
    """What to count: with the "forward" hook style every HiDreamImageBlock is still called (its
    forward is the gate), so count the inner block it runs when it executes."""
    return counted(model.get_model_object("diffusion_model"))


def _sample(model, **kw):
    pos, neg = conds()
    return h.sample(model, torch.zeros(LATENT), pos, neg, steps=STEPS, blocks=_blocks(model), **kw)


@pytest.fixture(scope="module")
def base(model):
    return _sample(model)


@pytest.fixture(scope="module")
def huge(model):
    dm = model.get_model_object("diffusion_model")
    seen, handles = h.record_residual_stream(dm.double_stream_blocks[0], dm.final_layer,
                                            first_kw="image_tokens")
    patched = h.apply(model, 1e6)
    try:
        out, n = _sample(patched)
    finally:
        for hd in handles:
            hd.remove()
    return patched, out, n, seen


MODERATE = 0.2           # uncalibrated: one middle step skipped, one computed (per cond)


@pytest.fixture(scope="module")
def moderate(model):
    patched = h.apply(model, MODERATE)
    out, n = _sample(patched)
    return patched, out, n, h.decisions(patched)


# threshold 0 bit-identical, huge threshold, two runs, input untouched and detection also run
# in tests/test_families.py (entry "hidream_i1")
def test_huge_threshold_skips_all_but_first_and_last(huge):
    patched, out, n, seen = huge
    assert torch.isfinite(out).all()
    assert n == 2 * (N_DOUBLE + N_SINGLE)           # cond+uncond batched: one call per step
    assert h.computed_steps(patched) == [0, STEPS - 1]
    assert h.computed_steps(patched, "uncond") == [0, STEPS - 1]
    # the image tokens the final layer gets on a skipped call: image input + cached residual
    h.assert_skips_add_the_cached_residual(seen, [c for _, c in h.decisions(patched)["cond"]])


def test_cfg_branches_isolated(moderate, monkeypatch):
    patched, batched, _, dec_b = moderate
    mids = [c for s, c in dec_b["cond"] + dec_b["uncond"] if 0 < s < STEPS - 1]
    assert any(mids) and not all(mids), h.summary(patched)["branches"]
    h.force_separate_cond_calls(monkeypatch, patched)
    separate, _ = _sample(patched)
    assert h.summary(patched)["calls"] == 2 * STEPS  # really ran cond and uncond apart
    assert h.decisions(patched) == dec_b
    assert torch.allclose(batched, separate, atol=1e-4)


def test_no_state_left(model, base, moderate):
    assert h.state_released(moderate[0])
    assert repr(model.model_options) == model.test_options_before and not model.object_patches
    assert not model.get_wrappers(pe.WrappersMP.OUTER_SAMPLE, KEY)
    after, n = _sample(model)                        # the input model, after the patched clone
    assert torch.equal(after, base[0]) and n == base[1]
    dm = model.get_model_object("diffusion_model")
    blocks = list(dm.double_stream_blocks) + list(dm.single_stream_blocks)
    assert not [b for b in blocks if isinstance(vars(b).get("forward"), ForwardGate)]


def test_timestep_embedding_indicator(model, monkeypatch):
    """The published HiDream presets measure t_embedder(t). They are refused on a model of
    another size; a same-indicator preset without a size shows the indicator at work: the same
    timestep for cond and uncond, so the same distances."""
    with pytest.raises(ValueError) as e:
        h.apply(model, 0.2, model_type="hidream_i1_full")
    assert "hidden=2560" in str(e.value) and "hidden 64" in str(e.value)
    full = coefficients.PRESETS["hidream_i1_full"]
    monkeypatch.setitem(coefficients.PRESETS, "hidream_t_embed_test", dataclasses.replace(
        full, name="hidream_t_embed_test", coefficients=None, match={}))
    patched = h.apply(model, 0.2, model_type="hidream_t_embed_test")
    out, _ = _sample(patched)
    assert torch.isfinite(out).all()
    recs = h.summary(patched)["branches"]
    dist = [r["distance"] for r in recs["cond"]]
    assert dist[0] is None and all(d > 0 for d in dist[1:])
    assert dist == [r["distance"] for r in recs["uncond"]]


def test_detection_and_presets(model, huge):
    dm = model.get_model_object("diffusion_model")
    assert find_adapter(dm) is hidream.ADAPTER
    info = hidream.ADAPTER.describe(dm)
    assert info.description.startswith("HiDream-I1 hidden 64 (HiDreamImageTransformer2DModel, "
                                       "hidden 64, 2 double + 2 single blocks")
    assert h.summary(huge[0])["preset"] == "uncalibrated"
    with pytest.raises(ValueError) as e:                     # a preset of another family
        h.apply(model, 0.2, model_type="flux")
    assert "flux" in str(e.value) and "HiDream-I1" in str(e.value)
