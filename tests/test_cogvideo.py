"""CogVideoX (newest ComfyUI only) beyond the shared harness (tests/families.py entries
cogvideox_t2v, cogvideox15_i2v): which preset `auto` picks for each published architecture, the
two indicators, and the DDPM schedule (v-prediction, zero-terminal SNR: sigmas from ~4519 down
to ~0.03, not flow matching) with start_step / end_step and skip_estimate="extrapolate".

The published checkpoints are far too big to build here: their architectures are built on the
meta device (no memory), their state dicts go through ComfyUI's detection
(model_config_from_unet) and the detected config class's get_model, as loading them would.
"""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("comfy.ldm.cogvideo.model", reason="CogVideoX is in the newest ComfyUI only")

import comfy.ldm.cogvideo.model as cog  # noqa: E402
import comfy.model_detection  # noqa: E402
import comfy.ops  # noqa: E402
import comfy.samplers  # noqa: E402

import harness as h  # noqa: E402
from tiny import cogvideo as tc  # noqa: E402

from comfyui_teacache.teacache_core import state as st  # noqa: E402
from comfyui_teacache.teacache_core.adapters import find_adapter  # noqa: E402
from comfyui_teacache.teacache_core.coefficients import PRESETS  # noqa: E402
from comfyui_teacache.teacache_core.config import TeaCacheConfig  # noqa: E402
from comfyui_teacache.teacache_core.patching import apply_teacache, resolve_preset  # noqa: E402


# ---- auto: the published architectures (meta device, ComfyUI's detection) ------------------
# (diffusers configs of the checkpoints; ComfyUI's detection re-derives what it reads)
_2B = dict(num_attention_heads=30, num_layers=30)
_5B = dict(num_attention_heads=48, num_layers=42, use_rotary_positional_embeddings=True)
_15 = dict(_5B, patch_size_t=2)
REAL = {
    # name: (config, detected supported_models class, auto preset)
    "CogVideoX-2b": (_2B, "CogVideoX_T2V", "cogvideox_2B"),
    "CogVideoX-5b": (_5B, "CogVideoX_T2V", "cogvideox_5B"),
    "CogVideoX-5b-I2V": (dict(_5B, in_channels=32, use_learned_positional_embeddings=True),
                         "CogVideoX_I2V", "cogvideox_5B_i2v"),
    "CogVideoX1.5-5B": (_15, "CogVideoX_T2V", "cogvideox1.5_5B"),
    "CogVideoX1.5-5B-I2V": (dict(_15, in_channels=32, ofs_embed_dim=512), "CogVideoX_I2V",
                            "cogvideox1.5_5B_i2v"),
    # no published coefficients: uncalibrated
    "CogVideoX-Fun-2b-InP": (dict(_2B, in_channels=48), "CogVideoX_Inpaint", "uncalibrated"),
    "CogVideoX-Fun-V1.5-5b-InP": (dict(_15, in_channels=48), "CogVideoX_Inpaint", "uncalibrated"),
    "5B with 30 blocks": (dict(_5B, num_layers=30), "CogVideoX_T2V", "uncalibrated"),
    "2B width, 42 blocks": (dict(_2B, num_layers=42), "CogVideoX_T2V", "uncalibrated"),
    "1.5-I2V without ofs": (dict(_15, in_channels=32), "CogVideoX_I2V", "uncalibrated"),
    "1.5-T2V with ofs": (dict(_15, ofs_embed_dim=512), "CogVideoX_T2V", "uncalibrated"),
    "1.0 5B with ofs (I2V)": (dict(_5B, in_channels=32, ofs_embed_dim=512), "CogVideoX_I2V",
                              "uncalibrated"),
}


def _real(name):
    """(detected config class name, the diffusion model ComfyUI builds), on the meta device."""
    cfg = REAL[name][0]
    with torch.device("meta"):
        m = cog.CogVideoXTransformer3DModel(operations=comfy.ops.disable_weight_init, **cfg)
        sd = m.state_dict()
        mc = comfy.model_detection.model_config_from_unet(sd, "")
        assert mc is not None, name
        model = mc.get_model(sd, "")
    return type(mc).__name__, model.diffusion_model


@pytest.mark.parametrize("name", list(REAL))
def test_auto_picks_the_preset_of_the_exact_architecture(name):
    config_class, dm = _real(name)
    assert config_class == REAL[name][1]
    ad = find_adapter(dm)
    assert ad.family == "cogvideox"
    info = ad.describe(dm)
    preset = ad.select_preset(info, "auto", False)
    assert preset.name == REAL[name][2], info
    if preset.calibrated:
        assert preset.indicator == "timestep_embedding"
        assert "TeaCache4CogVideoX1.5/teacache_sample_video.py" in preset.source
        assert ad.preset_mismatch(info, preset) is None


