"""The forward-hooked image DiTs (PixArt, OmniGen2, Boogu, Krea 2, ERNIE-Image, Ideogram 4,
PixelDiT): what tests/test_families.py does not check.

- The indicator each adapter computes at the first gated block is exactly the timestep-modulated
  input that block hands its attention (captured inside the real model while ComfyUI's KSampler
  runs), call after call, cond and uncond batched.
- The same with reference images (OmniGen2's reference tokens in the joint sequence; Krea 2's
  "index_timestep_zero" mode, where the block modulates the reference tokens with the
  timestep-zero rows), and a huge threshold still skips every middle step there.
"""
from __future__ import annotations

import pytest
import torch

import nodes

from families import BY_ID
from harness import apply, summary

from comfyui_teacache.teacache_core.adapters import find_adapter

STEPS = 4


def _attention_of_first_gated_block(fam_id, dm):
    return {
        "pixart_sigma": lambda: dm.blocks[0].attn,
        "omnigen2": lambda: dm.layers[0].attn,
        "boogu": lambda: dm.single_stream_layers[0].attn,
        "krea2": lambda: dm.blocks[0].attn,
        "ernie_image": lambda: dm.layers[0].self_attention,
        "ideogram4": lambda: dm.layers[0].attention,
        "pixeldit_t2i": lambda: dm.patch_blocks[0].attn,
    }[fam_id]()


def _reference_inputs(fam_id, lat, pos, neg):
    """The family's inputs with one reference image in both conds."""
    ref = torch.randn(lat["samples"].shape, generator=torch.Generator().manual_seed(5)) * 0.5
    extra = {"reference_latents": [ref]}
    if fam_id == "krea2":
        extra["reference_latents_method"] = "index_timestep_zero"
    return lat, [[c, {**o, **extra}] for c, o in pos], [[c, {**o, **extra}] for c, o in neg]


def _sample(model, lat, pos, neg):
    out = nodes.common_ksampler(model, 7, STEPS, 4.0, "euler", "simple", pos, neg, lat)
    return out[0]["samples"]


CASES = [(i, False) for i in ("pixart_sigma", "omnigen2", "boogu", "krea2", "ernie_image",
                              "ideogram4", "pixeldit_t2i")] + [("omnigen2", True), ("krea2", True)]


@pytest.mark.parametrize("fam_id,with_ref", CASES,
                         ids=[f"{i}{'-ref' if r else ''}" for i, r in CASES])
def test_indicator_is_the_first_blocks_modulated_input(fam_id, with_ref, model_dir, monkeypatch):
    fam = BY_ID[fam_id]
    why = fam.missing()
    if why:
        pytest.skip(why)
    model = fam.build(model_dir)
    dm = model.get_model_object("diffusion_model")
    adapter = find_adapter(dm)
    lat, pos, neg = fam.inputs()
    if with_ref:
        lat, pos, neg = _reference_inputs(fam_id, lat, pos, neg)

    indicators, attn_inputs, tzi = [], [], []
    original = adapter.indicator

    def recording(name, ctx, args):
        out = original(name, ctx, args)
        indicators.append(out.detach().clone())
        tzi.append(args.get("timestep_zero_index"))
        return out

    monkeypatch.setattr(adapter, "indicator", recording)
    hook = _attention_of_first_gated_block(fam_id, dm).register_forward_pre_hook(
        lambda _m, a: attn_inputs.append(a[0].detach().clone()))
    try:
        out = _sample(apply(model, 0.0), lat, pos, neg)
    finally:
        hook.remove()
    assert torch.isfinite(out).all()
    assert len(indicators) == len(attn_inputs) == STEPS        # cond+uncond batched per step
    for ind, seen in zip(indicators, attn_inputs):
        assert ind.shape == seen.shape
        torch.testing.assert_close(ind, seen, rtol=1e-5, atol=1e-6)
    # the indicator changes with the timestep
    assert not torch.allclose(indicators[0], indicators[-1])

    if with_ref:
        # the reference tokens are in the gated sequence: 6 text + 16 image + 16 reference
        assert indicators[0].shape[1] == 6 + 16 + 16
        if fam_id == "krea2":             # and Krea 2 ran its timestep-zero path
            assert tzi[0] == 6 + 16
        # a huge threshold skips every middle step with references too
        monkeypatch.setattr(adapter, "indicator", original)
        patched = apply(model, 1e6)
        assert torch.isfinite(_sample(patched, lat, pos, neg)).all()
        for label, recs in summary(patched)["branches"].items():
            assert [r["computed"] for r in recs] == [True] + [False] * (STEPS - 2) + [True], label
