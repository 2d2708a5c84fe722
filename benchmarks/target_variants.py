"""Experiments on target_speedup's rule (not shipped; target_benchmark.py measures them).

**Placement**: where the online threshold sits among the thresholds that spend the budget.
Every threshold from the smallest that makes at most the budget's computes on the distances
predicted (budget.online_threshold, what the pack ships: fraction 0) up to the smallest that
makes one compute less (fraction 1) makes the same number of computes, but not at the same
calls: the smallest computes each call as early as it may and leaves the most distance
uncomputed before the last call. `placed_threshold` sits at a fraction of that interval;
`use(f)` makes the pack's TargetRule use it (target_benchmark.py --placements).

**First-run warm-up**: on a first run (no profile to plan on), compute the first calls of the
schedule (a fraction of them) before the prediction places the rest; the official TeaCache's
retention steps force the first steps the same way. `use_warmup(f)`; target_benchmark.py
--first-run-shapes M:S:W.

**First-run recent fit**: on a first run the distances to come are c x the schedule's shape
(budget.call_scales), c fitted to every call seen so far. Where a model's indicator is high
over its first calls and dips before it rises (LTX-Video's proxy), the early calls set c too
high, the prediction reserves computes for an end that is smaller than predicted, and the run
skips its early calls and crowds its computes at the end. `use_recent(r)` fits c to the last r
calls seen (r >= 1) or the last fraction r of them (0 < r < 1; at least 2 calls); r < 0: every
call seen (the rule before budget.RECENT_CALLS shipped); 0: the shipped rule.
target_benchmark.py --first-run-shapes M:S:W:R.

**First-run fitted power**: the schedule's shape rises 11-13x over a 20-step run (30-39x over
50 steps); the indicator rises about as much on the Wan proxy, less on HunyuanVideo's and much
less on LTX-Video's (1.5-3.4x), whose first run then holds computes for an end that turns out
cheap (BENCHMARKS.md, "Placement at the same computes"). `use_recent(r, lam)` predicts
c x scale ** p with p read during the run: the slope of log distance on log scale over every
call seen, shrunk towards 1 (the shipped prediction) by a ridge `lam` (in squared log-scale
units: the fit moves away from 1 only as the calls seen span the schedule), within [0, 2];
`fitted_power`. 0: the shipped rule. target_benchmark.py --first-run-shapes M:S:W:R:P.
Measured leave one proxy out (BENCHMARKS.md, "The indicator's own trend as the first run's
shape"): every pick was the shipped rule; it lost most on LTX-Video.

**Later-run late weight**: a later run plans on the previous run's distances (scaled to this
run's). A first run plans on the schedule's shape, which rises at the end as sigma^-1.25 and
so holds computes for the last calls; on the proxies the first runs with the recent fit came
out above the later runs. `use_late_weight(a)` multiplies a planned run's distances to come by
(sigma now / sigma of the call) ** a (sigma at least budget.SIGMA_FLOOR): the next calls stay
as recorded, the last ones weigh more. 0: the shipped rule. target_benchmark.py
--late-weights A,...

**Later-run plan**: what a planned (later or stored-profile) run predicts the calls to come
from. `use_later_plan(name)`: "prediction" (shipped: the first-run prediction from the
schedule's shape, TargetRule._predict; the profile gives only the calls to come); "profile"
(the rule before: the earlier run's distances, scaled by the ratio of this run's distances to
that run's over every call seen, `scale_profile`); "profile recent" (that ratio over the last
budget.RECENT_CALLS calls seen, the first runs' recent fit); "blend" (the geometric mean, call
by call, of "profile recent" and the prediction). target_benchmark.py --later-plans NAME,...

**Spacing cap**: the online threshold may leave long stretches of skipped calls early in a long
schedule (the prediction holds computes for the end) where a fixed threshold spaces its
computes evenly. `use_spacing_cap(f)` caps the skipped calls in a row at ceil(f x N / K) (N
calls, K the budget), as max_consecutive_skips does (the cap is a forced compute, and the
budget keeps the computes the cap will force; the cap is widened where the budget could not
hold it); a user's smaller max_consecutive_skips stays. 0: the shipped rule.
target_benchmark.py --spacing-caps F,...

**First runs on the conditioning vectors**: the blocks of Wan and LTX-Video are modulated by a
vector that depends on the timestep only (Wan's e0, LTX-Video's adaln_single output), so its
value at every step of a schedule can be computed from the model's own layers before the run
reaches it (`schedule_vectors`, one row per step; `VECTORS` names the families). Its relative
L1 move step to step (`schedule_shape`) follows the indicator's distance call by call much more
closely than the shipped shape does (its zigzag included). `use_schedule_vectors(model, 1)`
makes a first run predict on those moves (`shape_scales`) instead of the schedule's moves and
sigmas; `use_schedule_vectors(model, 2)` keeps the shipped shape and multiplies it by each
call's vector move over the mean of its neighbours' (`phase_scales`: the sigmas' trend, the
vector's phase). 0: the shipped rule. target_benchmark.py --first-run-shapes M:S:W:R:P:V.

**First runs weighed by the measured cost**: benchmarks/skip_cost.py measures, per call of a
schedule, what skipping that call alone costs per unit of the indicator. `use_cost_weights(
curve, C)` multiplies each call's distance, and the shape the calls to come are predicted on, by
that cost at the call's sigma to the power C (`cost_curve`: the geometric mean over a run's
prompts; `curve_at`: linear in sigma). None: the shipped rule. target_benchmark.py
--cost-weights SKIP_COST_JSON --first-run-shapes M:S:W:R:P:V:C. Measured in BENCHMARKS.md ("The
measured cost as a weight"): it helps where the cost falls over the run, and misleads badly
where it rises.

Measured in BENCHMARKS.md (target_speedup, "the front at the same runs").
"""
from __future__ import annotations

