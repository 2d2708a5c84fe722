"""Peer caching methods re-implemented on this pack's block gates, for the benchmark only.

Each method keeps its own decision rule and skip estimate, written from its paper and official
code (cited at every rule and default below), and runs through the same gates as TeaCache: the
same model forward, the same block counting (probe blocks run through their gate and count).
Nothing here is used by the nodes.

How a method is installed: `apply_teacache(model, config)` builds the usual registration; the
method then sets `reg.decision_block` (blocks before it always run: the probe) and
`reg.customize_run`, which replaces on every new RunState what the per-call path asks
(`run.rule`, `run.estimator`, and where needed `run.indicator` / `run.probe_input`) and the
forced warm-up (`run.forced_first`; `run.retention = True` = the last step is not forced, as in
none of these peers' code).

Deviations common to all (the pack's conventions, kept so that every method is counted alike):
- one decision per cond (ComfyUI's uuid), from the step of the schedule the call belongs to;
  the official Wan code of MagCache, DiCache and TaylorSeer also keeps cond and uncond apart
  (a call counter mod 2), First Block Cache (ParaAttention) decides once per batched call;
- residuals are taken over the blocks' residual stream only (the embeddings and head run).
"""
from __future__ import annotations

import math

import torch

from comfyui_teacache.teacache_core.config import TeaCacheConfig
from comfyui_teacache.teacache_core.engine import call_chunks
from comfyui_teacache.teacache_core.patching import apply_teacache
from comfyui_teacache.teacache_core.policy import Decision, ThresholdRule
from comfyui_teacache.teacache_core.tensors import add_estimate


# ------------------------------------------------------------------------- shared pieces

def _bytes(*ts) -> int:
    return sum(t.numel() * t.element_size() for t in ts if isinstance(t, torch.Tensor))


def _tiny_indicator(ctx, key, args):
    """For rules that do not look at an indicator (MagCache, TaylorSeer): one zero per batch
    row, so nothing of hidden-state size is held as a 'previous indicator'."""
    x = ctx.run.owner.adapter.block_input(key, args)
    return torch.zeros(x.shape[0], 1, dtype=torch.float32, device=x.device)


def _branch_key(run, b):
    for k, v in run.branches.items():
        if v is b:
            return k
    raise KeyError(b.label)


class ReuseEstimator:
    """A skipped call adds the residual of the last computed call: MagCache ("x = x +
    residual_x", MagCache4Wan2.1/magcache_generate.py, magcache_forward) and First Block Cache
    (apply_prev_hidden_states_residual, para_attn/first_block_cache/utils.py)."""

    def input_copy(self, run, b, x, line_ok):
        return x.clone()

    def store(self, run, b, residual, sigma, line_ok):
        b.residual, b.residual_sigma = residual, sigma

    def add_to(self, run, b, x, sigma, out=None):
        return add_estimate(x, b.residual, out=out)

    def held(self, run) -> int:
        return 0


def _note_sizes(run, estimator):
    """RunState.note_cache_size, counting what the method's estimator holds as well."""
    def note():
        n = estimator.held(run)
        for b in run.branches.values():
            n += _bytes(b.residual, b.prev_residual, b.prev_indicator, b.prev_output)
        run.peak_cache_bytes = max(run.peak_cache_bytes, n)
    return note


class PeerMethod:
    """Base: install on a model; make the per-run rule/estimator/hooks."""
    group = ""
    decision_block = 0

    def install(self, model):
        m, reg = apply_teacache(model, TeaCacheConfig(1.0))     # thresh > 0: residuals kept
        reg.decision_block = self.decision_block
        reg.customize_run = self.customize
        return m

    def customize(self, run):
        run.retention = True                 # none of the peers forces the last step
        run.forced_first = self.forced_first(run.total_steps)
        run.rule = self.make_rule(run)
        run.estimator = self.make_estimator(run)
        run.note_cache_size = _note_sizes(run, run.estimator)
        self.hooks(run)

    def forced_first(self, steps: int) -> int:
        return 1

    def hooks(self, run):
        pass


def retained_steps(ratio: float, steps: int) -> int:
    """First steps always computed for a retention ratio. Official Wan code (MagCache,
    DiCache) counts calls of both conds: `cnt >= int(num_steps * ratio)` with num_steps =
    2 x steps; per cond this keeps the first round(ratio x steps) steps (within one step)."""
    return max(1, int(math.floor(ratio * steps + 0.5)))


# ------------------------------------------------------------------------- MagCache

# Defaults of the official Wan 2.1 script (MagCache4Wan2.1/magcache_generate.py, argparse):
# --magcache_thresh 0.12, --retention_ratio 0.2, --magcache_K 2. ComfyUI-MagCache (nodes.py)
# offers thresh 0-0.3 (default 0.06), retention 0.1-0.3, K 0-6.
MAGCACHE_RETENTION = 0.2
MAGCACHE_K = 2


