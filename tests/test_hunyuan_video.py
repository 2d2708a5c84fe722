"""TeaCache on tiny real HunyuanVideo-family models (ComfyUI's HunyuanVideo class: 1.0 T2V, I2V
concat / token-replace / reference latent, SkyReels I2V, 1.5 (+ meanflow-distilled, SR),
HunyuanImage 2.1 (+ refiner)), loaded through ComfyUI's detection and sampled with KSampler."""
from __future__ import annotations

import pytest
import torch

import comfy.patcher_extension as pe
import harness as h
import tiny.hunyuan_video as th
import tiny_models as tm

from comfyui_teacache.teacache_core.adapters import find_adapter
from comfyui_teacache.teacache_core.patching import KEY

STEPS = 6
THRESH = 0.1        # on the tiny T2V: skips steps 1 and 3, computes 0, 2, 4, 5


def blocks_of(model):
    dm = model.get_model_object("diffusion_model")
    return list(dm.double_blocks) + list(dm.single_blocks)


def run(model, variant="t2v", steps=STEPS, cfg=4.0, conds=None, latent=None, seed=3):
    pos, neg = conds or th.conds(variant)
    lat = latent if latent is not None else th.latent(variant)
    return h.sample(model, lat, pos, neg, steps=steps, cfg=cfg, seed=seed,
                    blocks=blocks_of(model))


@pytest.fixture(scope="module")
def t2v(model_dir):
    return tm.load(th.build_hunyuan(model_dir / "hv_t2v.safetensors", "t2v", depth=2, single=2,
                                    seed=1))


@pytest.fixture(scope="module")
def t2v_base(t2v):
    return run(t2v)


# ---- HunyuanVideo 1.0 T2V (threshold 0 bit-identical, huge threshold, two runs, input untouched
# and detection also run in tests/test_families.py: entries "hunyuan_video_t2v", "hunyuan_video15")
def test_cfg_branches_decide_the_same_batched_or_apart(t2v, monkeypatch):
    patched = h.apply(t2v, THRESH)
    batched, n_batched = run(patched)
    dec_b = h.decisions(patched)
    assert h.summary(patched)["calls"] == STEPS
    computed = h.computed_steps(patched)
    assert 2 < len(computed) < STEPS              # moderate: skips some steps, not all
    h.force_separate_cond_calls(monkeypatch, patched)
    separate, n_sep = run(patched)
    assert h.summary(patched)["calls"] == 2 * STEPS   # really ran cond and uncond apart
    assert h.decisions(patched) == dec_b
    assert n_sep == 2 * n_batched
    assert torch.allclose(batched, separate, atol=1e-4)


def test_no_state_left_after_a_run(t2v, t2v_base):
    base, _ = t2v_base
    before = repr(t2v.model_options)
    patched = h.apply(t2v, THRESH)
    a, na = run(patched)
    b, nb = run(patched)
    assert torch.equal(a, b) and na == nb         # nothing carried from one run to the next
    assert h.state_released(patched)
    after, _ = run(t2v)
    assert torch.equal(after, base)               # the input model is unaffected
    assert repr(t2v.model_options) == before
    assert not t2v.get_wrappers(pe.WrappersMP.OUTER_SAMPLE, KEY)
    assert not t2v.model_options.get("transformer_options", {}).get("patches_replace")
    dm = t2v.get_model_object("diffusion_model")
    assert not [k for k in vars(dm) if "teacache" in k.lower()]


def test_auto_detection_and_wrong_presets(t2v, caplog):
    patched = h.apply(t2v, THRESH)
    run(patched, steps=3)
    s = h.summary(patched)
    assert s["preset"] == "uncalibrated" and not s["calibrated"]   # hidden 128, not 3072
    line = h.summary_line(caplog)
    assert "HunyuanVideo 1.0 T2V (HunyuanVideo, hidden 128, 2 double + 2 single" in line
    with pytest.raises(ValueError) as e:
        h.apply(t2v, 0.1, model_type="wan2.1_t2v_1.3B")
    assert "wan family" in str(e.value) and "HunyuanVideo 1.0 T2V" in str(e.value)
    with pytest.raises(ValueError) as e:
        h.apply(t2v, 0.1, model_type="hunyuan_video")
    assert "hidden=3072" in str(e.value) and "hidden 128" in str(e.value)


# ---- the residual is taken over the image tokens of the joint sequence ------------------------
def test_skipped_step_adds_the_image_token_residual(t2v):
    """Step 0 computes, step 1 skips: the final layer must then see img_in(x1) + (blocks' image
    output - img_in(x0)) of step 0. Fails if the image tokens were cut from the wrong end of
    the txt+img sequence (its order differs between ComfyUI versions)."""
    dm = t2v.get_model_object("diffusion_model")
    seen_in, seen_final = [], []
    hs = [dm.img_in.register_forward_hook(lambda m, a, o: seen_in.append(o.detach().clone())),
          dm.final_layer.register_forward_pre_hook(
              lambda m, a: seen_final.append(a[0].detach().clone()))]
    patched = h.apply(t2v, 1e6)
    try:
        run(patched, steps=3)
    finally:
        for hd in hs:
            hd.remove()
    assert h.computed_steps(patched) == [0, 2]
    residual = seen_final[0] - seen_in[0]
    assert seen_final[1].shape == seen_in[1].shape
    assert torch.allclose(seen_final[1], seen_in[1] + residual, atol=1e-5)
    assert not torch.allclose(seen_final[1], seen_in[1], atol=1e-3)


