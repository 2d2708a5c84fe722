"""TeaCache combined with the samplers, schedulers and settings users run (issue 6, part)."""
from __future__ import annotations

import pytest
import torch

import nodes
import tiny_models as tm
from harness import apply, computed_steps, count_calls, summary


@pytest.fixture(scope="module")
def wan(model_dir):
    return tm.load(tm.build_wan(model_dir / "wan_compat.safetensors", num_layers=2, seed=31))


def run(model, *, steps=8, cfg=4.0, sampler="euler", scheduler="simple", denoise=1.0, latent=None):
    pos, neg = tm.wan_conds()
    latent = latent if latent is not None else torch.zeros(1, 16, 3, 8, 8)
    counter, hs = count_calls(model.get_model_object("diffusion_model").blocks)
    try:
        out = nodes.common_ksampler(model, 5, steps, cfg, sampler, scheduler, pos, neg,
                                    {"samples": latent}, denoise=denoise)[0]["samples"]
    finally:
        for h in hs:
            h.remove()
    return out, counter["n"]


@pytest.mark.parametrize("sampler, scheduler", [
    ("euler_ancestral", "simple"), ("dpmpp_2m", "karras"), ("dpmpp_2m_sde", "simple"),
    ("uni_pc", "beta"), ("lcm", "simple"), ("euler", "beta")])
def test_samplers_and_schedulers(wan, sampler, scheduler):
    base, n_base = run(wan, sampler=sampler, scheduler=scheduler)
    same, n_same = run(apply(wan, 0.0), sampler=sampler, scheduler=scheduler)
    assert torch.equal(base, same) and n_same == n_base
    patched = apply(wan, 1e6)
    out, n = run(patched, sampler=sampler, scheduler=scheduler)
    assert torch.isfinite(out).all()
    assert computed_steps(patched) == [0, 7] and n == 2 * 2


def test_cfg_one_has_no_uncond_branch(wan):
    patched = apply(wan, 1e6)
    base, _ = run(wan, cfg=1.0)
    out, n = run(patched, cfg=1.0)
    assert set(summary(patched)["branches"]) == {"cond"}
    assert n == 2 * 2 and torch.isfinite(out).all()
    same, _ = run(apply(wan, 0.0), cfg=1.0)
    assert torch.equal(same, base)


@pytest.mark.parametrize("steps", [2, 3, 4])
def test_very_few_steps(wan, steps):
    patched = apply(wan, 1e6)
    out, n = run(patched, steps=steps)
    assert computed_steps(patched) == sorted({0, steps - 1})
    assert torch.isfinite(out).all()


def test_denoise_below_one_counts_the_run_steps(wan):
    patched = apply(wan, 1e6)
    latent = torch.randn(1, 16, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out, n = run(patched, steps=10, denoise=0.5, latent=latent)
    assert summary(patched)["total_steps"] == 10
    assert computed_steps(patched) == [0, 9] and torch.isfinite(out).all()


def test_batch_of_two_latents(wan):
    base, _ = run(wan, latent=torch.zeros(2, 16, 3, 8, 8))
    same, _ = run(apply(wan, 0.0), latent=torch.zeros(2, 16, 3, 8, 8))
    assert torch.equal(base, same)
    patched = apply(wan, 1e6)
    out, n = run(patched, latent=torch.zeros(2, 16, 3, 8, 8))
    assert n == 2 * 2 and out.shape[0] == 2


def test_removing_the_node_restores_the_exact_output(wan):
    base, _ = run(wan)
    run(apply(wan, 1e6))
    after, _ = run(wan)
    assert torch.equal(base, after)


def test_many_runs_hold_no_growing_state(wan):
    patched = apply(wan, 0.2)
    from comfyui_teacache.teacache_core.patching import registration_of
    reg = registration_of(patched)
    outs = [run(patched, steps=4)[0] for _ in range(12)]
    assert all(torch.equal(outs[0], o) for o in outs[1:])
    assert len(reg.history) == reg.HISTORY           # bounded: only the last runs' summaries