class MagRatioRecorder(ReuseEstimator):
    """Calibration (MagCache's magcache_calibration): at every computed step, per cond, the
    magnitude ratio of consecutive residuals, mean over tokens of ||r_t|| / ||r_t-1|| (norm over
    the channel dim, `residual_x.norm(dim=-1)`); the first step has none (their [1.0]*2)."""

    def __init__(self, ratios: dict):
        self.ratios = ratios

    def store(self, run, b, residual, sigma, line_ok):
        step = run.step_index(sigma)
        curve = self.ratios.setdefault(b.label, [1.0] * run.total_steps)
        if b.residual is not None and b.residual.shape == residual.shape:
            r = residual.float().norm(dim=-1) / b.residual.float().norm(dim=-1)
            curve[step] = float(r.mean())
        super().store(run, b, residual, sigma, line_ok)


class _AlwaysCompute:
    def decide(self, run, branch, step, distance, *, forced, has_cache):
        return Decision(False, 0.0, None, forced or "calibrating")

    def describe_limit(self):
        return "calibration"


def nearest_interp(curve, n):
    """MagCache's nearest_interp (magcache_generate.py): resample a ratio curve to n steps."""
    m = len(curve)
    if n == 1:
        return [curve[-1]]
    scale = (m - 1) / (n - 1)
    return [curve[int(round(i * scale))] for i in range(n)]


class MagCacheRule:
    """MagCache (arXiv 2506.09045; magcache_forward in MagCache4Wan2.1/magcache_generate.py and
    ComfyUI-MagCache nodes.py): per cond, after the retained steps, accumulated ratio *=
    ratio[step], steps += 1, err += |1 - accumulated ratio|; skip while err < thresh and
    steps <= K, otherwise compute and reset (ratio 1, err 0, steps 0)."""

    def __init__(self, curves: dict, total_steps: int, thresh: float, k: int):
        self.thresh, self.k = thresh, k
        self.curves = {lab: (c if len(c) == total_steps else nearest_interp(c, total_steps))
                       for lab, c in curves.items()}
        self.acc = {}                        # label -> [ratio, steps, err]

    def decide(self, run, branch, step, distance, *, forced, has_cache):
        lab = branch.label.split("#")[0]
        st = self.acc.setdefault(branch.label, [1.0, 0, 0.0])
        if forced is not None:               # retained steps: nothing accumulates
            return Decision(False, 0.0, None, forced)
        curve = self.curves.get(lab) or next(iter(self.curves.values()))
        st[0] *= curve[min(step, len(curve) - 1)]
        st[1] += 1
        err_now = abs(1.0 - st[0])
        st[2] += err_now
        if st[2] < self.thresh and st[1] <= self.k and has_cache:
            return Decision(True, st[2], err_now, "accumulated error below threshold")
        why = ("no cached residual yet" if not has_cache else
               "K consecutive skips reached" if st[1] > self.k else "threshold reached")
        st[:] = [1.0, 0, 0.0]
        return Decision(False, 0.0, err_now, why)

    def describe_limit(self):
        return f"{self.thresh:g} (K {self.k})"


class MagCache(PeerMethod):
    def __init__(self, thresh, k=MAGCACHE_K, retention=MAGCACHE_RETENTION, curves=None):
        self.thresh, self.k, self.retention = thresh, k, retention
        self.curves = curves        # shared dict label -> ratio per step (calibrate() fills it)
        self.group = "MagCache" if (k, retention) == (MAGCACHE_K, MAGCACHE_RETENTION) else \
            f"MagCache K{k} ret{retention:g}"

    def forced_first(self, steps):
        return retained_steps(self.retention, steps)

    def make_rule(self, run):
        if not self.curves:
            raise RuntimeError("MagCache needs its ratio curve: run calibrate_magcache first")
        return MagCacheRule(self.curves, run.total_steps, self.thresh, self.k)

    def make_estimator(self, run):
        return ReuseEstimator()

    def hooks(self, run):
        run.indicator = _tiny_indicator


class MagCacheCalibration(PeerMethod):
    """One uncached pass through the gates that records the ratio curve into `curves`."""
    group = "MagCache calibration"

    def __init__(self, curves: dict):
        self.curves = curves

    def make_rule(self, run):
        return _AlwaysCompute()

    def make_estimator(self, run):
        return MagRatioRecorder(self.curves)

    def hooks(self, run):
        run.indicator = _tiny_indicator


def calibrate_magcache(model, sample) -> dict:
    """MagCache calibration as its authors do it: ONE prompt sampled without skipping, the
    per-step, per-cond magnitude ratios recorded. `sample(m)` samples with model m."""
    curves: dict = {}
    sample(MagCacheCalibration(curves).install(model))
    return curves


# ------------------------------------------------------------------------- DiCache

# Defaults of the official Wan 2.1 script (DiCache WAN2.1/run_wan_dicache.py): probe_depth 1,
# --rel_l1_thresh 0.08, --ret_ratio 0.2, error "delta_y" (the probe output's relative L1 change
# between consecutive calls, accumulated), gain clipped to [1, 2] (FLUX script: [1, 1.5]).
DICACHE_PROBE_DEPTH = 1
DICACHE_RETENTION = 0.2
DICACHE_GAIN_CLIP = (1.0, 2.0)