def test_descriptions_name_the_variant():
    descs = {n: find_adapter(_real(n)[1]).describe(_real(n)[1]).description
             for n in ("CogVideoX-2b", "CogVideoX-5b-I2V", "CogVideoX1.5-5B-I2V",
                       "CogVideoX-Fun-V1.5-5b-InP")}
    assert descs["CogVideoX-2b"].startswith("CogVideoX-2B T2V (")
    assert descs["CogVideoX-5b-I2V"].startswith("CogVideoX-5B I2V (")
    assert descs["CogVideoX1.5-5B-I2V"].startswith("CogVideoX1.5-5B I2V (") and "ofs" in \
        descs["CogVideoX1.5-5B-I2V"]
    assert descs["CogVideoX-Fun-V1.5-5b-InP"].startswith("CogVideoX1.5-5B Fun inpaint (")


def test_a_preset_of_another_variant_is_refused_by_hand():
    _, dm15 = _real("CogVideoX1.5-5B")
    ad = find_adapter(dm15)
    info = ad.describe(dm15)
    with pytest.raises(ValueError, match="version=1.0"):
        ad.select_preset(info, "cogvideox_5B", False)         # 1.0 coefficients on 1.5
    with pytest.raises(ValueError, match="I2V"):
        ad.select_preset(info, "cogvideox1.5_5B_i2v", False)  # I2V coefficients on T2V
    _, dm2 = _real("CogVideoX-2b")
    with pytest.raises(ValueError, match="hidden=3072"):
        ad.select_preset(ad.describe(dm2), "cogvideox_5B", False)
    # a Fun inpaint model may borrow its base's presets by hand (auto stays uncalibrated)
    _, fun = _real("CogVideoX-Fun-V1.5-5b-InP")
    fun_info = ad.describe(fun)
    assert ad.select_preset(fun_info, "cogvideox1.5_5B_i2v", False).name == "cogvideox1.5_5B_i2v"
    with pytest.raises(ValueError, match="version=1.0"):
        ad.select_preset(fun_info, "cogvideox_5B_i2v", False)


# ---- tiny models through ComfyUI's loader ----------------------------------------------------
@pytest.fixture(scope="module")
def t2v(model_dir):
    return tc.build_t2v(model_dir, num_layers=3, seed=11)


@pytest.fixture(scope="module")
def i2v15(model_dir):
    return tc.build_i2v_15(model_dir, num_layers=2, seed=12)


def test_tiny_variants_are_detected_as_what_they_stand_for(t2v, i2v15, model_dir):
    inpaint = tc.build_inpaint(model_dir)
    for model, cls, kind, version, ofs in ((t2v, "CogVideoX_T2V", "t2v", "1.0", False),
                                           (i2v15, "CogVideoX_I2V", "i2v", "1.5", True),
                                           (inpaint, "CogVideoX_Inpaint", "inpaint", "1.0", False)):
        assert type(model.model).__name__ == "CogVideoX"
        assert type(model.model.model_config).__name__ == cls
        dm = model.get_model_object("diffusion_model")
        info = find_adapter(dm).describe(dm)
        assert (info.kind, info.dims["version"], info.dims["ofs"]) == (kind, version, ofs)
        # no published architecture is this small: auto runs uncalibrated
        assert resolve_preset(find_adapter(dm), info, TeaCacheConfig(0.1)).name == "uncalibrated"


def _rel_l1(cur, prev):
    return ((cur - prev).abs().sum() / prev.abs().sum()).item()


def _temb_at_block0(dm):
    seen = []
    handle = dm.blocks[0].register_forward_pre_hook(
        lambda _m, a, kw: seen.append((kw["hidden_states"].detach().clone(),
                                       kw["temb"].detach().clone())), with_kwargs=True)
    return seen, handle


@pytest.mark.parametrize("preset", ["cogvideox1.5_5B_i2v", "uncalibrated"])
def test_indicators_are_the_timestep_embedding_or_the_modulated_input(i2v15, preset):
    """timestep_embedding = what the blocks get as temb (on 1.5-I2V: timestep + ofs
    embedding, as the official code measures it); modulated_input = block 0's norm1 output
    for the video stream. Every call computed (threshold 0): the distances are still measured."""
    dm = i2v15.get_model_object("diffusion_model")
    # the preset is given directly (its size check would refuse the tiny model)
    patched, _ = apply_teacache(i2v15, TeaCacheConfig(0.0, model_type=preset),
                                preset=PRESETS[preset])
    seen, handle = _temb_at_block0(dm)
    lat, pos, neg = tc.inputs_i2v()
    try:
        h.sample(patched, lat["samples"], pos, neg, steps=5, cfg=1.0, blocks=tc.counted(dm))
    finally:
        handle.remove()
    recs = h.summary(patched)["branches"]["cond"]
    assert len(seen) == len(recs) == 5
    with torch.no_grad():
        if preset == "uncalibrated":
            ind = [dm.blocks[0].norm1(x, x[:, :1], temb)[0] for x, temb in seen]
        else:
            ind = [temb for _, temb in seen]
            ofs = dm.ofs_embedding_linear_2(dm.ofs_embedding_act(dm.ofs_embedding_linear_1(
                cog.get_timestep_embedding(torch.full((1,), 2.0), dm.ofs_proj_dim))))
            assert all(not torch.allclose(t - ofs, t, atol=1e-3) for t in ind)  # ofs is in
    assert recs[0]["distance"] is None
    for i in range(1, 5):
        assert recs[i]["distance"] == pytest.approx(_rel_l1(ind[i], ind[i - 1]), rel=1e-4), i

