"""TeaCache on a tiny real Qwen-Image (comfy/ldm/qwen_image): ComfyUI's own class, built seeded,
saved, loaded through ComfyUI's loader (its detection), sampled with ComfyUI's KSampler.

Detection fixes everything but the block count and input channels (24 heads of 128, text width
3584), so the smallest loadable Qwen-Image is one 3072-wide block (~0.4B parameters): few steps
and a 2 x 2-token image keep it quick.
"""
from __future__ import annotations

import pytest
import torch

import comfy.patcher_extension as pe
import tiny_models as tm
from harness import (apply, computed_steps, decisions, force_separate_cond_calls, sample,
                     state_released, summary)
from tiny.qwen_image import LATENT_SHAPE, build_qwen, conds, counted, qwen_cls, supports

from comfyui_teacache.teacache_core.adapters import find_adapter
from comfyui_teacache.teacache_core.adapters import qwen_image as qwen_adapter
from comfyui_teacache.teacache_core.patching import KEY

STEPS = 3
CFG_STEPS = 5             # the CFG check needs steps left to decide: 1..3 here
LATENT = torch.zeros(LATENT_SHAPE)         # Wan 2.1 latent format: 2 x 2 image tokens


def blocks(model):
    return counted(model.get_model_object("diffusion_model"))


def run(model, steps=STEPS, cond=None, latent=LATENT):
    pos, neg = cond or conds()
    return sample(model, latent, pos, neg, steps=steps, cfg=4.0, blocks=blocks(model))


@pytest.fixture(scope="module")
def qwen(model_dir):
    return tm.load(build_qwen(model_dir / "qwen_image_tiny.safetensors", seed=1), keep_file=False)


@pytest.fixture(scope="module")
def qwen_base(qwen):
    return run(qwen)


# threshold 0 bit-identical, huge threshold, two runs, input untouched and detection also run
# in tests/test_families.py (entry "qwen_image")
def test_cfg_branches_isolated(qwen, monkeypatch):
    patched = apply(qwen, 0.4)           # the tiny model's distances: ~0.23-0.34 per step
    batched, n_b = run(patched, CFG_STEPS)
    dec_b = decisions(patched)
    for label in ("cond", "uncond"):
        skipped = [s for s, computed in dec_b[label] if not computed]
        assert 0 < len(skipped) < CFG_STEPS - 2, dec_b
    force_separate_cond_calls(monkeypatch, patched)
    separate, n_s = run(patched, CFG_STEPS)
    assert summary(patched)["calls"] == 2 * CFG_STEPS      # really ran cond and uncond apart
    assert decisions(patched) == dec_b
    assert n_s == 2 * n_b
    assert torch.allclose(batched, separate, atol=1e-4, rtol=1e-4)


def test_no_state_left(qwen, qwen_base):
    before = repr(qwen.model_options)
    patched = apply(qwen, 1e6)
    run(patched)
    assert state_released(patched)
    assert repr(qwen.model_options) == before
    for kind in (pe.WrappersMP.OUTER_SAMPLE, pe.WrappersMP.APPLY_MODEL,
                 pe.WrappersMP.DIFFUSION_MODEL):
        assert not qwen.get_wrappers(kind, KEY)
    assert "teacache" not in repr(qwen.model_options)
    after, n = run(qwen)
    assert torch.equal(after, qwen_base[0]) and n == qwen_base[1]
    dm = qwen.get_model_object("diffusion_model")
    assert not [k for k in vars(dm) if "teacache" in k.lower()]


def test_detection(qwen):
    assert type(qwen.model).__name__ == "QwenImage"
    patched = apply(qwen, 0.1)
    run(patched, steps=2)
    s = summary(patched)
    assert s["preset"] == "uncalibrated"
    assert s["model"] == "Qwen-Image (or Edit) (QwenImageTransformer2DModel, hidden 3072, 1 block)"
    with pytest.raises(ValueError) as e:
        apply(qwen, 0.1, model_type="flux")
    assert "flux family" in str(e.value) and "Qwen-Image (or Edit)" in str(e.value)


@pytest.mark.parametrize("kw, kind, name", [
    ({}, "image", "Qwen-Image (or Edit) 20B"),
    ({"default_ref_method": "index_timestep_zero"}, "edit_2511", "Qwen-Image Edit 2511 20B"),
    ({"use_additional_t_cond": True}, "layered", "Qwen-Image Layered 20B"),
])
def test_auto_on_full_size_architectures(kw, kind, name):
    if not all(supports(k) for k in kw):
        pytest.skip(f"this ComfyUI has no {', '.join(kw)}")
    import comfy.ops
    dm = qwen_cls()(operations=comfy.ops.disable_weight_init, device="meta", **kw)
    ad = find_adapter(dm)
    info = ad.describe(dm)
    assert info.family == "qwen_image" and info.kind == kind
    assert info.description.startswith(name) and "60 blocks" in info.description
    assert ad.select_preset(info, "auto", False).name == "uncalibrated"


def test_edit_with_reference_latents(qwen, monkeypatch):
    """Qwen-Image Edit: the reference image's tokens travel in the image stream. Where this
    ComfyUI has it (0.33), Edit 2511's method gives them timestep 0 (temb of twice the batch)."""
    ref = torch.randn(1, 16, 1, 4, 4, generator=torch.Generator().manual_seed(5))
    extra = {"reference_latents": [ref]}
    if supports("default_ref_method"):
        extra["reference_latents_method"] = "index_timestep_zero"
    pos, neg = conds()
    cond = [[pos[0][0], dict(extra)]], [[neg[0][0], dict(extra)]]
    seen = []                                        # (image tokens, temb batch / image batch)
    ad = qwen_adapter.ADAPTER
    orig = ad.indicator

    def spy(name, ctx, args):
        seen.append((args["img"].shape[1], args["vec"].shape[0] // args["img"].shape[0]))
        return orig(name, ctx, args)

    monkeypatch.setattr(ad, "indicator", spy)
    base, nb = run(qwen, 3, cond)
    same, n0 = run(apply(qwen, 0.0), 3, cond)
    assert torch.equal(base, same) and n0 == nb == 3
    patched = apply(qwen, 1e6)
    out, n = run(patched, 3, cond)
    assert n == 2 and computed_steps(patched) == [0, 2] and torch.isfinite(out).all()
    assert {s[0] for s in seen} == {2 * 4}           # 4 noisy + 4 reference tokens
    assert {s[1] for s in seen} == ({2} if "reference_latents_method" in extra else {1})