class DiCacheEstimator:
    """DiCache's trajectory alignment (arXiv 2508.17356; run_wan_dicache.py): it keeps, per
    cond, the last two full residuals R (block 0 input -> last block output) and probe
    residuals P (block 0 input -> probe output) of computed calls; a skipped call returns
    x0 + R[-2] + g (R[-1] - R[-2]) with g = mean|p - P[-2]| / mean|P[-1] - P[-2]| clipped to
    [1, 2], p the probe residual of this call (x0 + R[-1] while only one is cached)."""

    def __init__(self, method):
        self.m = method
        self.R, self.P = {}, {}              # branch label -> [older, newer]

    def input_copy(self, run, b, x, line_ok):
        return x.clone()

    def store(self, run, b, residual, sigma, line_ok):
        # residual covers the blocks after the probe; add the probe's own residual
        sl = self.m.slices[_branch_key(run, b)]
        p = self.m.probe_res[sl].clone()
        full = residual.add_(p)
        r, pw = self.R.setdefault(b.label, []), self.P.setdefault(b.label, [])
        r.append(full)
        pw.append(p)
        del r[:-2], pw[:-2]
        b.residual, b.residual_sigma = full, sigma   # has_cache reads b.residual (= R[-1])

    def add_to(self, run, b, x, sigma, out=None):
        sl = self.m.slices[_branch_key(run, b)]
        x0, p = self.m.x0[sl], self.m.probe_res[sl]
        r, pw = self.R[b.label], self.P[b.label]
        if len(r) >= 2:
            den = float((pw[-1] - pw[-2]).abs().mean())
            g = float((p - pw[-2]).abs().mean()) / den if den > 0 else DICACHE_GAIN_CLIP[1]
            g = min(max(g, DICACHE_GAIN_CLIP[0]), DICACHE_GAIN_CLIP[1])
            est = r[-2] + g * (r[-1] - r[-2])
        else:
            est = r[-1]
        return add_estimate(x0, est, out=out)

    def held(self, run) -> int:
        # R[-1] is b.residual (counted with the branches)
        return sum(_bytes(*v[:-1]) for v in self.R.values()) + \
            sum(_bytes(*v) for v in self.P.values())


class DiCache(PeerMethod):
    def __init__(self, thresh, probe_depth=DICACHE_PROBE_DEPTH, retention=DICACHE_RETENTION):
        self.thresh, self.retention = thresh, retention
        self.decision_block = probe_depth
        self.group = "DiCache" if retention == DICACHE_RETENTION else f"DiCache ret{retention:g}"

    def forced_first(self, steps):
        return retained_steps(self.retention, steps) if self.retention > 0 else 1

    def make_rule(self, run):
        # identity-rescaled accumulation of the probe's relative L1, reset on compute: the
        # pack's ThresholdRule without coefficients is exactly DiCache's "delta_y" rule
        return ThresholdRule(self.thresh, None)

    def make_estimator(self, run):
        return DiCacheEstimator(self)

    def hooks(self, run):
        ad = run.owner.adapter
        self.x0 = self.probe_res = None
        self.slices = {}

        def probe_input(ctx, key, position, args):
            if position == 0:
                self.x0 = ad.block_input(key, args)

        def indicator(ctx, key, args):
            y = ad.block_input(key, args)            # the probe's output
            self.probe_res = y - self.x0
            self.slices = {ch.key: ch.sl for ch in call_chunks(ctx.transformer_options,
                                                               y.shape[0])}
            return y.clone()                          # compared with the previous call's
        run.probe_input, run.indicator = probe_input, indicator


# ------------------------------------------------------------------------- TaylorSeer

# Defaults of the official Wan 2.1 code (TaylorSeer-Wan2.1/wan/taylorseer/cache_functions/
# cache_init.py, mode 'Taylor'): fresh_threshold (interval N) 5, max_order 1, first_enhance 1.
TAYLOR_FIRST_ENHANCE = 1


class TaylorRule:
    """TaylorSeer's schedule (cal_type.py): full compute for the first `first_enhance` steps,
    then one full step every N (a full step after N-1 forecast ones)."""

    def __init__(self, interval: int):
        self.n = interval

    def decide(self, run, branch, step, distance, *, forced, has_cache):
        if forced is not None:
            return Decision(False, 0.0, None, forced)
        if not has_cache or branch.consecutive_skips >= self.n - 1:
            return Decision(False, 0.0, None, "interval" if has_cache else "no cache yet")
        return Decision(True, float(branch.consecutive_skips + 1), None, "Taylor forecast")

    def describe_limit(self):
        return f"N={self.n}"


def taylor_update(old, feature, distance, order):
    """TaylorSeer's derivative_approximation (taylor_utils/__init__.py): factor 0 is the
    feature; factor i+1 = (factor i - previous factor i) / distance in steps, as far as the
    previous step had factor i and up to max_order."""
    new = [feature]
    for i in range(order):
        if old is not None and i < len(old) and distance:
            new.append((new[i] - old[i]) / distance)
        else:
            break
    return new


