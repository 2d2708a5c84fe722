"""TeaCache on tiny real Cosmos models (ComfyUI's own classes, detection, loader, KSampler).

Cosmos has no per-block patches_replace hooks: this exercises the "forward" hook style (an object
patch on each block's forward).
- Cosmos Predict2 (MiniTrainDIT): saved and loaded with comfy.sd.load_diffusion_model.
  ComfyUI 0.3.75 builds 10 blocks for any width it does not know (0.33 counts them), so the
  tiny model has as many blocks as detection will build.
- Cosmos 1.0 (GeneralDIT): detection always builds the 14B layout (36 blocks, 40 heads) for a
  width it does not know; the tiny model is loaded the way load_diffusion_model_state_dict does
  after detection (detected config class, get_model, load_model_weights, ModelPatcher) with the
  tiny block count and head count.
"""
from __future__ import annotations

import pytest
import torch

import comfy.patcher_extension as pe
import harness as h
import tiny_models as tm
from tiny.cosmos import (C1_BLOCKS, HIDDEN, LATENT, build_cosmos1, build_cosmos_predict2,
                         conds, counted_cosmos1, counted_predict2, load_cosmos1)

from comfyui_teacache.teacache_core import adapters as adapters_pkg
from comfyui_teacache.teacache_core.adapters import ModelInfo, find_adapter
from comfyui_teacache.teacache_core.adapters import cosmos
from comfyui_teacache.teacache_core.patching import KEY, ForwardGate

STEPS = 4


@pytest.fixture(scope="module", autouse=True)
def _both_cosmos_adapters():
    """adapters/__init__.py registers one ADAPTER per module (Cosmos Predict2 here); make sure
    the Cosmos 1.0 adapter this module also defines is registered too."""
    saved = list(adapters_pkg.ADAPTERS)
    adapters_pkg.ADAPTERS[:] = [a for a in saved if a.family not in ("cosmos", "cosmos1")] + \
        list(cosmos.ADAPTERS)
    yield
    adapters_pkg.ADAPTERS[:] = saved


# ---- Cosmos Predict2 ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def predict2(model_dir):
    return tm.load(build_cosmos_predict2(model_dir / "cosmos_predict2_tiny.safetensors",
                                         num_blocks=3))


def _p2_blocks(model):
    """What to count: with the "forward" hook style every block module is still called (its
    forward is the gate), so count a submodule that runs once per executed block."""
    return counted_predict2(model.get_model_object("diffusion_model"))


def _sample(model, blocks, **kw):
    pos, neg = conds()
    return h.sample(model, torch.zeros(LATENT), pos, neg, steps=STEPS, blocks=blocks, **kw)


@pytest.fixture(scope="module")
def predict2_base(predict2):
    return _sample(predict2, _p2_blocks(predict2))


# threshold 0 bit-identical, huge threshold, two runs, input untouched and detection of both
# Cosmos models also run in tests/test_families.py (entries "cosmos_predict2", "cosmos1")
def test_predict2_huge_threshold_skips_all_but_first_and_last(predict2):
    dm = predict2.get_model_object("diffusion_model")
    seen, handles = h.record_residual_stream(dm.blocks[0], dm.final_layer)
    patched = h.apply(predict2, 1e6)
    try:
        out, n = _sample(patched, _p2_blocks(predict2))
    finally:
        for hd in handles:
            hd.remove()
    assert torch.isfinite(out).all()
    assert n == 2 * len(_p2_blocks(predict2))       # cond+uncond batched: one call per step
    assert h.computed_steps(patched) == [0, STEPS - 1]
    assert h.computed_steps(patched, "uncond") == [0, STEPS - 1]
    # what the final layer gets on a skipped call: block input + cached residual
    h.assert_skips_add_the_cached_residual(seen, [c for _, c in h.decisions(patched)["cond"]])


def test_predict2_cfg_branches_isolated(predict2, monkeypatch):
    patched = h.apply(predict2, 0.25)
    batched, _ = _sample(patched, _p2_blocks(predict2))
    dec_b = h.decisions(patched)
    mids = [c for s, c in dec_b["cond"] + dec_b["uncond"] if 0 < s < STEPS - 1]
    assert any(mids) and not all(mids), dec_b        # the threshold skips some, not all
    h.force_separate_cond_calls(monkeypatch, patched)
    separate, _ = _sample(patched, _p2_blocks(predict2))
    assert h.summary(patched)["calls"] == 2 * STEPS  # really ran cond and uncond apart
    assert h.decisions(patched) == dec_b
    assert torch.allclose(batched, separate, atol=1e-4)


def test_predict2_no_state_left(predict2, predict2_base):
    before = repr(predict2.model_options)
    patched = h.apply(predict2, 0.25)
    _sample(patched, _p2_blocks(predict2))
    assert h.state_released(patched)
    assert repr(predict2.model_options) == before
    assert not predict2.get_wrappers(pe.WrappersMP.OUTER_SAMPLE, KEY)
    assert not predict2.object_patches
    after, n = _sample(predict2, _p2_blocks(predict2))
    assert torch.equal(after, predict2_base[0]) and n == predict2_base[1]
    blocks = predict2.get_model_object("diffusion_model").blocks
    assert not [b for b in blocks if isinstance(vars(b).get("forward"), ForwardGate)]


