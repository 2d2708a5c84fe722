"""target_speedup experiments (benchmarks/target_variants.py): the online threshold at a fraction
of the interval of thresholds that spend the budget (pure python on toy sequences), the
first-run warm-up (the rule on a tiny real Wan), the first-run recent fit (toy sequences),
the later runs' late weight and plan (toy sequences, and the rule on a tiny real Wan), the
spacing cap (the rule on a tiny real Wan), the first runs planned on the conditioning
vectors (toy sequences, and the vectors against what the blocks get on a tiny real Wan and
LTX-Video), and the first runs weighed by a measured cost per unit (toy curves, and the rule on
a tiny real Wan)."""
from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import pytest
import torch

sys.path.append(str(Path(__file__).resolve().parents[1]))    # after ComfyUI: its `nodes` first

from benchmarks.first_run_loo import label  # noqa: E402
from benchmarks.target_variants import (LATER_PLANS, SHIPPED_LATER_PLAN,  # noqa: E402
                                        SHIPPED_PLAN, cost_curve, curve_at, fitted_power,
                                        late_weighted, later_plan, phase_scales,
                                        placed_threshold, recent_count, schedule_shape,
                                        schedule_vectors, shape_scales, spacing_cap, use,
                                        use_cost_weights, use_late_weight, use_later_plan,
                                        use_recent, use_schedule_vectors, use_spacing_cap,
                                        use_warmup)
from comfyui_teacache.teacache_core import budget  # noqa: E402
from comfyui_teacache.teacache_core.patching import registration_of  # noqa: E402
from comfyui_teacache.teacache_core.target import TargetRule  # noqa: E402
from harness import summary  # noqa: E402
from test_target_budget import _greedy  # noqa: E402


def _tiny_wan(model_dir, name, seed):
    """A 2-block Wan built and loaded through ComfyUI's loader (tests/tiny_models.py)."""
    import tiny_models as tm
    return tm.load(tm.build_wan(model_dir / f"{name}.safetensors", num_layers=2, seed=seed))


def _online(d, forced, k, ms, placement):
    """Decide every call with the online threshold on the exact distances to come."""
    sel, acc, run, made = [], 0.0, 0, 0
    for j in range(len(d)):
        if forced[j]:
            c = True
        else:
            acc += d[j]
            tau = placed_threshold(acc, d[j + 1:], forced[j + 1:], k - made, ms, run,
                                     placement=placement)
            c = acc >= tau or (ms and run >= ms)
        sel.append(c)
        made += c
        acc, run = (0.0, 0) if c else (acc, run + 1)
    return sel


def test_placement_inside_the_interval_spends_the_budget_exactly():
    """Any placement in the interval of thresholds that spend the budget makes the same number
    of computes on the exact distances (the budget, where the thresholds can spend it)."""
    rng = random.Random(1)
    for _ in range(300):
        n, ms = rng.randint(3, 30), rng.choice([0, 0, 2, 3])
        d = [None] + [rng.random() ** 3 + 1e-3 for _ in range(n - 1)]
        forced = [i == 0 or i == n - 1 for i in range(n)]
        k = rng.randint(budget.min_computes(forced, ms), n)
        made = {f: sum(_online(d, forced, k, ms, f)) for f in (0.0, 0.5, 0.9)}
        assert made[0.5] == made[0.0] <= k
        assert made[0.9] == made[0.0]


def test_placement_is_a_fraction_of_the_interval_of_thresholds():
    d = [0.05, 0.1, 0.2, 0.1, 0.3, 0.1, 0.1, 0.2, 0.1, 0.1]     # the calls after this one
    forced = [False] * 9 + [True]
    lo = placed_threshold(0.0, d, forced, 4, placement=0.0)
    mid = placed_threshold(0.0, d, forced, 4, placement=0.5)
    top = placed_threshold(0.0, d, forced, 3, placement=0.0)    # one compute less
    assert lo < mid < top
    assert mid == pytest.approx((lo + top) / 2, rel=1e-6)
    assert budget.greedy_computes(0.0, d, forced, lo) == 4
    assert budget.greedy_computes(0.0, d, forced, mid) == 4
    assert budget.greedy_computes(0.0, d, forced, top) == 3
    # where the interval is empty (the computes jump by two) every placement is its edge
    u = [0.1] * 9
    assert placed_threshold(0.0, u, forced[1:], 4, placement=0.5) == \
        budget.online_threshold(0.0, u, forced[1:], 4)
    # the same number of computes, not at the same calls: the smallest threshold computes each
    # call as early as it may and leaves the longest stretch uncomputed before the last call
    d = [0.3, 0.1, 0.3, 0.1, 0.2, 0.2, 0.3, 0.1]
    forced = [False] * 7 + [True]
    early, spread = (_greedy([None] + d, [True] + forced,
                             placed_threshold(0.0, d, forced, 3, placement=f))
                     for f in (0.0, 0.5))
    assert early == [True, False, False, True, False, False, True, False, True]
    assert spread == [True, False, False, True, False, False, False, True, True]