def taylor_forecast(factors, dx):
    """TaylorSeer's taylor_formula: sum_i factor_i * dx^i / i!."""
    out = factors[0].clone() if len(factors) > 1 else factors[0]
    for i in range(1, len(factors)):
        out = out + factors[i] * (dx ** i / math.factorial(i))
    return out


class TaylorEstimator:
    """Per cond the Taylor factors of the blocks' residual at the last full step (TaylorSeer
    keeps them per layer module; here, on the pack's gates, for the residual of all blocks)."""

    def __init__(self, order):
        self.order = order
        self.factors, self.step = {}, {}

    def input_copy(self, run, b, x, line_ok):
        return x.clone()

    def store(self, run, b, residual, sigma, line_ok):
        s = run.step_index(sigma)
        old, k = self.factors.get(b.label), self.step.get(b.label)
        self.factors[b.label] = taylor_update(old, residual, None if k is None else s - k,
                                              self.order)
        self.step[b.label] = s
        b.residual, b.residual_sigma = residual, sigma

    def add_to(self, run, b, x, sigma, out=None):
        dx = run.step_index(sigma) - self.step[b.label]
        return add_estimate(x, taylor_forecast(self.factors[b.label], dx), out=out)

    def held(self, run) -> int:
        return sum(_bytes(*f[1:]) for f in self.factors.values())   # f[0] is b.residual


class TaylorSeer(PeerMethod):
    def __init__(self, interval, order=1, first_enhance=TAYLOR_FIRST_ENHANCE):
        self.interval, self.order, self.first = interval, order, first_enhance
        self.group = f"TaylorSeer order {order}"

    def forced_first(self, steps):
        return self.first

    def make_rule(self, run):
        return TaylorRule(self.interval)

    def make_estimator(self, run):
        return TaylorEstimator(self.order)

    def hooks(self, run):
        run.indicator = _tiny_indicator


# ------------------------------------------------------------------------- First Block Cache

class FirstBlockRule:
    """First Block Cache (ParaAttention para_attn/first_block_cache/utils.py, get_can_use_cache
    / are_two_tensors_similar; Comfy-WaveSpeed): the relative L1 change of block 0's residual,
    mean|prev - cur| / mean|prev|, against the one stored at the last COMPUTED call; below the
    threshold the remaining blocks' cached residual is reused (no accumulation, no warm-up:
    warmup_steps 0, no cap on consecutive reuses)."""
    compare_to_last_computed = True      # engine: keep the indicator of the last computed call

    def __init__(self, thresh):
        self.thresh = thresh

    def decide(self, run, branch, step, distance, *, forced, has_cache):
        if forced is not None or distance is None:
            return Decision(False, 0.0, distance, forced or "no first-block residual yet")
        if distance < self.thresh and has_cache:
            return Decision(True, distance, distance, "first-block residual similar")
        return Decision(False, 0.0, distance, "first-block residual changed")

    def describe_limit(self):
        return f"{self.thresh:g}"


class FirstBlockCache(PeerMethod):
    group = "First Block Cache"
    decision_block = 1

    def __init__(self, thresh):
        self.thresh = thresh

    def make_rule(self, run):
        return FirstBlockRule(self.thresh)

    def make_estimator(self, run):
        return ReuseEstimator()

    def hooks(self, run):
        ad = run.owner.adapter
        self.x0 = None

        def probe_input(ctx, key, position, args):
            if position == 0:
                self.x0 = ad.block_input(key, args)

        def indicator(ctx, key, args):
            return ad.block_input(key, args) - self.x0      # block 0's residual
        run.probe_input, run.indicator = probe_input, indicator


# ------------------------------------------------------------------------- Spectrum

# Spectrum (arXiv 2603.01623, CVPR 2026; hanjq17/Spectrum). Defaults, with where they are set:
#   configs/algo/spectrum.yaml: w 1.0 (pure Chebyshev), m 4, lam 0.1;
#   configs/base.yaml: warmup_steps 5, num_inference_steps 50, window_size null (must be
#     given), flex_window false;
#   README.md and scripts/run_mp_video.sh / run_mp_image.sh: w 0.5, lam 0.1, m 4,
#     window_size 2 with flex_window 0.75 ("14 full network passes", about 3.5x at 50 steps) or
#     3.0 ("10 network passes", about 5x);
#   src/utils/__init__.py (step_derivative_approximation): ChebyshevForecaster(M, K=100, lam)
#     wrapped in Spectrum(taylor_order=1, w=W): K = 100 keeps every computed step of a run;
#   src/utils/basis_utils.py: step times, tau and the basis in bfloat16 (DTYPE), tau over a
#     fixed [0, 50] (t_min / t_max hard-coded, the adaptive min/max commented out), ridge
#     normal equations solved in float32 by Cholesky (jitter 1e-6 x mean diagonal on failure),
#     coefficients cast back to DTYPE.
SPECTRUM_M = 4
SPECTRUM_LAM = 0.1
SPECTRUM_K = 100
SPECTRUM_WARMUP = 5
SPECTRUM_WINDOW = 2
SPECTRUM_W_README = 0.5
SPECTRUM_W_CONFIG = 1.0
SPECTRUM_TIME_DTYPE = torch.bfloat16
SPECTRUM_OFFICIAL_T_MAX = 50          # = their num_inference_steps; here: the run's steps