# ---- full-size configurations, described without weights (meta device) -----------------------
@pytest.mark.parametrize("variant, hidden, depth, single, kind, auto, manual_ok", [
    ("t2v", 3072, 20, 40, "t2v", "hunyuan_video", True),
    ("i2v", 3072, 20, 40, "i2v", "uncalibrated", True),
    ("skyreels_i2v", 3072, 20, 40, "skyreels_i2v", "uncalibrated", True),
    ("v15", 2048, 54, 0, "v15", "uncalibrated", False),
    ("image21", 3584, 20, 40, "image21", "uncalibrated", False),
])
def test_full_size_presets(variant, hidden, depth, single, kind, auto, manual_ok):
    dm = th.build_hunyuan(None, variant, hidden=hidden, depth=depth, single=single,
                          device="meta", save=False)
    ad = find_adapter(dm)
    info = ad.describe(dm)
    assert info.family == "hunyuan_video" and info.kind == kind
    assert info.dims["hidden"] == hidden and f"{depth} double + {single} single" in info.description
    assert ad.select_preset(info, "auto", False).name == auto
    if manual_ok:
        assert ad.select_preset(info, "hunyuan_video", False).name == "hunyuan_video"
    else:
        with pytest.raises(ValueError, match="fitted on T2V models"):
            ad.select_preset(info, "hunyuan_video", False)


# ---- the other variants: exact when off, every skippable step skipped when on -----------------
VARIANTS = [
    # variant, ComfyUI model class, kind, description fragment, double, single
    ("i2v", "HunyuanVideoI2V", "i2v", "HunyuanVideo 1.0 I2V", 1, 1),
    ("skyreels_i2v", "HunyuanVideoSkyreelsI2V", "skyreels_i2v", "SkyReels", 1, 1),
    ("v15", "HunyuanVideo15", "v15", "HunyuanVideo 1.5 (", 2, 0),
    ("v15_distilled", "HunyuanVideo15", "v15", "HunyuanVideo 1.5 meanflow-distilled", 1, 0),
    ("v15_sr", "HunyuanVideo15_SR_Distilled", "v15_sr", "HunyuanVideo 1.5 SR", 1, 0),
    ("image21", "HunyuanImage21", "image21", "HunyuanImage 2.1 (", 1, 1),
    ("image21_refiner", "HunyuanImage21Refiner", "image21_refiner", "HunyuanImage 2.1 refiner",
     1, 1),
]


@pytest.mark.parametrize("variant, cls, kind, desc, double, single", VARIANTS)
def test_variant_exact_and_skipping(model_dir, caplog, variant, cls, kind, desc, double, single):
    m = tm.load(th.build_hunyuan(model_dir / f"hv_{variant}.safetensors", variant, depth=double,
                                 single=single, seed=5))
    assert type(m.model).__name__ == cls
    dm = m.get_model_object("diffusion_model")
    info = find_adapter(dm).describe(dm)
    assert info.kind == kind and desc in info.description
    steps, nb = 4, double + single
    base, n_base = run(m, variant, steps=steps)
    same, n0 = run(h.apply(m, 0.0), variant, steps=steps)
    assert torch.equal(base, same) and n0 == n_base == steps * nb
    patched = h.apply(m, 1e6)
    out, n = run(patched, variant, steps=steps)
    assert n == 2 * nb and torch.isfinite(out).all()
    assert h.computed_steps(patched) == [0, steps - 1]
    assert desc in h.summary_line(caplog) and "uncalibrated" in h.summary_line(caplog)


@pytest.fixture(scope="module")
def i2v(model_dir):
    return tm.load(th.build_hunyuan(model_dir / "hv_i2v_2.safetensors", "i2v", depth=1,
                                    single=2, seed=8))


def _exact_and_skipping_with_extra_positive(model, variant, extra, steps=4):
    """Extra keys on the positive only: cond and uncond then run as separate calls."""
    pos, neg = th.conds(variant)
    pos = [[pos[0][0], {**pos[0][1], **extra}]]
    nb = len(blocks_of(model))
    base, n_base = run(model, variant, steps=steps, conds=(pos, neg))
    same, _ = run(h.apply(model, 0.0), variant, steps=steps, conds=(pos, neg))
    assert torch.equal(base, same)
    assert n_base == 2 * steps * nb
    patched = h.apply(model, 1e6)
    out, n = run(patched, variant, steps=steps, conds=(pos, neg))
    assert n == 2 * 2 * nb and torch.isfinite(out).all()
    assert h.computed_steps(patched) == h.computed_steps(patched, "uncond") == [0, steps - 1]


def test_i2v_token_replace(i2v):
    """HunyuanImageToVideo "v2 (replace)": guiding_frame_index makes vec per-token ([B, 2, D])
    with modulation_dims; the indicator goes through the same apply_mod."""
    _exact_and_skipping_with_extra_positive(i2v, "i2v", {"guiding_frame_index": 0})


def test_reference_latent_tokens(t2v):
    """HunyuanImageToVideo "custom": reference latent tokens are prepended to the image tokens
    (the residual covers them; the model drops them before its final layer)."""
    g = torch.Generator().manual_seed(2)
    ref = torch.randn(1, 16, 1, 8, 8, generator=g)
    _exact_and_skipping_with_extra_positive(t2v, "t2v", {"ref_latent": ref})