def test_use_switches_the_rule_and_back():
    shipped = budget.online_threshold
    d, forced = [0.3, 0.1, 0.3, 0.1, 0.2, 0.2, 0.3, 0.1], [False] * 7 + [True]
    try:
        use(0.5)
        assert budget.online_threshold(0.0, d, forced, 3) == placed_threshold(0.0, d, forced, 3,
                                                                              placement=0.5)
        assert budget.online_threshold(0.0, d, forced, 3) > shipped(0.0, d, forced, 3)
    finally:
        use(0.0)
    assert budget.online_threshold is shipped


def test_first_run_warm_up_computes_the_first_calls_and_keeps_the_budget(model_dir):
    """On a tiny real Wan through ComfyUI's sampler: with the warm-up a first run computes its
    first ceil(W x calls) calls and still exactly K in all; a later run (planned on the first
    one's profile) has no warm-up; use_warmup(0) restores the shipped rule."""
    from test_target import run, target
    model, shipped = _tiny_wan(model_dir, "wan_warmup", 31), TargetRule._choose
    try:
        use_warmup(0.25)
        m = target(model, 2.0)
        run(m, steps=12)
        branches = summary(m)["branches"]
        for recs in branches.values():
            assert [r["computed"] for r in recs[:3]] == [True, True, True]
            assert sum(r["computed"] for r in recs) == 6
        # the cond that decides first at a call warms up; the other follows it (shared)
        for j in (1, 2):
            assert "target: first-run warm-up" in {recs[j]["reason"] for recs in branches.values()}
        run(m, steps=12, seed=6)                         # a later run: planned, no warm-up
        for recs in summary(m)["branches"].values():
            assert not any("warm-up" in (r["reason"] or "") for r in recs)
            assert sum(r["computed"] for r in recs) == 6
    finally:
        use_warmup(0.0)
    assert TargetRule._choose is shipped


def test_recent_fit_uses_the_last_calls_seen_and_switches_back():
    """The recent fit scales the schedule's shape to the last calls seen: on an indicator that
    is high over its first calls and then falls (as LTX-Video's proxy's), a fit to every call
    predicts the calls to come larger than the recent calls say; use_recent(0) restores the
    shipped rule (budget.RECENT_CALLS)."""
    shipped_n = budget.RECENT_CALLS
    assert [recent_count(10, r) for r in (-1, 0, 3, 0.25, 0.1, 20)] == \
        [10, shipped_n, 3, 3, 2, 10]
    assert recent_count(1, 0.25) == 1
    seen = [0.30, 0.20, 0.05, 0.05, 0.05, 0.05]        # high first calls, then low
    scales = [1.0] * 6
    future = [1.0, 2.0]
    shipped = budget.predict_distances
    try:
        use_recent(-1)                               # every call seen (the rule before)
        every = budget.predict_distances(seen, scales, future)
        assert every == pytest.approx([0.7 / 6, 1.4 / 6])
        use_recent(5)
        assert budget.predict_distances(seen, scales, future) == pytest.approx([0.08, 0.16])
        use_recent(0.5)                              # the last ceil(0.5 x 6) = 3 calls
        assert budget.predict_distances(seen, scales, future) == pytest.approx([0.05, 0.10])
    finally:
        use_recent(0.0)
    assert budget.predict_distances is shipped
    assert label((0.3, 1.25, 0.0, 3.0)) == "move^0.3 / sigma^1.25, recent 3"
    assert label((0.3, 1.25, 0.0, -1.0)) == "move^0.3 / sigma^1.25, every call"
    assert label((0.3, 1.25, 0.1)) == "move^0.3 / sigma^1.25, warm-up 0.1"