class SpectrumSchedule:
    """Spectrum's schedule for one cond (src/pipelines/wan_forward.py, our_wan_forward; the
    same in hunyuan_forward.py and flux_forward.py): the first `warmup` calls compute; after
    them a call computes when (calls skipped since the last computed one + 1) is a multiple of
    floor(ws), and every computed call then grows ws by `flex` (rounded to 3 decimals, as
    theirs). ws starts at the window size. Nothing here looks at the content."""

    def __init__(self, warmup: int, window: float, flex: float):
        self.warmup, self.flex = warmup, flex
        self.calls, self.since, self.ws = 0, 0, float(window)

    def next(self) -> bool:
        compute = True
        if self.calls >= self.warmup:
            compute = (self.since + 1) % math.floor(self.ws) == 0
            if compute:
                self.ws = round(self.ws + self.flex, 3)
        self.calls += 1
        self.since = 0 if compute else self.since + 1
        return compute


def spectrum_schedule(steps: int, warmup: int = SPECTRUM_WARMUP, window: float = SPECTRUM_WINDOW,
                      flex: float = 0.0) -> list:
    """The steps Spectrum computes in a run of `steps` (one call per step per cond)."""
    s = SpectrumSchedule(warmup, window, flex)
    return [i for i in range(steps) if s.next()]


def spectrum_taus(t, t_max: float, dtype=SPECTRUM_TIME_DTYPE) -> torch.Tensor:
    """Step index -> tau in [-1, 1] as basis_utils.BaseForecaster._taus: affine over
    [0, t_max], each operation in `dtype` (theirs: bfloat16, t_max 50)."""
    t = torch.as_tensor(t, dtype=dtype)
    lo = torch.zeros(1, dtype=dtype)
    hi = torch.full((1,), float(t_max), dtype=dtype)
    return (t - 0.5 * (lo + hi)) * 2.0 / (hi - lo)


def chebyshev_design(taus: torch.Tensor, m: int) -> torch.Tensor:
    """[n, m + 1]: T_0 .. T_m of the first kind at `taus` by the recurrence
    T_k = 2 tau T_k-1 - T_k-2, in taus' dtype (ChebyshevForecaster._build_design)."""
    taus = taus.reshape(-1, 1)
    cols = [torch.ones_like(taus), taus]
    for _ in range(2, m + 1):
        cols.append(2 * taus * cols[-1] - cols[-2])
    return torch.cat(cols[:m + 1], dim=1)


class SpectrumForecaster:
    """One cond's forecaster (basis_utils.ChebyshevForecaster inside basis_utils.Spectrum).
    Keeps (step, feature) of the last K computed calls; at a skipped call fits coefficients C
    ([M + 1, features]) by ridge regression, (X^T X + lam I) C = X^T H with X the Chebyshev
    design at the kept steps, refitted only after the window changed; forecasts
    h = (1 - w) h_lin + w x(t*) C, with h_lin their order-1 discrete Taylor term
    h[-1] + k (h[-1] - h[-2]), k = (t* - t[-1]) / (t[-1] - t[-2]) (h[-1] with one point).

    Deviations: features are kept as separate tensors in the model's dtype (theirs: one
    concatenated [K, F] buffer, re-copied at every update, in the model's dtype too), X^T H is
    accumulated in float32 over bounded slices of the features instead of a float32 copy of
    the whole buffer, and C is kept in the model's dtype (theirs: bfloat16, which is the
    model's dtype on every model they run)."""

    SLICE = 1 << 20         # features per slice of the fit: n x 4 MiB of float32 at most

    def __init__(self, m=SPECTRUM_M, lam=SPECTRUM_LAM, k=SPECTRUM_K, w=SPECTRUM_W_CONFIG,
                 t_max=SPECTRUM_OFFICIAL_T_MAX, time_dtype=SPECTRUM_TIME_DTYPE,
                 fit_dtype=torch.float32):
        if k < m + 2:
            raise ValueError("K should exceed the basis size (theirs asserts K >= M + 2)")
        self.m, self.lam, self.k, self.w = m, lam, k, w
        self.t_max, self.time_dtype, self.fit_dtype = t_max, time_dtype, fit_dtype
        self.steps: list = []
        self.feats: list = []
        self.coef = None            # [M + 1, F], model dtype; dropped when the window changes

    def update(self, step: int, h: torch.Tensor):
        if self.feats and h.shape != self.feats[-1].shape:
            raise ValueError("Spectrum: the feature shape must stay the same within a run")
        self.steps.append(step)
        self.feats.append(h)
        del self.steps[:-self.k], self.feats[:-self.k]
        self.coef = None

    def design(self, steps) -> torch.Tensor:
        return chebyshev_design(spectrum_taus(steps, self.t_max, self.time_dtype), self.m)

    def fit(self):
        fd = self.fit_dtype                                            # theirs: float32
        x = self.design(self.steps).to(fd)                             # [n, P]
        p = x.shape[1]
        xtx = x.T @ x + self.lam * torch.eye(p, dtype=fd)
        try:
            chol = torch.linalg.cholesky(xtx)
        except RuntimeError:
            jitter = 1e-6 * xtx.diag().mean()
            chol = torch.linalg.cholesky(xtx + jitter * torch.eye(p, dtype=fd))
        ref = self.feats[-1]
        flat = [f.reshape(-1) for f in self.feats]
        x = x.to(ref.device)
        chol = chol.to(ref.device)
        coef = torch.empty(p, ref.numel(), dtype=ref.dtype, device=ref.device)
        for i in range(0, ref.numel(), self.SLICE):
            h = torch.stack([f[i:i + self.SLICE] for f in flat]).to(fd)             # [n, s]
            coef[:, i:i + self.SLICE] = torch.cholesky_solve(x.T @ h, chol).to(ref.dtype)
        self.coef = coef

    def predict(self, step: int) -> torch.Tensor:
        if self.coef is None:
            self.fit()
        ref = self.feats[-1]
        xs = self.design([step]).to(device=ref.device, dtype=ref.dtype)     # [1, P]
        h = (xs @ self.coef).reshape(ref.shape)
        if self.w == 1.0:           # theirs adds 0 x the Taylor term: the same numbers
            return h
        lin = ref
        if len(self.feats) >= 2:
            td = self.time_dtype
            t1 = torch.tensor(self.steps[-1], dtype=td)
            t0 = torch.tensor(self.steps[-2], dtype=td)
            kk = ((torch.tensor(step, dtype=td) - t1) / (t1 - t0).clamp_min(1e-8)).to(ref.dtype)
            lin = ref + kk.to(ref.device) * (ref - self.feats[-2])
        return (1 - self.w) * lin + self.w * h

    def held(self) -> list:
        return self.feats + ([self.coef] if self.coef is not None else [])


