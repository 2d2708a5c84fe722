"""TeaCacheApply on tiny real LTX-Video models (comfy/ldm/lightricks): ComfyUI's loader (its
detection runs), KSampler and ModelPatcher. LTX-2 audio-video (LTXAVModel) exists only in the
newest ComfyUI; its tests are skipped on 0.3.75."""
from __future__ import annotations

import pytest
import torch

import comfy.patcher_extension as pe
import tiny_models as tm
from harness import (apply, computed_steps, decisions, force_separate_cond_calls, sample,
                     state_released, summary)
from tiny.ltxv import BLOCKS, av_latent, build_ltxv, conds

from comfyui_teacache.teacache_core.adapters import find_adapter
from comfyui_teacache.teacache_core.patching import KEY

STEPS = 6
# a threshold that skips some steps of the tiny seeded model but not all (checked in the test)
MODERATE = 0.12
AV_STEPS = 4
AV_MODERATE = 0.12


def blocks_of(model):
    return list(model.get_model_object("diffusion_model").transformer_blocks)


def run(model, steps=STEPS, latent=None, extra_latent=None, width=4096):
    pos, neg = conds(width)
    latent = latent if latent is not None else torch.zeros(1, 128, 2, 4, 4)
    return sample(model, latent, pos, neg, steps=steps, cfg=3.0, blocks=blocks_of(model),
                  extra_latent=extra_latent)


@pytest.fixture(scope="module")
def ltxv(model_dir):
    return tm.load(build_ltxv(model_dir / "ltxv_tiny.safetensors", seed=1))


@pytest.fixture(scope="module")
def baseline(ltxv):
    """The model without TeaCache: (output, block executions)."""
    return run(ltxv)


# ---- LTXV: threshold 0 bit-identical, huge threshold, two runs, input untouched and
# detection run in tests/test_families.py (entries "ltxv", "ltxav") ---------------------------
def test_cfg_branches_decide_alike_batched_or_apart(ltxv, monkeypatch):
    patched = apply(ltxv, MODERATE)
    batched, n_batched = run(patched)
    dec_b = decisions(patched)
    flags = [c for _, c in dec_b["cond"]] + [c for _, c in dec_b["uncond"]]
    assert not all(flags) and sum(flags) > 4, f"threshold not moderate for this model: {dec_b}"
    force_separate_cond_calls(monkeypatch, patched)
    separate, n_sep = run(patched)
    assert summary(patched)["calls"] == 2 * STEPS       # really ran cond and uncond apart
    assert decisions(patched) == dec_b
    assert n_sep == 2 * n_batched
    assert torch.allclose(batched, separate, atol=1e-4)


def test_no_state_left_after_a_run(ltxv, baseline):
    base, _ = baseline
    before = repr(ltxv.model_options)
    patched = apply(ltxv, MODERATE)
    run(patched)
    assert state_released(patched)
    after, _ = run(ltxv)
    assert torch.equal(after, base)
    assert repr(ltxv.model_options) == before
    assert not ltxv.get_wrappers(pe.WrappersMP.OUTER_SAMPLE, KEY)
    assert not ltxv.get_wrappers(pe.WrappersMP.APPLY_MODEL, KEY)
    assert "patches_replace" not in ltxv.model_options.get("transformer_options", {})
    dm = ltxv.get_model_object("diffusion_model")
    assert not [k for k in vars(dm) if "teacache" in k.lower()]


def test_detection_auto_and_wrong_family_preset(ltxv):
    patched = apply(ltxv, 0.1)
    run(patched, steps=2)
    s = summary(patched)
    assert s["preset"] == "uncalibrated"
    assert s["model"] == "LTX-Video hidden 128 (LTXVModel, hidden 128, 3 blocks)"
    with pytest.raises(ValueError) as e:
        apply(ltxv, 0.1, model_type="wan2.1_t2v_1.3B")
    assert "wan family" in str(e.value) and "LTX-Video hidden 128" in str(e.value)
    with pytest.raises(ValueError) as e:
        apply(ltxv, 0.1, model_type="ltxv")            # fitted on the 2B (hidden 2048)
    assert "hidden=2048" in str(e.value) and "hidden=128" in str(e.value)