def test_fitted_power_reads_the_slope_of_the_calls_seen():
    """The fitted power: the slope of log distance on log scale, shrunk towards 1 by the
    ridge, within [0, 2]; with it the prediction follows an indicator that rises less than the
    schedule's shape (as LTX-Video's) and reverts to the shipped one where the calls seen say
    nothing."""
    scales = [1.0, 2.0, 4.0, 8.0]
    half = [0.1 * s ** 0.5 for s in scales]              # rises as the scale ** 0.5
    assert fitted_power(half, scales, 1e-9) == pytest.approx(0.5)
    sxx = sum((math.log(s) - math.log(8) / 2) ** 2 for s in scales)
    assert fitted_power(half, scales, sxx) == pytest.approx(0.75)     # halfway to the prior
    assert fitted_power([0.4, 0.3, 0.2, 0.1], scales, 1e-9) == 0.0   # falling: the floor
    assert fitted_power([s ** 3 for s in scales], scales, 1e-9) == 2.0
    assert fitted_power([0.1], [1.0], 1e-9) == 1.0                   # one call: the prior
    assert fitted_power([0.1, None, 0.2], [1.0, 2.0, 0.0], 1e-9) == 1.0
    shipped = budget.predict_distances
    try:
        use_recent(0.0, 1e-9)
        pred = budget.predict_distances(half, scales, [16.0])
        assert pred == pytest.approx([0.1 * 16 ** 0.5], rel=1e-6)
    finally:
        use_recent(0.0)
    assert budget.predict_distances is shipped
    assert label((0.3, 1.25, 0.0, 3.0, 0.1)) == "move^0.3 / sigma^1.25, recent 3, fitted power 0.1"


def test_late_weight_weighs_the_last_calls_and_keeps_the_budget(model_dir):
    """The later-run late weight: the calls to come times (sigma now / sigma there) ** a (sigma
    at least the floor); on a tiny real Wan through ComfyUI's sampler a later run with it still
    computes exactly K per cond; use_late_weight(0) restores the shipped rule."""
    sig = [1.0, 0.5, 0.25, 0.0]
    assert late_weighted([1.0, 1.0, 1.0], sig, 0, [1, 2, 3], 1.0) == \
        pytest.approx([2.0, 4.0, 1.0 / budget.SIGMA_FLOOR])
    assert late_weighted([0.3, 0.2], sig, 1, [2, 3], 0.0) == pytest.approx([0.3, 0.2])
    from test_target import run, target
    model, shipped = _tiny_wan(model_dir, "wan_lateweight", 32), TargetRule._choose
    try:
        use_late_weight(1.0)
        m = target(model, 2.0)
        run(m, steps=12)
        run(m, steps=12, seed=6)                         # a later run: planned, weighted
        s = summary(m)
        assert s["target"]["plan"] != "prediction"
        for recs in s["branches"].values():
            assert sum(r["computed"] for r in recs) == 6
    finally:
        use_late_weight(0.0)
    assert TargetRule._choose is shipped


def test_later_plans_scale_the_profile_or_predict():
    """profile: the earlier run's distances scaled by every call seen; profile recent: by the
    last RECENT_CALLS calls; prediction: the first-run prediction; blend: their geometric mean
    call by call."""
    seen, early, fut, first = [4.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.5, 2.0], [2.0, 8.0]
    assert later_plan("profile", seen, early, fut, first) == pytest.approx([0.875, 3.5])
    assert later_plan("profile recent", seen, early, fut, first) == pytest.approx([0.5, 2.0])
    assert later_plan("prediction", seen, early, fut, first) == pytest.approx(first)
    assert later_plan("blend", seen, early, fut, first) == pytest.approx([1.0, 4.0])
    # the rule before: at most 4x either way, unmeasured distances 0
    assert later_plan("profile", [0.2], [0.1], [0.3, None], [1.0, 1.0]) == pytest.approx([0.6, 0.0])
    assert later_plan("profile", [10.0], [0.1], [1.0], [1.0]) == pytest.approx([4.0])
    with pytest.raises(ValueError, match="one of"):
        use_later_plan("oracle")


