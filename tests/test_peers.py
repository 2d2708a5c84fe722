"""Peer methods re-implemented on the pack's gates (benchmarks/peers.py): each rule on toy
sequences, the generic engine seams on a tiny real Wan, and the benchmark harness's peer rows
(correctness only, no timing)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from comfyui_teacache.teacache_core.patching import registration_of
from comfyui_teacache.teacache_core.state import BranchState

ROOT = Path(__file__).resolve().parents[1]
PROXY = ROOT / "models" / "wan_proxy.safetensors"
sys.path.append(str(ROOT))      # for benchmarks/ (after ComfyUI: the pack has a nodes/ too)

from benchmarks import peers  # noqa: E402


def _branch(label="cond", skips=0):
    b = BranchState(label=label)
    b.consecutive_skips = skips
    return b


# ------------------------------------------------------------------ TaylorSeer

def test_taylor_forecast_exact_for_a_line_at_orders_1_and_2():
    f = lambda t: torch.tensor([3.0 - 2.0 * t, 0.5 * t])      # noqa: E731
    for order in (1, 2):
        factors, k = None, None
        for t in (0, 4, 8):                                   # full steps every N = 4
            factors = peers.taylor_update(factors, f(t), None if k is None else t - k, order)
            k = t
        for dx in (1, 2, 3):
            assert torch.allclose(peers.taylor_forecast(factors, dx), f(8 + dx))


def test_taylor_order_2_on_a_quadratic_has_the_backward_difference_error():
    """TaylorSeer's factors are backward differences over the last interval N (their
    derivative_approximation): on f = t^2 factor 1 is f'(t) - N f''/2, so the order-2 forecast
    is off by exactly N*dx (f'' = 2) and order 1 by N*dx + dx^2; order 0 is plain reuse."""
    f = lambda t: torch.tensor([float(t) ** 2])                # noqa: E731
    n = 4
    facs = {}
    for order in (0, 1, 2):
        factors, k = None, None
        for t in (0, n, 2 * n):
            factors = peers.taylor_update(factors, f(t), None if k is None else t - k, order)
            k = t
        facs[order] = factors
        assert len(factors) == order + 1
    for dx in (1, 2, 3):
        true = f(2 * n + dx)
        assert torch.allclose(peers.taylor_forecast(facs[2], dx), true - n * dx)
        assert torch.allclose(peers.taylor_forecast(facs[1], dx), true - n * dx - dx ** 2)
        assert torch.equal(peers.taylor_forecast(facs[0], dx), f(2 * n))


def test_taylor_schedule_full_every_n_steps():
    rule = peers.TaylorRule(3)
    b, computed = _branch(), []
    for step in range(10):
        dec = rule.decide(None, b, step, None, forced="first step" if step == 0 else None,
                          has_cache=step > 0)
        b.consecutive_skips = b.consecutive_skips + 1 if dec.skip else 0
        computed.append(not dec.skip)
    assert [i for i, c in enumerate(computed) if c] == [0, 3, 6, 9]


# ------------------------------------------------------------------ MagCache

def _mag_run(curve, thresh, k, forced_first=2):
    rule = peers.MagCacheRule({"cond": curve}, len(curve), thresh, k)
    b, out = _branch(), []
    for step in range(len(curve)):
        dec = rule.decide(None, b, step, None,
                          forced="first steps" if step < forced_first else None, has_cache=True)
        b.consecutive_skips = b.consecutive_skips + 1 if dec.skip else 0
        out.append(dec.skip)
    return out


def test_magcache_accumulates_one_minus_product_of_ratios():
    # ratio 0.9: the error after j skips is sum_{i<=j} (1 - 0.9^i): 0.1, 0.29, 0.561, ...
    curve = [1.0] * 2 + [0.9] * 8
    assert _mag_run(curve, thresh=0.3, k=10) == [False, False, True, True, False,
                                                  True, True, False, True, True]
    # a larger threshold allows a third skip (0.561), not a fourth (0.905)
    assert _mag_run(curve, thresh=0.6, k=10)[2:6] == [True, True, True, False]


def test_magcache_caps_consecutive_skips_at_k_and_keeps_the_retained_steps():
    curve = [1.0] * 10                       # no change at all: only K limits
    assert _mag_run(curve, thresh=1.0, k=2, forced_first=3) == [
        False, False, False, True, True, False, True, True, False, True]
    assert peers.retained_steps(0.2, 24) == 5 and peers.retained_steps(0.2, 6) == 1


def test_magcache_nearest_interp_as_theirs():
    assert peers.nearest_interp([1, 2, 3, 4, 5], 3) == [1, 3, 5]
    assert peers.nearest_interp([1, 2, 3], 1) == [3]


def test_magcache_ratio_recorder_is_the_mean_token_norm_ratio():
    curves = {}
    rec = peers.MagRatioRecorder(curves)
    run = SimpleNamespace(total_steps=3, step_index=lambda s: int(s))
    b = _branch()
    r0 = torch.ones(1, 4, 8)
    r1 = torch.ones(1, 4, 8) * torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 4, 1)
    rec.store(run, b, r0, 0.0, True)
    rec.store(run, b, r1, 1.0, True)
    assert curves["cond"][0] == 1.0 and math.isclose(curves["cond"][1], 2.5)


# ------------------------------------------------------------------ First Block Cache, DiCache

def test_first_block_cache_rule_thresholds_without_accumulating():
    rule = peers.FirstBlockRule(0.1)
    assert rule.compare_to_last_computed
    b = _branch()
    assert not rule.decide(None, b, 0, None, forced=None, has_cache=False).skip
    assert rule.decide(None, b, 1, 0.09, forced=None, has_cache=True).skip
    assert rule.decide(None, b, 2, 0.09, forced=None, has_cache=True).skip   # no accumulation
    assert not rule.decide(None, b, 3, 0.1, forced=None, has_cache=True).skip
    assert not rule.decide(None, b, 4, 0.0, forced="last", has_cache=True).skip


def test_dicache_gain_extrapolates_clipped_to_1_2():
    m = SimpleNamespace()
    est = peers.DiCacheEstimator(m)
    b = _branch()
    run = SimpleNamespace(branches={"k": b})
    m.slices = {"k": slice(None)}
    m.x0 = torch.zeros(1, 2)
    for p, rest in ((0.0, 1.0), (1.0, 3.0)):           # P: 0 -> 1, R (full) = p + rest: 1 -> 4
        m.probe_res = torch.full((1, 2), p)
        est.store(run, b, torch.full((1, 2), rest), 0.0, True)
    assert torch.equal(b.residual, torch.full((1, 2), 4.0))

    def skip(p_now, x0=0.0):
        m.probe_res = torch.full((1, 2), p_now)
        m.x0 = torch.full((1, 2), x0)
        return est.add_to(run, b, m.x0 + m.probe_res, 0.0)[0, 0].item()
    # g = |p - P[-2]| / |P[-1] - P[-2]|: 1.5 -> R[-2] + 1.5 (R[-1] - R[-2]) = 1 + 4.5
    assert skip(1.5) == pytest.approx(5.5)
    assert skip(0.5) == pytest.approx(4.0)                # g clipped up to 1: R[-1]
    assert skip(9.0) == pytest.approx(7.0)                # g clipped down to 2
    assert skip(1.5, x0=2.0) == pytest.approx(7.5)        # added to block 0's input


# ------------------------------------------------------------------ engine seams, real model

@pytest.fixture(scope="module")
def proxy():
    if not PROXY.exists():
        pytest.skip("models/wan_proxy.safetensors missing")
    import comfy.sd
    return comfy.sd.load_diffusion_model(str(PROXY))


def _sample(model, steps=8, sampler="euler", seed=5):
    from benchmarks.proxy import EVAL_PROMPTS, make_context, make_uncond_context
    from harness import sample
    pos = [[make_context(EVAL_PROMPTS[0]), {}]]
    neg = [[make_uncond_context(), {}]]
    return sample(model, torch.zeros(1, 16, 3, 16, 16), pos, neg, steps=steps, cfg=5.0,
                  seed=seed, sampler=sampler)


@pytest.mark.parametrize("group,param", [("First Block Cache", 0.0), ("DiCache", 0.0),
                                         ("TaylorSeer order 1", 1)])
def test_peer_that_never_skips_is_bit_identical_and_counts_probe_blocks(proxy, group, param):
    ref, n_ref = _sample(proxy)
    m = peers._make(group, param, {}).install(proxy)
    out, n = _sample(m)
    assert torch.equal(out, ref) and n == n_ref
    s = registration_of(m).last_summary
    assert s["calls"] >= 8 and s["calls_blocks_ran"] == s["calls"]


def test_probe_blocks_always_run_and_a_skip_covers_the_rest(proxy):
    blocks = len(proxy.get_model_object("diffusion_model").blocks)
    m = peers.FirstBlockCache(10.0).install(proxy)       # reuse whenever there is a cache
    _, n = _sample(m, steps=6)
    s = registration_of(m).last_summary
    skipped = sum(1 for r in s["branches"]["cond"] if not r["computed"])
    assert skipped == 5                                   # only the first call computes
    # block 0 at each of the 6 calls, the other blocks once (per call of the model: cond and
    # uncond batched into one call, or called separately)
    assert n in (6 + (blocks - 1), 2 * (6 + (blocks - 1)))


def test_magcache_calibration_and_run(proxy):
    curves = peers.calibrate_magcache(proxy, lambda m: _sample(m, steps=8))
    assert set(curves) == {"cond", "uncond"} and len(curves["cond"]) == 8
    assert curves["cond"][0] == 1.0 and all(0.1 < r < 10 for r in curves["cond"][1:])
    ref, n_ref = _sample(proxy)
    out, n = _sample(peers.MagCache(1.0, k=2, curves=curves).install(proxy))
    assert n < n_ref and torch.isfinite(out).all()


# ------------------------------------------------------------------ Spectrum (issue 24)

def test_spectrum_schedule_as_their_readme_counts_it():
    """README: window_size 2, flex 0.75 -> 14 full network passes of 50; flex 3.0 -> 10."""
    assert peers.spectrum_schedule(50, 5, 2, 0.75) == [0, 1, 2, 3, 4, 6, 8, 11, 15, 20, 25, 31,
                                                       38, 46]
    assert len(peers.spectrum_schedule(50, 5, 2, 3.0)) == 10
    assert peers.spectrum_schedule(10, 5, 2, 0.0) == [0, 1, 2, 3, 4, 6, 8]   # no flex: every 2nd
    assert peers.spectrum_schedule(6, 2, 1, 0.0) == list(range(6))           # floor(ws) 1: all


def _ridge_lstsq(steps, feats, t_max, m, lam, at):
    """Direct solve of the ridge problem min |X C - H|^2 + lam |C|^2 as ONE least-squares
    problem, [X; sqrt(lam) I] C = [H; 0] (numpy lstsq, float64), X = numpy's Chebyshev
    Vandermonde matrix at tau = 2 t / t_max - 1; returns the forecast at step `at`."""
    np = pytest.importorskip("numpy")
    from numpy.polynomial import chebyshev
    tau = 2.0 * np.asarray(steps, dtype=np.float64) / t_max - 1.0
    x = chebyshev.chebvander(tau, m)
    h = np.stack([f.reshape(-1).numpy() for f in feats])
    a = np.vstack([x, np.sqrt(lam) * np.eye(m + 1)])
    b = np.vstack([h, np.zeros((m + 1, h.shape[1]))])
    c = np.linalg.lstsq(a, b, rcond=None)[0]
    return torch.from_numpy(chebyshev.chebvander(np.array([2.0 * at / t_max - 1.0]), m) @ c)[0]


@pytest.mark.parametrize("steps_kept", [[0, 1, 2, 3, 4, 6, 8, 11], [0, 1, 3], [0, 2, 5, 9, 14]])
def test_spectrum_forecaster_is_the_ridge_least_squares_solution(steps_kept):
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(4, 3, 50, generator=gen, dtype=torch.float64)
    def feat(t):
        return base[0] + base[1] * t / 24 + base[2] * (t / 24) ** 3 + base[3] * math.sin(t)
    # the normal equations solved in float64 (tight), and in float32 as theirs (Cholesky)
    fcs = {tol: peers.SpectrumForecaster(m=4, lam=0.1, k=100, w=1.0, t_max=24,
                                         time_dtype=torch.float64, fit_dtype=fd)
           for tol, fd in ((1e-9, torch.float64), (1e-3, torch.float32))}
    for fc in fcs.values():
        for t in steps_kept:
            fc.update(t, feat(t))
    for at in (steps_kept[-1] + 1, steps_kept[-1] + 3, 23):
        want = _ridge_lstsq(steps_kept, fcs[1e-9].feats, 24, 4, 0.1, at).reshape(3, 50)
        scale = want.abs().max().item()
        for tol, fc in fcs.items():
            got = fc.predict(at)
            assert got.shape == (3, 50) and got.dtype == torch.float64
            assert (got - want).abs().max().item() <= tol * scale, (tol, at)
        # a forecast off by 1e-6 of its scale would fail the tight check
        assert (fcs[1e-9].predict(at) + 1e-6 * scale - want).abs().max().item() > 1e-9 * scale
    fc = fcs[1e-9]
    # w < 1 mixes in their order-1 discrete Taylor term along the last two computed steps
    fc.w = 0.5
    at = steps_kept[-1] + 2
    k = (at - steps_kept[-1]) / (steps_kept[-1] - steps_kept[-2])
    lin = feat(steps_kept[-1]) + k * (feat(steps_kept[-1]) - feat(steps_kept[-2]))
    want = 0.5 * lin + 0.5 * _ridge_lstsq(steps_kept, fc.feats, 24, 4, 0.1, at).reshape(3, 50)
    assert (fc.predict(at) - want).abs().max().item() <= 1e-9 * want.abs().max().item()


def test_spectrum_keeps_its_window_and_maps_time_as_theirs():
    fc = peers.SpectrumForecaster(m=4, lam=0.1, k=6, w=1.0, t_max=50)
    for t in range(9):
        fc.update(t, torch.full((2,), float(t)))
    assert fc.steps == [3, 4, 5, 6, 7, 8] and len(fc.feats) == 6       # the last K only
    # bfloat16 step times, as their DTYPE: tau(7) = (7 - 25) * 2 / 50 = -0.72, in bfloat16
    # (spacing 2^-8 there) -0.71875
    assert peers.spectrum_taus([7], 50).item() == -0.71875
    assert peers.spectrum_taus([7], 50, torch.float64).item() == pytest.approx(-0.72)
    x = peers.chebyshev_design(torch.tensor([0.3], dtype=torch.float64), 4)[0]
    assert torch.allclose(x, torch.tensor([1, 0.3, 2 * 0.09 - 1, 4 * 0.027 - 3 * 0.3,
                                           8 * 0.0081 - 8 * 0.09 + 1], dtype=torch.float64))
    with pytest.raises(ValueError):
        peers.SpectrumForecaster(m=4, k=5)                             # theirs: K >= M + 2


def test_spectrum_held_tensors_counts_features_and_coefficients():
    # README schedule at 50 steps: 14 features, + 5 coefficients from the first skip after
    # a computed step (the last skips follow step 46, the 14th computed)
    assert peers.spectrum_held_tensors(50, 5, 2, 0.75) == 14 + 5
    assert peers.spectrum_held_tensors(6, 6, 2, 0.0) == 6                # never fitted


def _hidden_bytes(latent_frames=3):
    return latent_frames * 8 * 8 * 128 * 4      # tokens (patch 1x2x2) x dim 128 x float32


def test_spectrum_with_every_step_computed_is_bit_identical(proxy):
    ref, n_ref = _sample(proxy)
    m = peers.Spectrum(0.0, window=1).install(proxy)     # floor(ws) = 1: every step computes
    out, n = _sample(m)
    assert torch.equal(out, ref) and n == n_ref
    s = registration_of(m).last_summary
    assert s["calls"] >= 8 and s["calls_blocks_ran"] == s["calls"]
    # it still keeps every computed step's feature (8 per cond) and no coefficients
    held = s["peak_cache_bytes"] - 2 * 8 * _hidden_bytes()
    assert 0 <= held < 64, s["peak_cache_bytes"]


@pytest.mark.parametrize("flex,warmup,w", [(0.75, 2, 0.5), (3.0, 2, 1.0), (0.0, 5, 0.5)])
def test_spectrum_on_the_proxy_computes_its_schedule_and_forecasts(proxy, flex, warmup, w):
    steps = 8
    ref, n_ref = _sample(proxy, steps=steps)
    m = peers.Spectrum(flex, window=2, warmup=warmup, w=w).install(proxy)
    out, n = _sample(m, steps=steps)
    sched = peers.spectrum_schedule(steps, warmup, 2, flex)
    assert len(sched) < steps
    s = registration_of(m).last_summary
    for lab in ("cond", "uncond"):
        assert [r["step"] for r in s["branches"][lab] if r["computed"]] == sched
    assert n * steps == n_ref * len(sched)                # block runs follow the schedule
    assert torch.isfinite(out).all() and not torch.equal(out, ref)
    held = peers.spectrum_held_tensors(steps, warmup, 2, flex)
    assert 0 <= s["peak_cache_bytes"] - 2 * held * _hidden_bytes() < 64, s["peak_cache_bytes"]


def test_spectrum_skipped_call_returns_the_forecast_not_the_input():
    """The estimator ignores the blocks' input at a skip: the output is the forecaster's."""
    method = peers.Spectrum(1.0, w=1.0, t_max=10)
    est = method.make_estimator(None)
    b = _branch()
    run = SimpleNamespace(total_steps=10, step_index=lambda s: int(s), branches={"k": b},
                          note_cache_size=lambda: None)
    for t in (0, 1, 2):
        x = torch.randn(1, 4, 2)
        buf = est.input_copy(run, b, x, True)
        assert torch.equal(buf, torch.zeros_like(x))       # output - zeros = the output
        est.store(run, b, torch.full((1, 4, 2), float(t)), float(t), True)
    assert b.residual is est.fc["cond"].feats[-1]
    x = torch.randn(1, 4, 2)
    got = est.add_to(run, b, x, 4.0)
    assert torch.equal(got, est.fc["cond"].predict(4))
    assert not torch.equal(got, x) and torch.isfinite(got).all()
    out = torch.empty(1, 4, 2)
    assert est.add_to(run, b, x, 4.0, out=out) is out and torch.equal(out, got)


def test_teaspectrum_forecasts_the_residual_over_a_bounded_history(proxy):
    """TeaCache's decisions with Spectrum's forecaster on the residual (benchmark idea, issue
    24): threshold 0 is the uncached model; with skips the history stays at K = 6 residuals."""
    ref, n_ref = _sample(proxy, steps=12)
    out, n = _sample(peers.TeaSpectrum(0.0).install(proxy), steps=12)
    assert torch.equal(out, ref) and n == n_ref
    m = peers.TeaSpectrum(0.1).install(proxy)
    out, n = _sample(m, steps=12)
    s = registration_of(m).last_summary
    assert n < n_ref and torch.isfinite(out).all()
    computed = [r["step"] for r in s["branches"]["cond"] if r["computed"]]
    assert computed[0] == 0 and computed[-1] == 11            # TeaCache's first and last step
    # per cond: at most K residuals + M + 1 coefficients + the (hidden-size) indicator
    per_cond = s["peak_cache_bytes"] / (2 * _hidden_bytes())
    assert 1 + 5 < per_cond <= 6 + 5 + 1 + 1e-3, per_cond


def test_peer_table_best_front_5x_column_and_memory_at_wan14b_720p():
    from benchmarks.peers_table import envelope
    from benchmarks.tables import held_at_real_size, render_same_reduction
    from comfyui_teacache.teacache_core.memory import estimate

    def row(group, red, p, mem=None):
        return {"sampler": "euler", "method": f"{group} {red}", "group": group, "param": red,
                "blocks": 144 / red, "reduction": red, "psnr": p, "psnr_worst": p - 1,
                "ssim": 0.9, "ssim_worst": 0.8, "cache_bytes": mem}
    rows = [row("Spectrum", 2.0, 40.0, 19 * 2 * 1024), row("Spectrum", 3.0, 30.0),
            row("Spectrum x", 3.0, 35.0), row("Spectrum x", 6.0, 20.0),
            row("Spectrum x", 2.0, 39.0)]
    front = envelope(rows, "Spectrum", "Spectrum (best of all)")
    assert [(r["reduction"], r["psnr"]) for r in front] == [(2.0, 40.0), (3.0, 35.0), (6.0, 20.0)]
    text = render_same_reduction(rows + front, (2.0, 3.0, 4.0, 5.0), hidden_bytes=1024)
    assert "| 5x PSNR | 5x SSIM |" in text
    assert "| Spectrum (best of all) | **40.0 / 39.0** |" in text
    assert "| Spectrum | 38 KiB | 19.00 | 27.4 GiB |" in text          # 19 tensors per cond
    # memory.py's formula: one hidden-state tensor per cond, both conds, Wan 14B 720p bf16
    one = estimate(75_600, 5120, 2, conds=2, indicator_is_hidden=False).device_held
    assert held_at_real_size(1) == one == 2 * 75_600 * 5120 * 2
    assert held_at_real_size(19) == 19 * one


# ------------------------------------------------------------------ benchmark harness

@pytest.mark.skipif(not PROXY.exists(), reason="models/wan_proxy.safetensors missing")
def test_benchmark_quick_peer_rows(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_benchmark.py"), "--quick",
                        "--threads", "1", "--methods", ",".join(peers.GROUPS),
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "results.json").read_text())
    rows = {row["method"]: row for row in res["fidelity"]}
    unc = rows["uncached"]
    got = {row["group"] for row in res["fidelity"]} - {"none"}
    assert got == set(peers.GROUPS)
    for row in res["fidelity"]:
        if row["group"] == "none":
            continue
        assert row["blocks"] < unc["blocks"] and math.isfinite(row["psnr"]), row
        assert row["cache_bytes"] > 0
        variant = peers.SPECTRUM_VARIANTS.get(row["group"])
        if variant is not None:          # Spectrum: the block count is its schedule's (6 steps)
            sched = peers.spectrum_schedule(6, variant.get("warmup", peers.SPECTRUM_WARMUP),
                                            variant.get("window", peers.SPECTRUM_WINDOW),
                                            row["param"])
            assert row["blocks"] * 6 == unc["blocks"] * len(sched), row
    assert set(res["matched"][0]["groups"]) == set(peers.GROUPS)


# ------------------------------------------------------------------ DiCache's gain in TeaCache

def test_indicator_gain_is_accumulation_since_over_accumulation_of_the_last_interval():
    from benchmarks.estimators import indicator_gain, last_interval_accumulation
    from comfyui_teacache.teacache_core.state import StepRecord

    def rec(step, rescaled, computed):
        return StepRecord(step, 1.0 - step / 10, rescaled, rescaled, 0.0, computed, "")
    b = _branch()
    b.records = [rec(0, None, True), rec(1, 0.1, False), rec(2, 0.3, False)]
    assert last_interval_accumulation(b.records) is None          # one computed call only
    assert indicator_gain(b) == 0.0                               # -> the cached residual
    b.records = [rec(0, None, True), rec(1, 0.1, True), rec(2, 0.1, False), rec(3, 0.3, True),
                 rec(4, 0.2, False)]
    assert last_interval_accumulation(b.records) == pytest.approx(0.4)
    b.accumulated = 0.2
    assert indicator_gain(b) == pytest.approx(0.5)
    b.accumulated = 0.9
    assert indicator_gain(b) == 1.0 and indicator_gain(b, cap=0.5) == 0.5
