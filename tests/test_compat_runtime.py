"""TeaCache with ComfyUI's other ways to sample (issue 6): SamplerCustomAdvanced with its
guiders, KSamplerAdvanced step ranges, several positive conds (ConditioningCombine, areas),
an interrupt in the middle of a run, and many runs in a row (no state, no memory kept)."""
from __future__ import annotations

import gc
import tracemalloc

import pytest
import torch

import comfy.model_management
import comfy.utils
import nodes
import tiny_models as tm
from harness import apply, count_calls, decisions, summary

from comfyui_teacache.teacache_core import patching, state

STEPS = 6
LAYERS = 2


@pytest.fixture(scope="module")
def wan(model_dir):
    return tm.load(tm.build_wan(model_dir / "wan_compat_runtime.safetensors",
                                num_layers=LAYERS, seed=43))


def latent(shape=(1, 16, 3, 8, 8)):
    return {"samples": torch.zeros(shape)}


def blocks_of(model):
    return model.get_model_object("diffusion_model").blocks


def counted(model, fn):
    counter, hs = count_calls(blocks_of(model))
    try:
        return fn(), counter["n"]
    finally:
        for h in hs:
            h.remove()


def ksampler(model, positive=None, negative=None, *, steps=STEPS, cfg=4.0, seed=5, lat=None):
    pos, neg = tm.wan_conds()
    return counted(model, lambda: nodes.common_ksampler(
        model, seed, steps, cfg, "euler", "simple", positive or pos, negative or neg,
        lat or latent())[0]["samples"])


# ---- SamplerCustomAdvanced + guiders --------------------------------------------------------
def custom_advanced(model, guider_fn, *, steps=STEPS, seed=5, sampler="euler"):
    from comfy_extras import nodes_custom_sampler as cs
    guider = guider_fn(model)
    sigmas = cs.BasicScheduler.execute(model, "simple", steps, 1.0).result[0]
    samp = cs.KSamplerSelect.execute(sampler).result[0]
    noise = cs.RandomNoise.execute(seed).result[0]
    return counted(model, lambda: cs.SamplerCustomAdvanced.execute(
        noise, guider, samp, sigmas, latent()).result[0]["samples"])


def cfg_guider(model, cfg=4.0):
    from comfy_extras.nodes_custom_sampler import CFGGuider
    pos, neg = tm.wan_conds()
    return CFGGuider.execute(model, pos, neg, cfg).result[0]


def basic_guider(model):
    from comfy_extras.nodes_custom_sampler import BasicGuider
    return BasicGuider.execute(model, tm.wan_conds()[0]).result[0]


def dual_cfg_guider(model):
    from comfy_extras.nodes_custom_sampler import DualCFGGuider
    pos, neg = tm.wan_conds()
    pos2, _ = tm.wan_conds(seed=1)
    return DualCFGGuider.execute(model, pos, pos2, neg, 4.0, 2.0, "regular").result[0]


@pytest.mark.parametrize("guider, branches", [
    (cfg_guider, {"cond", "uncond"}), (basic_guider, {"cond"}),
    (dual_cfg_guider, {"cond", "branch2", "uncond"})], ids=["CFGGuider", "BasicGuider",
                                                           "DualCFGGuider"])
def test_sampler_custom_advanced_with_guiders(wan, guider, branches):
    base, n_base = custom_advanced(wan, guider)
    same, n_same = custom_advanced(apply(wan, 0.0), guider)
    assert torch.equal(base, same) and n_same == n_base
    patched = apply(wan, 1e6)
    out, n = custom_advanced(patched, guider)
    assert torch.isfinite(out).all()
    d = decisions(patched)
    assert set(d) == branches
    for label in branches:
        assert [s for s, c in d[label] if c] == [0, STEPS - 1]
    assert n == n_base * 2 // STEPS                       # only the first and last calls ran
    assert summary(patched)["total_steps"] == STEPS