import math

from comfyui_teacache.teacache_core import budget
from comfyui_teacache.teacache_core.target import TargetRule

SHIPPED = budget.online_threshold
SHIPPED_CHOOSE = TargetRule._choose
SHIPPED_PREDICT = budget.predict_distances
SHIPPED_PLAN = TargetRule._predict
SHIPPED_SET_BUDGET = TargetRule._set_budget
SHIPPED_DECIDE = TargetRule.decide
SHIPPED_SCALES = budget.call_scales
LATER_PLANS = ("profile", "profile recent", "blend", "prediction")
SHIPPED_LATER_PLAN = "prediction"


def placed_threshold(accumulated: float, future, forced, budget_left: int, max_skips: int = 0,
                     skips_before: int = 0, iterations: int = 40,
                     placement: float = 0.0) -> float:
    """The online threshold at fraction `placement` (0 = the shipped one, below 1) of the
    interval of thresholds that spend `budget_left` computes on the distances `future`."""
    lo = SHIPPED(accumulated, future, forced, budget_left, max_skips, skips_before, iterations)
    top = accumulated + sum(d for d in future if d > 0) + 1e-12
    if placement <= 0 or lo >= top:
        return lo
    hi = (SHIPPED(accumulated, future, forced, budget_left - 1, max_skips, skips_before,
                  iterations) if budget_left > 1 else top)
    return lo + min(placement, 0.999) * max(hi - lo, 0.0)


def use(placement: float):
    """Make the pack's target rule place its threshold at `placement` (0: the shipped rule)."""
    if placement <= 0:
        budget.online_threshold = SHIPPED
        return

    def online_threshold(*args, **kwargs):
        return placed_threshold(*args, placement=placement, **kwargs)
    budget.online_threshold = online_threshold


def use_warmup(fraction: float):
    """Make the pack's target rule compute the first ceil(fraction x calls) calls of a first
    run (those the budget leaves it free to choose); 0: the shipped rule."""
    if fraction <= 0:
        TargetRule._choose = SHIPPED_CHOOSE
        return

    def _choose(self, run, cb, j, acc, left, future, fut_forced):
        if cb.earlier is None and j < math.ceil(fraction * (j + 1 + len(future))):
            return True, "target: first-run warm-up"
        return SHIPPED_CHOOSE(self, run, cb, j, acc, left, future, fut_forced)
    TargetRule._choose = _choose


def recent_count(seen: int, recent: float) -> int:
    """How many of the `seen` calls the recent fit uses (all of them where recent < 0)."""
    if recent < 0:
        return seen
    if recent == 0:
        return min(seen, budget.RECENT_CALLS) if budget.RECENT_CALLS > 0 else seen
    n = int(recent) if recent >= 1 else max(2, math.ceil(recent * seen))
    return min(seen, max(n, 1))