# ---- LTXV specifics ------------------------------------------------------------------------
def test_skipped_step_is_block_input_plus_the_cached_residual(ltxv):
    """LTXV blocks modify x in place. Measured on the model's own modules (patchify_proj's
    output = the first block's input, norm_out's input = the last block's output): every
    skipped step must give exactly its input + (output - input) of the computed first step, so
    nothing kept (the saved input, the residual, the returned output) was changed in place."""
    dm = ltxv.get_model_object("diffusion_model")
    ins, outs = [], []
    hs = [dm.patchify_proj.register_forward_hook(lambda m, a, o: ins.append(o.detach().clone())),
          dm.norm_out.register_forward_pre_hook(lambda m, a: outs.append(a[0].detach().clone()))]
    try:
        run(apply(ltxv, 1e6))
    finally:
        for h in hs:
            h.remove()
    assert len(ins) == len(outs) == STEPS
    residual = outs[0] - ins[0]
    assert residual.abs().max() > 0
    for i in range(1, STEPS - 1):
        assert torch.equal(outs[i], ins[i] + residual), f"step {i}"
    assert not torch.equal(outs[-1], ins[-1] + residual)      # the last step really computed


def test_per_token_timesteps_from_a_noise_mask(ltxv):
    """Image-to-video style: a noise mask gives per-token timesteps [B, N, 6*hidden]."""
    mask = torch.ones(1, 1, 2, 4, 4)
    mask[:, :, :1] = 0.0
    latent = torch.randn(1, 128, 2, 4, 4, generator=torch.Generator().manual_seed(2))
    extra = {"noise_mask": mask}
    base, _ = run(ltxv, latent=latent, extra_latent=extra)
    same, _ = run(apply(ltxv, 0.0), latent=latent, extra_latent=extra)
    assert torch.equal(base, same)
    patched = apply(ltxv, 1e6)
    out, n = run(patched, latent=latent, extra_latent=extra)
    assert n == 2 * BLOCKS and torch.isfinite(out).all()
    assert computed_steps(patched) == [0, STEPS - 1]


def _meta(cls_path, **kw):
    import importlib
    import comfy.ops
    mod_name, cls_name = cls_path.rsplit(".", 1)
    cls = getattr(importlib.import_module(mod_name), cls_name)
    return cls(operations=comfy.ops.disable_weight_init, dtype=torch.bfloat16, device="meta", **kw)


def test_full_size_detection_on_meta_models():
    """Released sizes, built on the meta device (no weights): what auto picks."""
    two_b = _meta("comfy.ldm.lightricks.model.LTXVModel")          # ComfyUI's 2B defaults
    ad = find_adapter(two_b)
    info = ad.describe(two_b)
    assert info.description == "LTX-Video 2B (0.9.x) (LTXVModel, hidden 2048, 28 blocks)"
    assert ad.select_preset(info, "auto", False).name == "ltxv"
    assert ad.select_preset(info, "ltxv", False).name == "ltxv"
    thirteen = _meta("comfy.ldm.lightricks.model.LTXVModel", attention_head_dim=128,
                     cross_attention_dim=4096, num_layers=48)
    info13 = ad.describe(thirteen)
    assert info13.description == "LTX-Video 13B (0.9.7+) (LTXVModel, hidden 4096, 48 blocks)"
    assert ad.select_preset(info13, "auto", False).name == "uncalibrated"
    with pytest.raises(ValueError, match="hidden=2048"):
        ad.select_preset(info13, "ltxv", False)


def test_ltx2_video_with_cross_attention_adaln(model_dir):
    """Newest ComfyUI: LTXVModel with LTX-2's cross-attention AdaLN (9 modulation rows per
    block and a prompt timestep)."""
    import inspect
    import comfy.ldm.lightricks.model as ltx
    if "cross_attention_adaln" not in inspect.signature(ltx.LTXVModel.__init__).parameters:
        pytest.skip("this ComfyUI's LTXVModel has no cross-attention AdaLN (LTX-2)")
    m = tm.load(build_ltxv(model_dir / "ltx2_video_tiny.safetensors", seed=5,
                           config={"cross_attention_adaln": True}))
    dm = m.get_model_object("diffusion_model")
    assert dm.transformer_blocks[0].scale_shift_table.shape[0] == 9
    base, nb = run(m, steps=AV_STEPS)
    same, n0 = run(apply(m, 0.0), steps=AV_STEPS)
    assert torch.equal(base, same) and n0 == nb == AV_STEPS * BLOCKS
    patched = apply(m, 1e6)
    out, n = run(patched, steps=AV_STEPS)
    assert n == 2 * BLOCKS and torch.isfinite(out).all()
    assert computed_steps(patched) == [0, AV_STEPS - 1]
    assert summary(patched)["model"] == "LTX-2 video (LTXVModel, hidden 128, 3 blocks)"