def test_sampler_custom_advanced_matches_ksampler(wan):
    """Same model, seed, sampler and schedule: both entry points give one result, cached
    or not, and decide the same."""
    for thresh in (0.0, 0.2):
        a = apply(wan, thresh)
        b = apply(wan, thresh)
        ks, _ = ksampler(a)
        ca, _ = custom_advanced(b, cfg_guider)
        assert torch.equal(ks, ca)
        assert decisions(a) == decisions(b)


# ---- KSamplerAdvanced step ranges -----------------------------------------------------------
def advanced(model, add_noise, start, end, leftover, lat, steps=10):
    pos, neg = tm.wan_conds()
    return nodes.KSamplerAdvanced().sample(model, add_noise, 5, steps, 4.0, "euler", "simple",
                                           pos, neg, lat, start, end, leftover)[0]


def test_ksampler_advanced_partial_range_counts_its_own_steps(wan):
    """start_at_step/end_at_step run a slice of the schedule: TeaCache counts the steps of
    the slice this sampler runs, from 0 (start_step/end_step too), and forces its first and
    last step. Documented in the README."""
    a_tc = apply(wan, 1e6, start=2)
    mid = advanced(a_tc, "enable", 3, 7, "enable", latent())
    s = summary(a_tc)
    assert s["total_steps"] == 4
    assert [st for st, c in decisions(a_tc)["cond"] if c] == [0, 1, 3]
    assert [r["step"] for r in s["branches"]["cond"]] == [0, 1, 2, 3]
    # add_noise disable + leftover noise: the second half continues from `mid`
    b_tc = apply(wan, 1e6)
    out = advanced(b_tc, "disable", 7, 10000, "disable", mid)
    assert summary(b_tc)["total_steps"] == 3                  # end_at_step past the end: 7..9
    assert [st for st, c in decisions(b_tc)["cond"] if c] == [0, 2]
    assert torch.isfinite(out["samples"]).all()
    # threshold 0 reproduces both halves exactly
    ref_mid = advanced(wan, "enable", 3, 7, "enable", latent())
    ref = advanced(wan, "disable", 7, 10000, "disable", ref_mid)
    z_mid = advanced(apply(wan, 0.0), "enable", 3, 7, "enable", latent())
    z = advanced(apply(wan, 0.0), "disable", 7, 10000, "disable", z_mid)
    assert torch.equal(z_mid["samples"], ref_mid["samples"])
    assert torch.equal(z["samples"], ref["samples"])


def test_steps_beyond_the_schedule(wan):
    """start_step at or past the last step: every step is computed (nothing to skip);
    end_step past the last step: no effect. Both documented; neither is an error, since the
    node cannot know the sampler's steps."""
    base, n_base = ksampler(wan)
    late = apply(wan, 1e6, start=STEPS)
    out, n = ksampler(late)
    assert torch.equal(out, base) and n == n_base
    assert all(r["reason"] in ("first step", "before start_step")
               for r in summary(late)["branches"]["cond"])
    huge = apply(wan, 1e6, start=0, end=10000)
    _, n = ksampler(huge)
    assert [s for s, c in decisions(huge)["cond"] if c] == [0, STEPS - 1]


# ---- several positive conds -----------------------------------------------------------------
def test_conditioning_combine_each_cond_decides_for_itself(wan):
    pos, neg = tm.wan_conds()
    pos2, _ = tm.wan_conds(seed=2)
    both = nodes.ConditioningCombine().combine(pos, pos2)[0]
    base, n_base = ksampler(wan, both, neg)
    same, _ = ksampler(apply(wan, 0.0), both, neg)
    assert torch.equal(base, same)
    patched = apply(wan, 1e6)
    out, n = ksampler(patched, both, neg)
    d = decisions(patched)
    assert set(d) == {"cond", "cond#2", "uncond"}
    assert all([s for s, c in v if c] == [0, STEPS - 1] for v in d.values())
    assert n == n_base * 2 // STEPS and torch.isfinite(out).all()
    mid = apply(wan, 0.15)                                 # conds may differ at a real threshold
    ksampler(mid, both, neg)
    assert set(decisions(mid)) == {"cond", "cond#2", "uncond"}