class SpectrumRule:
    """SpectrumSchedule per cond; the warm-up comes through run.forced_first (the engine's
    forced steps), so the schedule sees every call as theirs does."""

    def __init__(self, warmup, window, flex):
        self.args = (warmup, window, flex)
        self.per_cond = {}

    def decide(self, run, branch, step, distance, *, forced, has_cache):
        sched = self.per_cond.setdefault(branch.label, SpectrumSchedule(*self.args))
        compute = sched.next()
        if forced is not None or compute or not has_cache:
            return Decision(False, 0.0, None, forced or ("window" if compute else "no cache yet"))
        return Decision(True, float(sched.since), None, "Chebyshev forecast")

    def describe_limit(self):
        w, n, f = self.args
        return f"warm-up {w}, window {n:g}, flex {f:g}"


class SpectrumEstimator:
    """The forecast target is the hidden state after the last transformer block (theirs:
    `feat` after `self.blocks` in our_wan_forward; the head then runs on the forecast): a
    computing cond's 'input copy' is zeros, so the engine's residual (output - copy) is that
    hidden state itself, bit for bit; a skipped call returns the forecast, whatever the
    blocks' input."""

    def __init__(self, method):
        self.m = method
        self.fc = {}                      # branch label -> SpectrumForecaster

    def _fc(self, run, b):
        f = self.fc.get(b.label)
        if f is None:
            f = self.fc[b.label] = SpectrumForecaster(
                self.m.m, self.m.lam, self.m.k, self.m.w, self.m.t_max or run.total_steps,
                self.m.time_dtype)
        return f

    def input_copy(self, run, b, x, line_ok):
        return torch.zeros_like(x)

    def store(self, run, b, feature, sigma, line_ok):
        self._fc(run, b).update(run.step_index(sigma), feature)
        b.residual, b.residual_sigma = feature, sigma      # has_cache; counted once (held)

    def add_to(self, run, b, x, sigma, out=None):
        h = self._fc(run, b).predict(run.step_index(sigma))
        run.note_cache_size()                               # the coefficients exist now
        h = h.to(device=x.device, dtype=x.dtype)
        if out is None:
            return h
        return out.copy_(h)

    def held(self, run) -> int:
        n = 0
        for lab, f in self.fc.items():
            n += _bytes(*f.held())
            b = next((b for b in run.branches.values() if b.label == lab), None)
            if b is not None and b.residual is not None and f.feats and b.residual is f.feats[-1]:
                n -= _bytes(b.residual)                     # _note_sizes counts it already
        return n


def spectrum_held_tensors(steps, warmup=SPECTRUM_WARMUP, window=SPECTRUM_WINDOW, flex=0.0,
                          m=SPECTRUM_M, k=SPECTRUM_K) -> int:
    """Most hidden-state-sized tensors one cond's forecaster holds in a run: the features of
    the computed steps in its window and, from the first skipped call after a computed one,
    the M + 1 coefficient tensors (dropped at the next computed call)."""
    computed = set(spectrum_schedule(steps, warmup, window, flex))
    n, most = 0, 0
    for s in range(steps):
        if s in computed:
            n = min(n + 1, k)
            most = max(most, n)
        else:
            most = max(most, n + m + 1)
    return most