def test_later_plans_keep_the_budget_and_prediction_equals_a_first_run(model_dir):
    """On a tiny real Wan through ComfyUI's sampler, a later run under every later plan still
    computes exactly K per cond, says it was planned, and under "prediction" (shipped) makes
    the same choices as a first run of the same prompt and seed (one call per step: the
    profile then adds nothing the schedule does not give); use_later_plan of the shipped plan
    restores the rule."""
    from test_target import run, target
    model, shipped = _tiny_wan(model_dir, "wan_laterplan", 33), TargetRule._predict
    first = target(model, 2.0)
    run(first, steps=12, seed=6)
    fresh = {k: [r["computed"] for r in v] for k, v in summary(first)["branches"].items()}
    try:
        for name in LATER_PLANS:
            use_later_plan(name)
            m = target(model, 2.0)
            run(m, steps=12)
            run(m, steps=12, seed=6)                     # a later run: planned
            s = summary(m)
            assert s["target"]["plan"] != "prediction"
            got = {k: [r["computed"] for r in v] for k, v in s["branches"].items()}
            for recs in got.values():
                assert sum(recs) == 6
            if name == "prediction":
                assert got == fresh
            if name != "prediction":
                assert TargetRule._predict is not shipped
    finally:
        use_later_plan(SHIPPED_LATER_PLAN)
    assert TargetRule._predict is shipped


def test_spacing_cap_spaces_the_computes_and_keeps_the_budget(model_dir):
    """The spacing cap: at most ceil(f x N / K) skipped calls in a row; on a tiny real Wan
    through ComfyUI's sampler a first and a later run with it compute exactly K per cond and
    skip no more in a row; use_spacing_cap(0) restores the shipped rule."""
    assert spacing_cap(20, 10, 1.0) == 2 and spacing_cap(20, 5, 1.0) == 4
    assert spacing_cap(30, 20, 1.0) == 2 and spacing_cap(30, 8, 1.5) == 6
    assert spacing_cap(12, 12, 0.5) == 1
    from test_target import run, target
    model, shipped = _tiny_wan(model_dir, "wan_spacing", 33), TargetRule._set_budget

    def longest_gap(m):
        out = []
        for recs in summary(m)["branches"].values():
            gap = longest = 0
            for r in recs:
                gap = 0 if r["computed"] else gap + 1
                longest = max(longest, gap)
            out.append(longest)
        return max(out)
    m = target(model, 3.0)
    run(m, steps=12)
    assert longest_gap(m) > 3                           # the shipped rule: a longer stretch
    try:
        use_spacing_cap(1.0)
        m = target(model, 3.0)
        for seed in (0, 6):                             # a first run, then a later run
            run(m, steps=12, seed=seed)
            for recs in summary(m)["branches"].values():
                assert sum(r["computed"] for r in recs) == 4
            assert longest_gap(m) <= spacing_cap(12, 4, 1.0) == 3
    finally:
        use_spacing_cap(0.0)
    assert TargetRule._set_budget is shipped


def test_vector_shapes_sum_the_moves_between_calls():
    shape = [0.0, 0.1, 0.2, 0.3, 0.4]
    assert shape_scales(shape, [0, 1, 2, 3, 4]) == shape
    # Heun's second call sits at the next step's sigma: the move is the first call's
    assert shape_scales(shape, [0, 1, 1, 2, 2]) == [0.0, 0.1, 0.0, 0.2, 0.0]
    # calls the plan jumps over: their steps' moves add up; steps past the shape are 0
    assert shape_scales(shape, [0, 3, 4, 6]) == pytest.approx([0.0, 0.6, 0.4, 0.0])
    # the phase: a vector that moves evenly leaves the shipped shape as it is; a zigzag
    # moves it up and down around it
    sig = [1.0, 0.9, 0.8, 0.6, 0.3, 0.0]
    steps = list(range(5))
    assert phase_scales(sig, [0.0] + [0.2] * 4, steps) == pytest.approx(
        budget.call_scales(sig, steps))
    zig = phase_scales(sig, [0.0, 0.1, 0.3, 0.1, 0.3], steps)
    base = budget.call_scales(sig, steps)
    assert zig[1] < base[1] and zig[2] > base[2] and zig[3] < base[3]