POWER_RANGE = (0.0, 2.0)


def fitted_power(seen, seen_scales, lam: float, prior: float = 1.0) -> float:
    """The power p of distance ~ c x scale ** p that the calls seen show: the least-squares
    slope of log distance on log scale, shrunk towards `prior` by the ridge `lam` (p = (Sxy +
    lam x prior) / (Sxx + lam)), within POWER_RANGE; `prior` where fewer than two calls have a
    positive distance and scale."""
    pts = [(math.log(m), math.log(d)) for d, m in zip(seen, seen_scales)
           if budget._finite(d) and d > 0 and m > 0]
    if len(pts) < 2:
        return prior
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    sxy = sum((x - mx) * (y - my) for x, y in pts)
    p = (sxy + lam * prior) / (sxx + lam) if sxx + lam > 0 else prior
    return min(max(p, POWER_RANGE[0]), POWER_RANGE[1])


def use_recent(fit: float, lam: float = 0.0):
    """Make the pack's first-run prediction fit its scale to the recent calls seen, and with
    lam > 0 its power to every call seen (see the module's notes); 0, 0: the shipped rule."""
    if fit == 0 and lam <= 0:
        budget.predict_distances = SHIPPED_PREDICT
        return

    def predict_distances(seen, seen_scales, future_scales, power: float = 1.0, recent=None):
        if lam > 0:
            power *= fitted_power(seen, seen_scales, lam)
        n = recent_count(len(seen), fit)
        return SHIPPED_PREDICT(seen[len(seen) - n:], seen_scales[len(seen) - n:],
                               future_scales, power, recent=0)
    budget.predict_distances = predict_distances


def late_weighted(pred, sigmas, now_step: int, future_steps, power: float) -> list:
    """`pred` (the distances to come) times (sigma now / sigma of each call) ** power."""
    def sig(i):
        return max(float(sigmas[i]) if i < len(sigmas) else 0.0, budget.SIGMA_FLOOR)
    now = sig(now_step)
    return [d * (now / sig(i)) ** power for d, i in zip(pred, future_steps)]


def use_late_weight(power: float):
    """Make the pack's planned (later and stored-profile) runs weigh the calls to come by
    (sigma now / sigma there) ** power (see the module's note); 0: the shipped rule."""
    if power <= 0:
        TargetRule._choose = SHIPPED_CHOOSE
        return

    def _choose(self, run, cb, j, acc, left, future, fut_forced):
        if not self._planned(cb, j, future):
            return SHIPPED_CHOOSE(self, run, cb, j, acc, left, future, fut_forced)
        shipped = budget.online_threshold

        def weighted(accumulated, pred, *args, **kwargs):
            return shipped(accumulated, late_weighted(pred, run.sigmas, cb.steps[j], future,
                                                      power), *args, **kwargs)
        budget.online_threshold = weighted
        try:
            return SHIPPED_CHOOSE(self, run, cb, j, acc, left, future, fut_forced)
        finally:
            budget.online_threshold = shipped
    TargetRule._choose = _choose


def scale_profile(seen, earlier_seen, earlier_future) -> list:
    """An earlier run's distances still to come, scaled by how this run's seen distances
    compare with that run's at the same calls (within a factor 4 either way; the later runs'
    rule before the prediction shipped)."""
    finite = budget._finite
    pairs = [(a, b) for a, b in zip(seen, earlier_seen) if finite(a) and finite(b)]
    num, den = sum(a for a, _ in pairs), sum(b for _, b in pairs)
    f = min(max(num / den, 0.25), 4.0) if num > 0 and den > 0 else 1.0
    return [f * d if finite(d) else 0.0 for d in earlier_future]


def later_plan(name: str, seen, earlier_seen, earlier_future, first_run_pred) -> list:
    """The distances to come that a planned run plans on under `name` (see the module's note):
    from this run's distances seen, the earlier run's at the same calls and after them, and
    the first-run prediction for the calls to come."""
    if name == "prediction":
        return list(first_run_pred)
    n = len(seen) if name == "profile" else min(len(seen), budget.RECENT_CALLS)
    prof = scale_profile(seen[len(seen) - n:], earlier_seen[len(seen) - n:], earlier_future)
    if name == "blend":
        return [math.sqrt(max(a, 0.0) * max(b, 0.0)) for a, b in zip(prof, first_run_pred)]
    return prof