class Spectrum(PeerMethod):
    """Spectrum on the pack's gates. As theirs: the embeddings and the head run at every call
    (our_wan_forward embeds before deciding and runs norm_out / proj_out on the forecast); every
    transformer block is skipped on a forecast call; cond and uncond each have their own
    schedule and forecaster (theirs: temp_dict / temp_dict_uncond and the *_uncond counters);
    the last step is not forced.

    Deviations needed on ComfyUI's block hooks:
    - the feature is the last gated block's output as the adapter gives it: on Wan the blocks'
      hidden state, on HunyuanVideo the image tokens of the last single block's output (theirs:
      `hidden_states` after the single blocks, which diffusers keeps apart from the text);
    - the step is the schedule step of the call's sigma (RunState.step_index), theirs a call
      counter per cond (the same with one call per step, as euler and dpmpp_2m make);
    - ComfyUI batches cond and uncond into one call; both follow the same schedule, so a call
      computes or forecasts both;
    - tau maps [0, the run's step count] to [-1, 1]: theirs hard-codes [0, 50], which is their
      num_inference_steps (t_max=50 gives theirs literally);
    - the fit's slicing and the coefficients' dtype (SpectrumForecaster)."""

    def __init__(self, flex, window=SPECTRUM_WINDOW, warmup=SPECTRUM_WARMUP,
                 w=SPECTRUM_W_README, m=SPECTRUM_M, lam=SPECTRUM_LAM, k=SPECTRUM_K,
                 t_max=None, time_dtype=SPECTRUM_TIME_DTYPE, group="Spectrum"):
        self.flex, self.window, self.warmup = flex, window, warmup
        self.w, self.m, self.lam, self.k = w, m, lam, k
        self.t_max = t_max          # None: the run's step count (theirs: 50 = their steps)
        self.time_dtype = time_dtype
        self.group = group

    def forced_first(self, steps):
        return max(self.warmup, 1)

    def make_rule(self, run):
        return SpectrumRule(self.warmup, self.window, self.flex)

    def make_estimator(self, run):
        return SpectrumEstimator(self)

    def hooks(self, run):
        run.indicator = _tiny_indicator          # nothing in its schedule looks at the content


class TeaSpectrum:
    """Not a peer: the issue-24 idea inside TeaCache, for the benchmark only. TeaCache's
    decisions (identity rescale of the modulated input, accumulated relative L1, first and
    last steps computed) with Spectrum's forecaster on the blocks' RESIDUAL over a bounded
    history (the last K = M + 2 = 6 computed residuals, theirs the smallest K their code
    accepts; w 0.5, lam 0.1, M 4, tau over the run's steps), added to the call's own block
    input, instead of the cached residual or the line through the last two."""
    m, lam, k, w, t_max, time_dtype = (SPECTRUM_M, SPECTRUM_LAM, SPECTRUM_M + 2,
                                       SPECTRUM_W_README, None, SPECTRUM_TIME_DTYPE)

    def __init__(self, thresh):
        self.thresh = thresh
        # not named "TeaCache ...": the smoke test counts exactly the TeaCache groups
        self.group = "TeaSpectrum uncalibrated"

    def install(self, model):
        m, reg = apply_teacache(model, TeaCacheConfig(self.thresh, model_type="uncalibrated"))

        def customize(run):
            run.estimator = SpectrumResidualEstimator(self)
            run.note_cache_size = _note_sizes(run, run.estimator)
        reg.customize_run = customize
        return m


class SpectrumResidualEstimator(SpectrumEstimator):
    """SpectrumEstimator on the residual: the engine's input copy, and a skipped call adds the
    forecast residual to its own block input."""

    def input_copy(self, run, b, x, line_ok):
        return x.clone()

    def add_to(self, run, b, x, sigma, out=None):
        r = self._fc(run, b).predict(run.step_index(sigma))
        run.note_cache_size()
        return add_estimate(x, r, out=out)


# Variants run by the benchmark: group -> Spectrum keyword arguments (the sweep's parameter is
# flex). "Spectrum" is the README's setting (w 0.5, window 2, warm-up 5); "w1" the config's
# default w 1.0 (pure Chebyshev); "warm2" the default warm-up scaled to 24 steps (5 of 50 ->
# 2 of 24), without which 4x-5x cannot be reached here; "N3" / "N4" other window sizes.
SPECTRUM_VARIANTS = {
    "Spectrum": {},
    "Spectrum w1": {"w": 1.0},
    "Spectrum N4": {"window": 4},
    "Spectrum warm2": {"warmup": 2},
    "Spectrum warm2 w1": {"warmup": 2, "w": 1.0},
    "Spectrum warm2 N3": {"warmup": 2, "window": 3},
}


# ------------------------------------------------------------------------- a peer's idea in TeaCache