# ---- LTX-2 audio-video (newest ComfyUI only) ---------------------------------------------
@pytest.fixture(scope="module")
def ltxav(model_dir):
    pytest.importorskip("comfy.ldm.lightricks.av_model")
    return tm.load(build_ltxv(model_dir / "ltxav_tiny.safetensors", seed=3, av=True))


def _parts(t):
    return t.unbind() if getattr(t, "is_nested", False) else [t]


def test_ltxav_huge_threshold_and_residual_over_video_and_audio(ltxav):
    """Skips all but the first and last step; a skipped step gives, on the video AND the
    audio stream, exactly its block input + that stream's residual of the computed step
    (measured on the model's own modules: *patchify_proj outputs, *norm_out inputs)."""
    dm = ltxav.get_model_object("diffusion_model")
    rec = {"v_in": [], "a_in": [], "v_out": [], "a_out": []}

    def grab(name):
        return lambda m, a, o=None: rec[name].append((a[0] if o is None else o).detach().clone())

    hs = [dm.patchify_proj.register_forward_hook(grab("v_in")),
          dm.audio_patchify_proj.register_forward_hook(grab("a_in")),
          dm.norm_out.register_forward_pre_hook(grab("v_out")),
          dm.audio_norm_out.register_forward_pre_hook(grab("a_out"))]
    patched = apply(ltxav, 1e6)
    try:
        out, n = run(patched, steps=AV_STEPS, latent=av_latent(), width=64)
    finally:
        for h in hs:
            h.remove()
    assert n == 2 * BLOCKS
    assert computed_steps(patched) == [0, AV_STEPS - 1]
    assert computed_steps(patched, "uncond") == [0, AV_STEPS - 1]
    assert all(torch.isfinite(p).all() for p in _parts(out))
    for stream in ("v", "a"):
        ins, outs = rec[f"{stream}_in"], rec[f"{stream}_out"]
        assert len(ins) == len(outs) == AV_STEPS
        residual = outs[0] - ins[0]
        assert residual.abs().max() > 0
        for i in range(1, AV_STEPS - 1):
            assert torch.equal(outs[i], ins[i] + residual), f"{stream} step {i}"


def test_ltxav_cfg_branches_decide_alike(ltxav, monkeypatch):
    patched = apply(ltxav, AV_MODERATE)
    run(patched, steps=AV_STEPS, latent=av_latent(), width=64)
    dec_b = decisions(patched)
    flags = [c for _, c in dec_b["cond"]] + [c for _, c in dec_b["uncond"]]
    assert not all(flags) and sum(flags) > 4, f"threshold not moderate for this model: {dec_b}"
    force_separate_cond_calls(monkeypatch, patched)
    run(patched, steps=AV_STEPS, latent=av_latent(), width=64)
    assert summary(patched)["calls"] == 2 * AV_STEPS
    assert decisions(patched) == dec_b


def test_ltxav_detection(ltxav):
    dm = ltxav.get_model_object("diffusion_model")
    info = find_adapter(dm).describe(dm)
    assert info.kind == "ltxav"
    assert info.description == ("LTX-2 audio-video (LTXAVModel, hidden 128, audio hidden 64, "
                                "3 blocks)")
    patched = apply(ltxav, 0.1)
    run(patched, steps=2, latent=av_latent(), width=64)
    assert summary(patched)["preset"] == "uncalibrated"
    with pytest.raises(ValueError, match="LTX-2 audio-video"):
        apply(ltxav, 0.1, model_type="ltxv")
    with pytest.raises(ValueError, match="mochi family"):
        apply(ltxav, 0.1, model_type="mochi")
    full = _meta("comfy.ldm.lightricks.av_model.LTXAVModel")
    finfo = find_adapter(full).describe(full)
    assert finfo.description == ("LTX-2 audio-video (LTXAVModel, hidden 4096, audio hidden "
                                 "2048, 48 blocks)")
    assert find_adapter(full).select_preset(finfo, "auto", False).name == "uncalibrated"