def use_later_plan(name: str):
    """Make the pack's planned (later and stored-profile) runs plan on `name` (one of
    LATER_PLANS; SHIPPED_LATER_PLAN: the shipped rule)."""
    if name not in LATER_PLANS:
        raise ValueError(f"later plan {name!r}: one of {', '.join(LATER_PLANS)}")
    if name == SHIPPED_LATER_PLAN:
        TargetRule._predict = SHIPPED_PLAN
        return

    def _predict(self, run, cb, j, future):
        first, planned = SHIPPED_PLAN(self, run, cb, j, future)
        if not planned:
            return first, planned
        return later_plan(name, cb.rescaled[1:j + 1], cb.earlier[1:j + 1], cb.earlier[j + 1:],
                          first), True
    TargetRule._predict = _predict


def _wan_vectors(dm, t, dtype):
    """Wan: e0 = time_projection(time_embedding(sinusoidal(t))), what every block's modulation
    adds (the blocks' args["vec"])."""
    import comfy.ldm.wan.model as wan
    e = dm.time_embedding(wan.sinusoidal_embedding_1d(dm.freq_dim, t).to(dtype=dtype))
    return dm.time_projection(e)


def _ltxv_vectors(dm, t, dtype):
    """LTX-Video: adaln_single(t x the model's multiplier), what the blocks' scale_shift_table
    is added to (args["vec"])."""
    mult = float(getattr(dm, "timestep_scale_multiplier", 1000.0))
    vec, _ = dm.adaln_single(t * mult, {"resolution": None, "aspect_ratio": None},
                             batch_size=t.shape[0], hidden_dtype=dtype)
    return vec


VECTORS = {"wan": _wan_vectors, "ltxv": _ltxv_vectors}


def schedule_vectors(model, family: str, sigmas):
    """The blocks' conditioning vector at the sigma of every step (`sigmas` without the
    final one), one row each, from the model's own layers; None for a family not in
    VECTORS. `model`: ComfyUI's ModelPatcher."""
    import torch
    fn = VECTORS.get(family)
    if fn is None:
        return None
    dm = model.get_model_object("diffusion_model")
    ms = model.get_model_object("model_sampling")
    ref = next(dm.parameters())
    dtype = getattr(model.model, "manual_cast_dtype", None) or ref.dtype
    t = ms.timestep(torch.tensor(sigmas, dtype=torch.float32)).to(ref.device)
    with torch.no_grad():
        return fn(dm, t, dtype).reshape(len(sigmas), -1).float()


def schedule_shape(vectors) -> list:
    """Per step, how far the conditioning vector moves into it: sum|v(s) - v(s-1)| /
    sum|v(s-1)| (0 for step 0)."""
    move = (vectors[1:] - vectors[:-1]).abs().sum(1)
    base = vectors[:-1].abs().sum(1).clamp_min(1e-12)
    return [0.0] + (move / base).tolist()


def shape_scales(shape, steps) -> list:
    """Each call's share of the conditioning vector's moves (`shape`: per step): the moves of
    the steps after the previous call's up to this call's (0 for the first call and for a
    call at the previous call's step, as Heun's second call is)."""
    out = [0.0]
    for a, b in zip(steps, steps[1:]):
        out.append(sum(shape[s] for s in range(a + 1, min(b, len(shape) - 1) + 1)))
    return out


def phase_scales(sigmas, shape, steps) -> list:
    """The shipped first-run shape (budget.call_scales) times how far each call's conditioning
    vector move stands above or below the mean of its own and its neighbours' moves: the
    sigmas' trend over the run, the vector's phase from call to call."""
    base = budget.call_scales(sigmas, steps)
    vec = shape_scales(shape, steps)
    out = []
    for i, (b, v) in enumerate(zip(base, vec)):
        near = [vec[k] for k in (i - 1, i, i + 1) if 0 < k < len(vec) and vec[k] > 0]
        mean = sum(near) / len(near) if near else 0.0
        out.append(b * v / mean if mean > 0 else b)
    return out