class TeaCacheGain:
    """TeaCache (identity rescale, extrapolate's two residuals) with the skip weight estimated
    from the indicator, DiCache's idea (benchmarks/estimators.py)."""

    def __init__(self, thresh, cap):
        self.thresh, self.cap = thresh, cap
        # not named "TeaCache ...": the smoke test counts exactly the five TeaCache groups
        self.group = "TeaGain uncalibrated" + ("" if cap == 1.0 else f" cap{cap:g}")

    def install(self, model):
        from benchmarks.estimators import IndicatorGainEstimator
        m, reg = apply_teacache(model, TeaCacheConfig(self.thresh, model_type="uncalibrated",
                                                      skip_estimate="extrapolate"))

        def customize(run):
            run.estimator = IndicatorGainEstimator(self.cap)
        reg.customize_run = customize
        return m


# ------------------------------------------------------------------------- benchmark sweeps

# parameter sweeps (reduction about 2x-4x on the 24-step proxy benchmark)
SWEEPS = {
    "MagCache": [0.06, 0.12, 0.24],                      # K 2 caps it near 2.2x here
    "MagCache K6 ret0.1": [0.12, 0.24, 0.5, 1.0],
    "DiCache": [0.08, 0.16, 0.32, 0.64],                 # 20% retained: at most ~2.7x here
    "DiCache ret0": [0.08, 0.16, 0.32, 0.64],
    "First Block Cache": [0.1, 0.2, 0.4, 0.7],
    "TaylorSeer order 1": [2, 3, 4],
    "TaylorSeer order 2": [2, 3, 4],
    # Spectrum (issue 24): the parameter is flex; the README's 0.75 and 3.0 are in every sweep
    # (24 steps: warm-up 5 reaches 1.7x-3.4x, warm-up 2 1.8x-6x; schedules in BENCHMARKS.md)
    "Spectrum": [0, 0.25, 0.75, 1.5, 3.0, 5.0],
    "Spectrum w1": [0, 0.25, 0.75, 1.5, 3.0, 5.0],
    "Spectrum N4": [0, 1.0, 3.0],
    "Spectrum warm2": [0, 0.25, 0.5, 0.75, 1.5, 3.0, 8.0],
    "Spectrum warm2 w1": [0, 0.25, 0.5, 0.75, 1.5, 3.0, 8.0],
    "Spectrum warm2 N3": [0, 0.5, 1.0, 2.0, 5.0],
    # not a peer: DiCache's gain idea inside TeaCache (TeaCache's thresholds up to ~6x)
    "TeaGain uncalibrated": [0.05, 0.1, 0.2, 0.3],
    # not a peer: Spectrum's forecaster on the residual with TeaCache's decisions (issue 24)
    "TeaSpectrum uncalibrated": [0.05, 0.1, 0.2, 0.3, 0.45],
}
COLOURS = {"MagCache": (230, 0, 130), "MagCache K6 ret0.1": (250, 120, 190),
           "DiCache": (140, 90, 40), "DiCache ret0": (190, 150, 90),
           "First Block Cache": (90, 90, 0), "TaylorSeer order 1": (0, 0, 140),
           "TaylorSeer order 2": (90, 90, 255), "TeaGain uncalibrated": (0, 230, 120),
           "Spectrum": (255, 170, 0), "Spectrum w1": (200, 120, 0), "Spectrum N4": (255, 210, 90),
           "Spectrum warm2": (160, 0, 200), "Spectrum warm2 w1": (100, 0, 130),
           "Spectrum warm2 N3": (200, 110, 255), "TeaSpectrum uncalibrated": (0, 150, 150)}
GROUPS = tuple(SWEEPS)
PEER_GROUPS = tuple(g for g in GROUPS if not g.startswith(("TeaGain", "TeaSpectrum")))


def _make(group, param, curves):
    if group == "MagCache":
        return MagCache(param, curves=curves)
    if group == "MagCache K6 ret0.1":
        return MagCache(param, k=6, retention=0.1, curves=curves)
    if group == "DiCache":
        return DiCache(param)
    if group == "DiCache ret0":
        return DiCache(param, retention=0.0)
    if group == "First Block Cache":
        return FirstBlockCache(param)
    if group.startswith("TeaGain uncalibrated"):
        cap = group[len("TeaGain uncalibrated"):].strip()[len("cap"):]
        return TeaCacheGain(param, float(cap or 1.0))
    if group == "TeaSpectrum uncalibrated":
        return TeaSpectrum(param)
    if group in SPECTRUM_VARIANTS:
        return Spectrum(param, group=group, **SPECTRUM_VARIANTS[group])
    if group.startswith("TaylorSeer order "):
        return TaylorSeer(int(param), order=int(group.rsplit(" ", 1)[1]))
    raise KeyError(group)


def benchmark_methods(model, quick: bool, curves: dict):
    """(name, group, param, make) rows for run_benchmark.py; `curves` is MagCache's
    calibration (filled before the makers are called)."""
    out = []
    for group, params in SWEEPS.items():
        for p in (params[len(params) // 2:len(params) // 2 + 1] if quick else params):
            name = f"{group.lower().replace(' ', '_')} {p:g}"
            out.append((name, group, p, (lambda g=group, p=p: _make(g, p, curves).install(model))))
    return out
