"""Kandinsky 5 and MiniMax H3 (newest ComfyUI only) beyond the shared harness
(tests/test_families.py): how Kandinsky 5 is described, that both indicators are exactly what
block 0 feeds its attention, that Kandinsky's forward-hooked gates compose with another node's
block bypass, and that MiniMax's separate cond/uncond calls decide per cond."""
from __future__ import annotations

import pytest
import torch

from families import BY_ID, first_tensor
from harness import apply, sample, summary

from comfyui_teacache.teacache_core.adapters import find_adapter
from comfyui_teacache.teacache_core.coefficients import UNCALIBRATED
from comfyui_teacache.teacache_core.patching import registration_of


def _needs(family_id):
    why = BY_ID[family_id].missing()
    return pytest.mark.skipif(why is not None, reason=why or "")


kandinsky = _needs("kandinsky5_video")
minimax = _needs("minimax_h3")


def _spy(monkeypatch, adapter):
    """Record every indicator the engine measures."""
    seen = []
    orig = adapter.indicator

    def spy(name, ctx, args):
        out = orig(name, ctx, args)
        seen.append(out.clone())
        return out
    monkeypatch.setattr(adapter, "indicator", spy)
    return seen


def _first_inputs(module):
    """Pre-hook keeping a copy of the first positional input of every call of `module`."""
    seen = []
    return seen, module.register_forward_pre_hook(lambda _m, a: seen.append(a[0].clone()))


# ---- Kandinsky 5 ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def k5_video(model_dir):
    if BY_ID["kandinsky5_video"].missing():
        pytest.skip(BY_ID["kandinsky5_video"].missing())
    import tiny.kandinsky5 as tk
    return tk.build_video(model_dir)


def _k5(device="meta", **kw):
    import comfy.ldm.kandinsky5.model as k5
    import comfy.ops
    return k5.Kandinsky5(operations=comfy.ops.disable_weight_init, device=device, **kw)


@kandinsky
def test_kandinsky5_image_and_video_are_described_apart(model_dir):
    # the released configurations (on the meta device: sizes only, 2 blocks for speed)
    cases = [(dict(model_dim=1792, visual_embed_dim=132), "video", "Video Lite (2B)"),
             (dict(model_dim=4096, visual_embed_dim=132), "video", "Video Pro (19B)"),
             (dict(model_dim=2560, visual_embed_dim=64), "image", "Image Lite (6B)")]
    for kw, kind, name in cases:
        dm = _k5(num_visual_blocks=2, num_text_blocks=1, **kw)
        ad = find_adapter(dm)
        info = ad.describe(dm)
        assert (ad.family, info.kind) == ("kandinsky5", kind), kw
        assert f"Kandinsky 5 {name}" in info.description and "2 visual blocks" in \
            info.description, info.description
        assert ad.select_preset(info, "auto", False) is UNCALIBRATED
    # the tiny models the harness loads: detection's class and the adapter's kind agree
    import tiny.kandinsky5 as tk
    for build, cls, kind in [(tk.build_video, "Kandinsky5", "video"),
                             (tk.build_image, "Kandinsky5Image", "image")]:
        m = build(model_dir)
        info = find_adapter(m.get_model_object("diffusion_model")).describe(
            m.get_model_object("diffusion_model"))
        assert (type(m.model).__name__, info.kind) == (cls, kind)


@kandinsky
def test_kandinsky5_indicator_is_block0_attention_input(k5_video, monkeypatch):
    import tiny.kandinsky5 as tk
    dm = k5_video.get_model_object("diffusion_model")
    seen = _spy(monkeypatch, find_adapter(dm))
    attn_in, h = _first_inputs(dm.visual_transformer_blocks[0].self_attention)
    lat, pos, neg = tk.inputs_video()
    try:
        sample(apply(k5_video, 0.0), lat["samples"], pos, neg, steps=3,
               blocks=tk.counted(dm))
    finally:
        h.remove()
    assert len(seen) == len(attn_in) >= 3          # a call a step (cond and uncond batched or not)
    for ind, ref in zip(seen, attn_in):
        assert ind.shape == ref.shape and torch.allclose(ind, ref, rtol=1e-5, atol=1e-6)