def use_schedule_vectors(model, mode: int):
    """Make the pack's first runs predict from the conditioning vectors of `model`'s schedule
    where its family is in VECTORS (see the module's note): mode 1 on their moves
    (shape_scales), 2 on the shipped shape with their phase (phase_scales); 0: the shipped
    rule. Planned (later, stored-profile) runs stay as shipped."""
    if not mode:
        TargetRule._predict = SHIPPED_PLAN
        return

    def _predict(self, run, cb, j, future):
        planned = self._planned(cb, j, future)
        shape = run.__dict__.get("_vector_shape")
        if shape is None:
            v = schedule_vectors(model, run.owner.adapter.family, run.sigmas[:-1])
            shape = run.__dict__["_vector_shape"] = (schedule_shape(v) if v is not None
                                                     else ())
        if not shape or planned:
            return SHIPPED_PLAN(self, run, cb, j, future)
        steps = cb.steps + future
        scales = (shape_scales(shape, steps) if mode == 1
                  else phase_scales(run.sigmas, shape, steps))
        return (budget.predict_distances(cb.rescaled[1:j + 1], scales[1:j + 1],
                                         scales[j + 1:]), planned)
    TargetRule._predict = _predict


def spacing_cap(n_calls: int, k: int, factor: float) -> int:
    """The skipped calls allowed in a row under a spacing cap: ceil(factor x N / K), at least
    1."""
    return max(1, math.ceil(factor * n_calls / max(k, 1) - 1e-9))


def use_spacing_cap(factor: float):
    """Make the pack's target rule skip at most spacing_cap(N, K, factor) calls in a row (and
    the user's max_consecutive_skips where smaller); 0: the shipped rule."""
    if factor <= 0:
        TargetRule._set_budget = SHIPPED_SET_BUDGET
        return

    def _set_budget(self, run, cb, n, j, forced_now, fut_forced, prof):
        user = self.__dict__.setdefault("_user_max_skips", self.max_consecutive_skips)
        self.max_consecutive_skips = user
        SHIPPED_SET_BUDGET(self, run, cb, n, j, forced_now, fut_forced, prof)
        cap = spacing_cap(n, cb.k, factor)
        if user:
            cap = min(user, cap)
        # never more computes than the budget: widen the cap until the run can keep it
        while cap < n and self._fewest(cb, j, forced_now, fut_forced, cap) > cb.k:
            cap += 1
        self.max_consecutive_skips = cap
    TargetRule._set_budget = _set_budget


def cost_curve(prompts, estimate: str, sigmas) -> list:
    """(sigma, cost per unit of the indicator) per call 1.. of a skip_cost.py run of one proxy:
    the geometric mean over its prompts (calls whose cost is missing left out), for the skip
    estimate `estimate`; sorted by sigma."""
    out = []
    for j in range(len(prompts[0][estimate]["cost"])):
        xs = [p[estimate]["cost"][j] for p in prompts if p[estimate]["cost"][j]]
        if xs:
            out.append((float(sigmas[j + 1]), math.exp(sum(map(math.log, xs)) / len(xs))))
    return sorted(out)


def curve_at(curve, sigma: float) -> float:
    """The curve's value at `sigma`: linear between its points, its end values beyond them."""
    if sigma <= curve[0][0]:
        return curve[0][1]
    for (s0, w0), (s1, w1) in zip(curve, curve[1:]):
        if sigma <= s1:
            return w0 + (sigma - s0) / (s1 - s0) * (w1 - w0) if s1 > s0 else w1
    return curve[-1][1]


def use_cost_weights(curve, power: float = 1.0):
    """Make the pack's target rule weigh each call's indicator distance by the model's measured
    cost per unit at that call's sigma (`curve`: cost_curve) to the power `power`, in what it
    accumulates and in the shape it predicts the calls to come on; None or power 0: the
    shipped rule. The fixed-threshold front it is compared with stays unweighted."""
    if not curve or not power:
        TargetRule.decide = SHIPPED_DECIDE
        budget.call_scales = SHIPPED_SCALES
        return

    def sig(sigmas, s):
        return float(sigmas[s]) if s < len(sigmas) else 0.0

    def decide(self, run, branch, step, distance, **kw):
        if distance is not None:
            distance = distance * curve_at(curve, sig(run.sigmas, step)) ** power
        return SHIPPED_DECIDE(self, run, branch, step, distance, **kw)

    def call_scales(sigmas, steps):
        return [v * curve_at(curve, sig(sigmas, s)) ** power
                for v, s in zip(SHIPPED_SCALES(sigmas, steps), steps)]
    TargetRule.decide = decide
    budget.call_scales = call_scales
