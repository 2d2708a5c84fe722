"""Wan variants: Wan 2.2 TI2V-5B (per-frame timesteps), I2V, VACE, official coefficients."""
from __future__ import annotations

import pytest
import torch

import tiny.wan as tw
import tiny_models as tm
from harness import summary_line
from test_wan import apply, computed_steps, sample

from comfyui_teacache.teacache_core.adapters import find_adapter
from comfyui_teacache.teacache_core.patching import registration_of


# Threshold 0 bit-identical, huge threshold (block counts), two runs identical, input model
# untouched and detection of Wan 2.2 TI2V-5B (per-frame timesteps), Wan 2.1 I2V and VACE run in
# tests/test_families.py (entries "wan22_ti2v_5b", "wan21_i2v", "wan21_vace"); what is left
# here is what only this file checks.
def test_wan22_ti2v_per_frame_timesteps(model_dir, caplog):
    import nodes
    ti2v = tw.build_ti2v(model_dir)
    lat, pos, neg = tw.inputs_ti2v()          # first frame given: per-frame timesteps
    patched = apply(ti2v, 1e6)
    out = nodes.common_ksampler(patched, 2, 8, 4.0, "euler", "simple", pos, neg, lat)[0]
    assert torch.isfinite(out["samples"]).all()
    assert computed_steps(patched) == [0, 7]
    assert "TI2V" in summary_line(caplog) and "uncalibrated" in summary_line(caplog)


def test_wan_i2v_is_described_as_i2v(model_dir):
    m = tw.build_i2v(model_dir)
    dm = m.get_model_object("diffusion_model")
    assert dm.img_emb is not None
    info = find_adapter(dm).describe(dm)
    assert info.kind == "i2v"


@pytest.mark.parametrize("variant, kind", [("camera", "camera"), ("flf", "flf2v")])
def test_wan_fun_camera_and_flf2v(model_dir, variant, kind):
    m = tm.load(tm.build_wan(model_dir / f"wan_{variant}_tiny.safetensors", in_dim=36,
                             model_type="i2v", num_layers=2, seed=6, **{variant: True}))
    dm = m.get_model_object("diffusion_model")
    assert find_adapter(dm).describe(dm).kind == kind
    conds = tw.clip_conds(tokens=514 if variant == "flf" else 257)
    base, _ = sample(m, conds=conds)
    same, _ = sample(apply(m, 0.0), conds=conds)
    assert torch.equal(base, same)
    patched = apply(m, 1e6)
    _, n = sample(patched, conds=conds)
    assert n == 2 * 2 and registration_of(patched).last_summary["preset"] == "uncalibrated"


def test_wan_vace_blocks_and_vace_additions(model_dir):
    m = tm.load(tm.build_wan(model_dir / "wan_vace_tiny.safetensors", num_layers=4,
                             vace_layers=2, seed=4))
    dm = m.get_model_object("diffusion_model")
    assert type(dm).__name__ == "VaceWanModel"
    base, _ = sample(m)
    patched = apply(m, 1e6)
    out, n = sample(patched)
    assert n == 2 * 4 and torch.isfinite(out).all()
    # a skipped step must not add VACE's hints twice: skipping everything but the first and
    # last step stays in the same range as the uncached run
    assert (out - base).abs().max() < 10 * base.abs().max()


@pytest.fixture(scope="module")
def wan13(model_dir):
    """Wan 2.1 T2V 1.3B width (dim 1536) with one small block: official coefficients apply."""
    return tm.load(tm.build_wan(model_dir / "wan13_tiny.safetensors", dim=1536, num_layers=1,
                                ffn_dim=128, seed=2, dtype=torch.bfloat16))


def test_auto_picks_official_wan21_coefficients(wan13, caplog):
    patched = apply(wan13, 0.08)
    sample(patched, steps=6)
    s = registration_of(patched).last_summary
    assert s["preset"] == "wan2.1_t2v_1.3B" and s["calibrated"]
    line = summary_line(caplog)
    assert "wan2.1_t2v_1.3B" in line and "ali-vilab/TeaCache" in line
    dists = [r["distance"] for r in s["branches"]["cond"] if r["distance"] is not None]
    assert dists and all(d > 0 for d in dists)


def test_retention_mode_uses_ret_coefficients_on_e0(wan13):
    patched = apply(wan13, 1e6, retention=True)
    _, n = sample(patched, steps=8)
    s = registration_of(patched).last_summary
    assert s["preset"] == "wan2.1_t2v_1.3B_ret"
    assert registration_of(patched).preset.indicator == "modulation_vector"
    assert computed_steps(patched) == [0, 1, 2, 3, 4]
    assert n == 5


def test_manual_ret_preset_and_threshold_zero_exact(wan13):
    base, _ = sample(wan13, steps=6)
    out, _ = sample(apply(wan13, 0.0, model_type="wan2.1_t2v_1.3B_ret"), steps=6)
    assert torch.equal(base, out)


def test_i2v_preset_on_t2v_model_is_an_error(wan13):
    with pytest.raises(ValueError, match="fitted on I2V models"):
        apply(wan13, 0.1, model_type="wan2.1_i2v_480p_14B")


def test_i2v_14b_auto_picks_480p_or_720p_by_latent_size():
    from comfyui_teacache.teacache_core.adapters.base import ModelInfo
    from comfyui_teacache.teacache_core.adapters.wan import WanAdapter
    info = ModelInfo("wan", "i2v", {"dim": 5120, "base": "i2v"}, "Wan 2.1 I2V 14B")
    ad = WanAdapter()
    assert ad.auto_preset(info, (1, 16, 21, 60, 104)).name == "wan2.1_i2v_480p_14B"
    assert ad.auto_preset(info, (1, 16, 21, 90, 160)).name == "wan2.1_i2v_720p_14B"
    assert ad.select_preset(info, "auto", True, (1, 16, 21, 90, 160)).name == "wan2.1_i2v_720p_14B_ret"


def test_flowrvs_is_uncalibrated_although_its_weights_are_t2v():
    """FlowRVS is a plain WanModel (T2V layout): only ComfyUI's config class tells it apart,
    and the T2V coefficients were not fitted on what it samples."""
    from comfyui_teacache.teacache_core.adapters.base import ModelInfo
    from comfyui_teacache.teacache_core.adapters.wan import ADAPTER
    t2v = ModelInfo("wan", "t2v", {"dim": 1536, "in_dim": 16, "out_dim": 16, "model_base": "WAN21"})
    rvs = ModelInfo("wan", "t2v", {**t2v.dims, "model_base": "WAN21_FlowRVS"})
    assert ADAPTER.auto_preset(t2v).name == "wan2.1_t2v_1.3B"
    assert ADAPTER.auto_preset(rvs).name == "uncalibrated"