@kandinsky
@pytest.mark.parametrize("bypassed", [1, 2])
def test_kandinsky5_gates_compose_with_a_block_bypass(k5_video, bypassed):
    """Another node's replace patch that bypasses a visual block (as Skip Layer Guidance does)
    stops that block's forward, and with it TeaCache's gate there: output as without TeaCache."""
    import tiny.kandinsky5 as tk
    m = k5_video.clone()
    m.set_model_patch_replace(lambda args, extra: {"x": args["x"]}, "dit", "double_block",
                              bypassed)
    dm = m.get_model_object("diffusion_model")
    lat, pos, neg = tk.inputs_video()
    base, n_base = sample(m, lat["samples"], pos, neg, blocks=tk.counted(dm))
    out, n = sample(apply(m, 0.0), lat["samples"], pos, neg, blocks=tk.counted(dm))
    assert torch.equal(out, base) and n == n_base and n_base % (6 * 2) == 0
    out, n = sample(apply(m, 1e6), lat["samples"], pos, neg, blocks=tk.counted(dm))
    assert torch.isfinite(out).all()
    # a bypassed last block never stores a residual: nothing can be skipped, nothing breaks
    assert n == (n_base // 6 * 2 if bypassed == 1 else n_base)


# ---- MiniMax H3 --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mm(model_dir):
    if BY_ID["minimax_h3"].missing():
        pytest.skip(BY_ID["minimax_h3"].missing())
    import tiny.minimax as tmm
    return tmm.build(model_dir)


def _mm_sample(model, steps=6):
    import tiny.minimax as tmm
    lat, pos, neg = tmm.inputs()
    out, n = sample(model, lat["samples"], pos, neg, steps=steps)
    return first_tensor(out), n


@minimax
def test_minimax_indicator_is_block0_attention_input_on_the_target_rows(mm, monkeypatch):
    dm = mm.get_model_object("diffusion_model")
    seen = _spy(monkeypatch, find_adapter(dm))
    attn_in, h = _first_inputs(dm.blocks[0].attn)
    try:
        _mm_sample(apply(mm, 0.0), steps=2)
    finally:
        h.remove()
    # separate calls, cond (8 text rows) then uncond (6); the targets are 16 audio + 8 video rows
    assert [t.shape[0] for t in attn_in] == [32, 30, 32, 30]
    for ind, ref in zip(seen, attn_in):
        assert ind.shape == (1, 24, ref.shape[1])
        assert torch.allclose(ind[0], ref[-24:], rtol=1e-5, atol=1e-6)


@minimax
def test_minimax_separate_cond_and_uncond_calls_decide_per_cond(mm):
    """ComfyUI runs cond and uncond as separate calls (packed sequences of 32 and 30 rows):
    each is its own branch, one decision per step, skipped with its own residual. Both calls
    get the same latent and the indicator covers the target rows only (block 0's input there
    depends on the latent and sigma alone, not on the text), so they measure the same change
    and decide alike; a sequence including the text rows would measure different changes."""
    patched = apply(mm, 0.1)
    skips = []

    def customize(run):
        add_to = run.estimator.add_to

        def spy(run_, b, x, sigma, out=None):
            skips.append((b.label, x.shape[1], b.residual.shape[1]))
            return add_to(run_, b, x, sigma, out=out)
        run.estimator.add_to = spy
    registration_of(patched).customize_run = customize
    out, n = _mm_sample(patched)
    assert all(torch.isfinite(t).all() for t in out)
    branches = summary(patched)["branches"]
    assert set(branches) == {"cond", "uncond"}
    assert all([r["step"] for r in recs] == list(range(6)) for recs in branches.values())
    dist = {label: [r["distance"] for r in recs] for label, recs in branches.items()}
    assert dist["cond"][0] is None and all(d > 0 for d in dist["cond"][1:])
    assert dist["uncond"][1:] == pytest.approx(dist["cond"][1:], rel=1e-5)
    computed = {label: [r["computed"] for r in recs] for label, recs in branches.items()}
    assert computed["cond"] == computed["uncond"] and 2 < sum(computed["cond"]) < 6
    assert n == 3 * 2 * sum(computed["cond"])
    assert sorted(set(skips)) == [("cond", 32, 32), ("uncond", 30, 30)]
