"""skip_estimate="extrapolate": a skipped call adds the line through the last two computed
residuals (in sigma) instead of the last residual. Same rule, closer result."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import comfy.sd
import harness as h
import tiny_models as tm

from comfyui_teacache.teacache_core import state as st
from comfyui_teacache.teacache_core.config import TeaCacheConfig, TeaCacheConfigError

PROXY = Path(__file__).resolve().parents[1] / "models" / "wan_proxy.safetensors"


# ---- the estimate itself (toy tensors) -------------------------------------------------------
def _branch(r0, s0, r1, s1, keep=True):
    b = st.BranchState(label="cond")
    b.store_residual(torch.tensor(r0), s0, keep_previous=keep)
    b.store_residual(torch.tensor(r1), s1, keep_previous=keep)
    return b


def test_estimate_follows_the_line_through_the_last_two_residuals():
    b = _branch([1.0, 2.0], 0.9, [2.0, 2.5], 0.8)
    assert 0.2 < st.MAX_EXTRAPOLATION
    assert torch.allclose(b.estimate(0.78, True), torch.tensor([2.2, 2.6]))   # 0.2 intervals on
    assert torch.equal(b.estimate(0.7, False), torch.tensor([2.0, 2.5]))      # reuse
    # capped at MAX_EXTRAPOLATION intervals ahead
    far = b.estimate(0.8 - 0.1 * (st.MAX_EXTRAPOLATION + 5), True)
    assert torch.allclose(far, torch.tensor([2.0, 2.5]) + torch.tensor([1.0, 0.5]) * st.MAX_EXTRAPOLATION)


def test_estimate_falls_back_to_the_last_residual():
    assert torch.equal(_branch([1.0], 0.9, [2.0], 0.8, keep=False).estimate(0.7, True),
                       torch.tensor([2.0]))                       # reuse mode keeps no history
    assert torch.equal(_branch([1.0], 0.8, [2.0], 0.8).estimate(0.7, True),
                       torch.tensor([2.0]))                       # two calls at one sigma (heun)
    assert torch.equal(_branch([1.0], 0.9, [2.0], 0.8).estimate(0.8, True),
                       torch.tensor([2.0]))                       # no distance to go
    b = st.BranchState(label="cond")
    b.store_residual(torch.zeros(3), 0.9, keep_previous=True)
    b.store_residual(torch.ones(2), 0.8, keep_previous=True)      # shape changed: no line
    assert b.prev_residual is None and torch.equal(b.estimate(0.7, True), torch.ones(2))


def test_bad_skip_estimate_is_a_clear_error():
    with pytest.raises(TeaCacheConfigError, match="skip_estimate .*reuse, extrapolate"):
        TeaCacheConfig(0.1, skip_estimate="quadratic")


# ---- through ComfyUI on a tiny real Wan -----------------------------------------------------
@pytest.fixture(scope="module")
def wan(model_dir):
    return tm.load(tm.build_wan(model_dir / "wan_extrap.safetensors", num_layers=2, seed=41))


def _sample(model, steps=8, cfg=4.0):
    pos, neg = tm.wan_conds()
    return h.sample(model, torch.zeros(1, 16, 3, 8, 8), pos, neg, steps=steps, cfg=cfg)


def test_threshold_zero_extrapolate_is_bit_identical(wan):
    base, n_base = _sample(wan)
    out, n = _sample(h.apply(wan, 0.0, skip_estimate="extrapolate"))
    assert torch.equal(out, base) and n == n_base


def test_skipped_calls_add_the_extrapolated_residual(wan):
    """start_step 2 computes steps 0 and 1, a huge threshold skips 2..6, step 7 is computed:
    every skipped call must hand the head its own input + r1 + (r1 - r0) * w(sigma)."""
    patched = h.apply(wan, 1e6, start=2, skip_estimate="extrapolate")
    dm = wan.get_model_object("diffusion_model")
    # a skipped call never runs blocks[0]: take the block input from the patch embedding
    seen = {"in": [], "head": []}
    handles = [
        dm.patch_embedding.register_forward_hook(
            lambda _m, _a, y: seen["in"].append(y.flatten(2).transpose(1, 2).detach().clone())),
        dm.head.register_forward_pre_hook(
            lambda _m, a: seen["head"].append(a[0].detach().clone()))]
    try:
        out, n = _sample(patched, cfg=1.0)
    finally:
        for hd in handles:
            hd.remove()
    recs = h.summary(patched)["branches"]["cond"]
    assert [r["computed"] for r in recs] == [True, True] + [False] * 5 + [True]
    assert n == 3 * 2
    (x0, x1), (y0, y1) = seen["in"][:2], seen["head"][:2]
    r0, r1 = y0 - x0, y1 - x1
    s0, s1 = recs[0]["sigma"], recs[1]["sigma"]
    for i in range(2, 7):
        w = min((recs[i]["sigma"] - s1) / (s1 - s0), st.MAX_EXTRAPOLATION)
        assert w > 0
        expected = seen["in"][i] + (r1 + (r1 - r0) * w)
        torch.testing.assert_close(seen["head"][i], expected, rtol=1e-6, atol=1e-6)
        # and it is not the published estimate
        assert not torch.allclose(seen["head"][i], seen["in"][i] + r1, atol=1e-4)
    assert torch.isfinite(out).all()


def test_extrapolation_keeps_decisions_and_cfg_branches(wan, monkeypatch):
    reuse = h.apply(wan, 0.3, skip_estimate="reuse")
    ext = h.apply(wan, 0.3, skip_estimate="extrapolate")
    _sample(reuse)
    _sample(ext)
    d = h.decisions(ext)
    assert set(d) == {"cond", "uncond"}
    assert any(not c for _, c in d["cond"])          # something was skipped
    h.force_separate_cond_calls(monkeypatch, ext)
    _sample(ext)
    assert h.decisions(ext) == d                      # batched or apart: same decisions
    peak_ext = h.summary(ext)["peak_cache_bytes"]
    assert peak_ext > h.summary(reuse)["peak_cache_bytes"]   # one more residual per branch
    assert h.state_released(ext)


@pytest.mark.skipif(not PROXY.exists(), reason="models/wan_proxy.safetensors is not in this checkout")
def test_extrapolation_is_closer_on_the_trained_proxy():
    """As many skipped steps, final latent closer to the uncached run (the trained proxy; random
    weights would say nothing). The benchmark measures this at scale."""
    from benchmarks.metrics import psnr
    from benchmarks.proxy import EVAL_PROMPTS, make_context, make_uncond_context
    model = comfy.sd.load_diffusion_model(str(PROXY))
    lat = torch.zeros(1, 16, 5, 16, 16)
    reuse = h.apply(model, 0.1, model_type="uncalibrated")
    ext = h.apply(model, 0.1, model_type="uncalibrated", skip_estimate="extrapolate")
    gains = []
    for i, prompt in enumerate(EVAL_PROMPTS[:2]):
        pos, neg = [[make_context(prompt), {}]], [[make_uncond_context(), {}]]
        ref, _ = h.sample(model, lat, pos, neg, steps=16, cfg=5.0, seed=100 + i)
        a, _ = h.sample(reuse, lat, pos, neg, steps=16, cfg=5.0, seed=100 + i)
        b, _ = h.sample(ext, lat, pos, neg, steps=16, cfg=5.0, seed=100 + i)
        # the rule is the same; the trajectories differ a little, so later decisions may too
        n_ext, n_reuse = (sum(c for _, c in h.decisions(m)["cond"]) for m in (ext, reuse))
        assert n_ext < 16 and abs(n_ext - n_reuse) <= 1
        gains.append(psnr(b, ref) - psnr(a, ref))
    assert min(gains) > 0, gains