@pytest.mark.parametrize("fam_id", ["wan21_t2v", "ltxv"])
def test_schedule_vectors_are_what_the_blocks_get(model_dir, fam_id, monkeypatch):
    """The experiment's conditioning vector of every step, computed from the model's own
    layers before the step is reached, is the vector the first block gets at that step
    (args["vec"], on a tiny real model through ComfyUI's sampler); a first run planned on it
    (either mode) keeps the budget, and use_schedule_vectors(model, 0) is the shipped rule."""
    from families import FAMILIES
    from test_families import apply, run
    from test_target import expected_k
    import comfy.samplers
    f = next(x for x in FAMILIES if x.id == fam_id)
    model = f.build(model_dir)
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"),
                                             f.scheduler, f.steps).tolist()
    patched = apply(model, 0.0)
    ad = registration_of(patched).adapter
    vecs = []

    def indicator(name, ctx, args, inner=ad.indicator):
        vecs.append(args["vec"].detach().float().clone())
        return inner(name, ctx, args)
    monkeypatch.setattr(ad, "indicator", indicator)
    run(f, patched)
    v = schedule_vectors(model, ad.family, sigmas[:-1])
    assert v.shape[0] == f.steps == len(vecs)
    for s, seen in enumerate(vecs):
        rows = seen[0].reshape(-1, v.shape[1])
        assert torch.allclose(rows, v[s].expand_as(rows), rtol=1e-4, atol=1e-5), s
    shape = schedule_shape(v)
    assert len(shape) == f.steps and shape[0] == 0 and min(shape[1:]) > 0
    monkeypatch.undo()
    k = expected_k(f.steps, 2.0, f.forced)
    try:
        for mode in (1, 2):
            use_schedule_vectors(model, mode)
            tc = apply(model, 0.1, target=2.0)
            run(f, tc)
            for cond, recs in summary(tc)["branches"].items():
                assert sum(r["computed"] for r in recs) == k, (mode, cond)
    finally:
        use_schedule_vectors(model, 0)
    assert TargetRule._predict is SHIPPED_PLAN


def test_cost_weights_weigh_each_call_and_keep_the_budget(model_dir):
    """The measured cost per unit as a weight: the curve is the geometric mean over prompts per
    call, sorted by sigma, linear between its calls and flat beyond; on a tiny real Wan through
    ComfyUI's sampler a first run weighed by it computes exactly K per cond, and each call's
    distance is the indicator's times the weight at its sigma; use_cost_weights(None) restores
    the shipped rule."""
    prompts = [{"reuse": {"cost": [0.1, None, 0.4]}}, {"reuse": {"cost": [0.4, None, 0.1]}}]
    curve = cost_curve(prompts, "reuse", [1.0, 0.8, 0.5, 0.2, 0.0])
    assert curve == [(0.2, pytest.approx(0.2)), (0.8, pytest.approx(0.2))]
    steep = [(0.3, 4.0), (0.9, 1.0)]
    assert curve_at(steep, 0.1) == 4.0 and curve_at(steep, 0.95) == 1.0
    assert curve_at(steep, 0.6) == pytest.approx(2.5)
    assert label((0.3, 1.25, 0.0, 3.0, 0.0, 0.0, 0.5)) == \
        "move^0.3 / sigma^1.25, recent 3, cost weights^0.5"
    from test_target import run
    from comfyui_teacache.nodes.apply import TeaCacheApply
    model = _tiny_wan(model_dir, "wan_costweights", 33)
    shipped = (TargetRule.decide, budget.call_scales)
    try:
        use_cost_weights(steep, 1.0)
        m = TeaCacheApply.execute(model, 0.1, 0, -1, "uncalibrated", "model_device", False, 0,
                                  "reuse", 2.0).result[0]       # identity rescale
        run(m, steps=12)
        weighed = 0
        for recs in summary(m)["branches"].values():
            assert sum(r["computed"] for r in recs) == 6
            for r in recs:
                if r["distance"] is not None:
                    w = curve_at(steep, r["sigma"])
                    assert r["rescaled"] == pytest.approx(r["distance"] * w, rel=1e-4)
                    weighed += w > 1.01
        assert weighed
    finally:
        use_cost_weights(None)
    assert (TargetRule.decide, budget.call_scales) == shipped