def test_predict2_detection_and_presets(predict2):
    dm = predict2.get_model_object("diffusion_model")
    assert find_adapter(dm) is cosmos.ADAPTER            # discovered from adapters/cosmos.py
    info = cosmos.ADAPTER.describe(dm)
    assert info.kind == "t2i" and info.dims["hidden"] == HIDDEN
    assert info.description.startswith(f"Cosmos Predict2 Text2Image hidden {HIDDEN} (MiniTrainDIT")
    patched = h.apply(predict2, 1e6)
    _sample(patched, _p2_blocks(predict2))
    assert h.summary(patched)["preset"] == "uncalibrated"
    with pytest.raises(ValueError) as e:
        h.apply(predict2, 0.3, model_type="cosmos_1.0_7B")
    assert "cosmos1" in str(e.value) and "Cosmos Predict2 Text2Image" in str(e.value)
    with pytest.raises(ValueError, match="Cosmos Predict2"):
        h.apply(predict2, 0.1, model_type="wan2.1_t2v_1.3B")


# ---- Cosmos 1.0 --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cosmos1(model_dir):
    m = load_cosmos1(build_cosmos1(model_dir / "cosmos1_tiny.safetensors"))
    assert type(m.model).__name__ == "CosmosVideo"
    return m


def _c1_blocks(model):
    return counted_cosmos1(model.get_model_object("diffusion_model"))


@pytest.fixture(scope="module")
def cosmos1_base(cosmos1):
    return _sample(cosmos1, _c1_blocks(cosmos1))


def test_cosmos1_huge_threshold_skips_all_but_first_and_last(cosmos1):
    dm = cosmos1.get_model_object("diffusion_model")
    seen, handles = h.record_residual_stream(dm.blocks["block0"], dm.final_layer)
    patched = h.apply(cosmos1, 1e6)
    try:
        out, n = _sample(patched, _c1_blocks(cosmos1))
    finally:
        for hd in handles:
            hd.remove()
    assert torch.isfinite(out).all()
    assert n == 2 * C1_BLOCKS
    assert h.computed_steps(patched) == [0, STEPS - 1]
    assert h.computed_steps(patched, "uncond") == [0, STEPS - 1]
    # the blocks run [T, H, W, B, D], the final layer gets [B*T, H*W, D]: block input + cached
    # residual, in the final layer's layout
    computed = [c for _, c in h.decisions(patched)["cond"]]
    h.assert_skips_add_the_cached_residual(
        seen, computed, layout=lambda t: t.movedim(3, 0).flatten(2, 3).flatten(0, 1))


def test_cosmos1_cfg_branches_isolated(cosmos1, monkeypatch):
    patched = h.apply(cosmos1, 0.25)
    batched, _ = _sample(patched, _c1_blocks(cosmos1))
    dec_b = h.decisions(patched)
    mids = [c for s, c in dec_b["cond"] + dec_b["uncond"] if 0 < s < STEPS - 1]
    assert any(mids) and not all(mids), dec_b
    h.force_separate_cond_calls(monkeypatch, patched)
    separate, _ = _sample(patched, _c1_blocks(cosmos1))
    assert h.summary(patched)["calls"] == 2 * STEPS
    assert h.decisions(patched) == dec_b
    assert torch.allclose(batched, separate, atol=1e-4)


def test_cosmos1_no_state_left(cosmos1, cosmos1_base):
    before = repr(cosmos1.model_options)
    patched = h.apply(cosmos1, 0.25)
    _sample(patched, _c1_blocks(cosmos1))
    assert h.state_released(patched)
    assert repr(cosmos1.model_options) == before and not cosmos1.object_patches
    after, n = _sample(cosmos1, _c1_blocks(cosmos1))
    assert torch.equal(after, cosmos1_base[0]) and n == cosmos1_base[1]


def test_cosmos1_detection_and_presets(cosmos1):
    dm = cosmos1.get_model_object("diffusion_model")
    assert find_adapter(dm) is cosmos.COSMOS1_ADAPTER
    info = cosmos.COSMOS1_ADAPTER.describe(dm)
    assert info.kind == "t2w"
    assert info.description == (f"Cosmos 1.0 Text2World hidden {HIDDEN} (GeneralDIT, hidden "
                                f"{HIDDEN}, {C1_BLOCKS} blocks)")
    patched = h.apply(cosmos1, 1e6)
    _sample(patched, _c1_blocks(cosmos1))
    assert h.summary(patched)["preset"] == "uncalibrated"     # not the 7B: no coefficients
    with pytest.raises(ValueError) as e:                      # the 7B preset on another size
        h.apply(cosmos1, 0.3, model_type="cosmos_1.0_7B")
    assert "hidden=4096" in str(e.value) and f"hidden {HIDDEN}" in str(e.value)
    with pytest.raises(ValueError) as e:                      # a preset of another family
        h.apply(cosmos1, 0.1, model_type="lumina2")
    assert "Cosmos 1.0 Text2World" in str(e.value) and "cosmos1" in str(e.value)
    seven_b = ModelInfo("cosmos1", "t2w", {"hidden": 4096}, "Cosmos 1.0 Text2World 7B")
    assert cosmos.COSMOS1_ADAPTER.auto_preset(seven_b).name == "cosmos_1.0_7B"