def test_area_conds_are_their_own_branches(wan):
    """ConditioningSetArea makes ComfyUI run the model on the area's crop of the latent for
    that cond: its state (and residual, of the crop's shape) is its own."""
    pos, neg = tm.wan_conds()
    pos2, _ = tm.wan_conds(seed=3)
    area = nodes.ConditioningSetArea().append(pos2, 32, 32, 0, 0, 1.0)[0]   # 4x4 of 8x8 latent
    both = nodes.ConditioningCombine().combine(pos, area)[0]
    plain, _ = ksampler(wan, pos, neg)
    base, n_base = ksampler(wan, both, neg)
    assert not torch.equal(base, plain)                     # the area cond acts
    same, n_same = ksampler(apply(wan, 0.0), both, neg)
    assert torch.equal(base, same) and n_same == n_base
    patched = apply(wan, 1e6)
    out, n = ksampler(patched, both, neg)
    d = decisions(patched)
    # ComfyUI adds an uncond over the same area (with the area cond's uuid): 4 branches,
    # each with one decision a step
    assert set(d) == {"cond", "cond#2", "uncond", "uncond#2"}
    assert all([s for s, _ in v] == list(range(STEPS)) for v in d.values())
    assert all([s for s, c in v if c] == [0, STEPS - 1] for v in d.values())
    assert n < n_base and torch.isfinite(out).all()


# ---- interrupt, then a normal run -------------------------------------------------------------
def test_interrupt_mid_run_then_a_normal_run(wan):
    """ComfyUI's Cancel: interrupt_current_processing() from the progress callback; the
    model's next op raises. The next run must equal a run that had no interrupt before it."""
    patched = apply(wan, 0.2)
    reference = apply(wan, 0.2)
    fresh, _ = ksampler(reference)
    seen = []

    def hook(value, total, preview, node_id=None):
        # the first update is always delivered (the newest ComfyUI throttles later ones)
        if not seen and value < total:
            comfy.model_management.interrupt_current_processing(True)
        seen.append(value)

    comfy.utils.set_progress_bar_global_hook(hook)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            ksampler(patched)
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
        comfy.model_management.interrupt_current_processing(False)
    assert seen and max(seen) < STEPS
    interrupted = summary(patched)
    assert len(interrupted["branches"]["cond"]) < STEPS       # it really stopped mid-run
    after, _ = ksampler(patched)
    assert torch.equal(after, fresh)
    assert decisions(patched) == decisions(reference)
    assert summary(patched)["total_steps"] == STEPS


# ---- many runs ------------------------------------------------------------------------------------
OUR_CLASSES = (patching.TeaCacheRegistration, patching.BlockGate, state.RunState,
               state.BranchState, state.CallContext, state.StepRecord)


def _census():
    gc.collect()
    objs = gc.get_objects()
    ours = {c.__name__: sum(1 for o in objs if type(o) is c) for c in OUR_CLASSES}
    tensors = sum(1 for o in objs if issubclass(type(o), torch.Tensor))
    return ours, tensors


def test_fifty_runs_keep_memory_flat_and_outputs_identical(wan):
    patched = apply(wan, 0.2)
    first, _ = ksampler(patched, steps=4)
    same = 0
    tracemalloc.start()
    try:
        for i in range(49):
            same += torch.equal(ksampler(patched, steps=4)[0], first)
            if i == 9:
                ours10, tensors10 = _census()
                snap10 = tracemalloc.take_snapshot()
        ours50, tensors50 = _census()
        snap50 = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert same == 49
    assert 0 < summary(patched)["calls_blocks_ran"] < summary(patched)["calls"]
    assert ours50 == ours10, (ours10, ours50)
    assert ours50["RunState"] == 0 and ours50["CallContext"] == 0     # nothing outlives a run
    assert tensors50 <= tensors10
    only_ours = [tracemalloc.Filter(True, "*teacache_core*")]
    grown = sum(s.size_diff for s in snap50.filter_traces(only_ours).compare_to(
        snap10.filter_traces(only_ours), "filename"))
    assert grown < 64 * 1024, f"TeaCache's own allocations grew by {grown} bytes over 40 runs"