STEPS = 8


def _schedule(model, steps=STEPS):
    ms = model.get_model_object("model_sampling")
    return comfy.samplers.calculate_sigmas(ms, "simple", steps).tolist()


def test_ddpm_schedule_start_end_steps_and_extrapolate(t2v):
    """The sigmas TeaCache sees are the DDPM (zero-terminal SNR) schedule ComfyUI samples;
    start_step 3 / end_step 6 with a huge threshold compute steps 0-2 and 6-7 and skip 3-5;
    each skipped call hands the final norm its own block input + the line through the
    residuals of steps 1 and 2, in sigma."""
    sigmas = _schedule(t2v)
    assert sigmas[0] > 4000 and sigmas[-2] < 0.5 and sigmas[-1] == 0       # zsnr DDPM, not flow
    assert all(a > b for a, b in zip(sigmas, sigmas[1:]))
    dm = t2v.get_model_object("diffusion_model")
    pos, neg = tc.conds()
    results = {}
    for estimate in ("reuse", "extrapolate"):
        patched = h.apply(t2v, 1e6, start=3, end=6, skip_estimate=estimate)
        seen, handles = h.record_residual_stream(dm.blocks[0], dm.norm_final,
                                                 first_kw="hidden_states")
        try:
            out, n = h.sample(patched, torch.zeros(tc.LATENT_1_0), pos, neg, steps=STEPS,
                              cfg=1.0, blocks=tc.counted(dm))
        finally:
            for hd in handles:
                hd.remove()
        recs = h.summary(patched)["branches"]["cond"]
        assert [r["step"] for r in recs] == list(range(STEPS))
        assert [r["computed"] for r in recs] == [True] * 3 + [False] * 3 + [True] * 2
        assert [r["reason"] for r in recs if r["computed"]][1:3] == ["before start_step"] * 2
        assert [r["reason"] for r in recs][6:] == ["at or after end_step"] * 2
        assert n == 5 * len(dm.blocks)
        assert [r["sigma"] for r in recs] == pytest.approx(sigmas[:-1], rel=1e-6)
        assert torch.isfinite(out).all()
        results[estimate] = out
        if estimate == "reuse":
            h.assert_skips_add_the_cached_residual(seen, [r["computed"] for r in recs])
            continue
        (x1, x2), (y1, y2) = seen["in"][1:3], seen["head"][1:3]
        r1, r2 = y1 - x1, y2 - x2
        s1, s2 = recs[1]["sigma"], recs[2]["sigma"]
        for i in range(3, 6):
            w = min((recs[i]["sigma"] - s2) / (s2 - s1), st.MAX_EXTRAPOLATION)
            assert 0 < w <= st.MAX_EXTRAPOLATION
            torch.testing.assert_close(seen["head"][i], seen["in"][i] + r2 + (r2 - r1) * w,
                                       rtol=1e-5, atol=1e-5)
            assert not torch.allclose(seen["head"][i], seen["in"][i] + r2, atol=1e-4)
    assert not torch.equal(results["reuse"], results["extrapolate"])



def test_calibration_measures_the_timestep_embedding_and_applies(t2v, i2v15, tmp_path):
    """TeaCacheCalibrate's default indicator on CogVideoX is the one the presets use; the
    saved calibration applies to the same architecture and is refused by another variant."""
    import folder_paths
    from comfyui_teacache.nodes.apply import TeaCacheApply
    from comfyui_teacache.nodes.calibrate import TeaCacheCalibrate
    from comfyui_teacache.nodes.common import calibration_folder
    from comfyui_teacache.teacache_core import calibration as calib
    old = folder_paths.get_user_directory()
    folder_paths.set_user_directory(str(tmp_path / "user"))
    try:
        cal_model = TeaCacheCalibrate.execute(t2v, "cog", 0, "auto").result[0]
        pos, neg = tc.conds()
        h.sample(cal_model, torch.zeros(tc.LATENT_1_0), pos, neg, steps=STEPS)
        cal = calib.load(calibration_folder(), "cog")
        assert cal.family == "cogvideox" and cal.indicator == "timestep_embedding"
        assert cal.dims == {"hidden": 128, "blocks": 3, "in_channels": 16, "version": "1.0",
                            "ofs": False}
        assert cal.sample_count == (STEPS - 1) * 2 and cal.coefficients is not None
        patched = TeaCacheApply.execute(t2v, 0.1, 0, -1, "calib:cog", "model_device", False,
                                        0).result[0]
        h.sample(patched, torch.zeros(tc.LATENT_1_0), pos, neg, steps=STEPS)
        s = h.summary(patched)
        assert s["preset"] == "calib:cog" and s["indicator"] == "timestep_embedding"
        with pytest.raises(ValueError, match="calib:cog.*fitted on .*CogVideoX1.5 I2V"):
            TeaCacheApply.execute(i2v15, 0.1, 0, -1, "calib:cog", "model_device", False, 0)
    finally:
        folder_paths.set_user_directory(old)
