"""TargetRule: target_speedup instead of a threshold (pure python; no ComfyUI).

The rule, per cond (README "target_speedup"):

- N = the cond's model calls in this run: predicted from the schedule (one per step; two per
  step except the last, once a step is seen evaluated twice in a row, as Heun does), or taken
  from the previous run with the same sigmas; K = the whole number of computed calls whose
  speed-up N/K is nearest the target (in ratio), raised to the fewest computes that the forced
  calls and max_consecutive_skips allow (the target is then clamped, with a warning).
- A call is computed when forced (first step(s), last step, before start_step, from end_step
  on, retention, max_consecutive_skips, no previous indicator, no cached residual, a non-finite
  indicator), or when skipping it would leave more budget than calls to spend it on; it is
  skipped when computing it would leave too little budget for the forced calls ahead.
  Otherwise it is computed when its accumulated rescaled distance reaches the online threshold:
  the smallest fixed threshold that, replayed on the distances predicted for the calls still to
  come, spends at most the budget left (budget.online_threshold). So each call is decided as
  the fixed-threshold rule would decide it with the threshold that meets the target, re-aimed
  at every call as the live distances come in. The distances to come are predicted from the
  last few distances seen (the scale; the shape from how far the schedule moves into each
  call and its sigma there: budget.call_scales, budget.predict_distances). A later run with
  the same schedule takes the calls to come (how many, at which steps) from the previous
  run's profile, and so does a first run on a model and schedule that an earlier run
  (another node, before a restart) finished, where the run has a profile store (profiles.py;
  run.stored_profiles, set by the ComfyUI side): the summary says which source planned the
  run ("plan": stored profile, previous run or prediction). The profile's recorded distances
  are kept, not planned on (TargetRule._predict says why).
- shared (default): all conds of a run compute at the same call positions (the first cond to
  reach a call decides for the others), so a batched call skips the blocks as a whole.

So each cond computes exactly K calls, unless an unplanned forced compute (no cache, a
non-finite indicator, other block patches changed) or more calls than predicted intervene.
"""
from __future__ import annotations

import logging
import math

from . import budget
from .policy import Decision, forced_reason, rescale
from .profiles import SOURCE_PREDICTION, SOURCE_PREVIOUS, SOURCE_STORED

logger = logging.getLogger(__name__)


class _CondBudget:
    """What TargetRule tracks for one cond during one run."""

    def __init__(self):
        self.steps = []          # step index of each call so far
        self.rescaled = []       # rescaled distance per call (None where not measured)
        self.computed = 0
        self.skips_run = 0
        self.n = None            # predicted number of calls
        self.k = None            # budget: computed calls
        self.clamped = False
        self.earlier = None      # later runs: the previous run's rescaled distances per call
        self.offered = None      # where the profile _future found came from
        self.source = SOURCE_PREDICTION     # what planned this cond (profiles.SOURCE_*)


class TargetRule:
    PROFILES_KEPT = 16
    SHARED = True            # benchmarks/target_benchmark.py measures separate conds too

    def __init__(self, target: float, coefficients, max_consecutive_skips: int = 0,
                 shared: bool | None = None):
        self.target = float(target)
        self.coefficients = coefficients
        self.max_consecutive_skips = max_consecutive_skips
        self.shared = self.SHARED if shared is None else shared
        self.conds = {}          # id(branch) -> _CondBudget
        self.slots = {}          # shared: call index -> computed?
        self.two_calls = False
        self.warned = False
        self.planned = False
        self.plan = SOURCE_PREDICTION       # what planned the run (profiles.SOURCE_*)
        self.stored = {}         # label -> the stored profile (None: none), read once per run
        self.tau = None          # the last online threshold (debug log)

    # ---- the schedule ----------------------------------------------------------------------
    def _forced(self, run, step) -> bool:
        cfg = run.config
        return forced_reason(step, run.total_steps, cfg.start_step, cfg.end_step, run.retention,
                             run.forced_first) is not None

    def _profile_key(self, run, label):
        return (tuple(round(s, 6) for s in run.sigmas), label, run.preset.name,
                run.config.start_step, run.config.end_step, run.retention)

    @staticmethod
    def _profiles(run) -> dict:
        """Distance profiles of earlier runs, kept on the registration (run.owner)."""
        owner = run.owner
        store = getattr(owner, "target_profiles", None)
        if store is None:
            store = {}
            try:
                owner.target_profiles = store
            except AttributeError:
                pass
        return store

    @staticmethod
    def _stored_parts(run, label) -> dict:
        """What a stored profile's key adds to the model and sampler (never the prompt)."""
        cfg, p = run.config, run.preset
        return {"cond": label, "sigmas": [round(s, 6) for s in run.sigmas],
                "start_step": cfg.start_step, "end_step": cfg.end_step,
                "retention": bool(run.retention), "forced_first": run.forced_first,
                "preset": p.name, "indicator": p.indicator,
                "coefficients": None if p.coefficients is None else list(p.coefficients)}

    def _profile(self, run, label):
        """(the profile to plan on, its source): this node's previous run with the same
        schedule, else the profile store's entry (read once per run), else (None, None)."""
        prof = self._profiles(run).get(self._profile_key(run, label))
        if prof is not None:
            return prof, SOURCE_PREVIOUS
        src = getattr(run, "stored_profiles", None)
        if src is None:
            return None, None
        if label not in self.stored:
            self.stored[label] = src.get(self._stored_parts(run, label))
        prof = self.stored[label]
        return (prof, SOURCE_STORED) if prof is not None else (None, None)

    def _future(self, run, cb: _CondBudget, label):
        """(step indices of this cond's calls after the current one, earlier run's profile)."""
        prof, cb.offered = self._profile(run, label)
        if prof is not None:
            full = prof["steps"]
        else:
            last_zero = not run.sigmas or run.sigmas[-1] == 0
            full = budget.call_steps(run.total_steps, self.two_calls, last_zero)
        j = len(cb.steps)
        if full[:j] == cb.steps:
            return list(full[j:]), prof
        step = cb.steps[-1]                  # the calls went otherwise: predict from here
        if not self.two_calls:
            return list(range(step + 1, run.total_steps)), None
        full = budget.call_steps(run.total_steps, True, not run.sigmas or run.sigmas[-1] == 0)
        idx = [i for i, s in enumerate(full) if s == step]
        if not idx:
            return [], None
        pos = idx[-1] if cb.steps.count(step) >= len(idx) else idx[0]
        return full[pos + 1:], None

    # ---- the decision ------------------------------------------------------------------------
    def decide(self, run, branch, step: int, distance: float | None, *, forced: str | None,
               has_cache: bool) -> Decision:
        cb = self.conds.get(id(branch))
        if cb is None:
            cb = self.conds[id(branch)] = _CondBudget()
        if cb.steps and cb.steps[-1] == step:
            self.two_calls = True          # a step evaluated twice: a second-order sampler
        cb.steps.append(step)
        j = len(cb.steps) - 1
        r = None if distance is None else rescale(self.coefficients, distance)
        cb.rescaled.append(r)
        ms = self.max_consecutive_skips
        why = forced
        if why is None and r is None:
            why = "no previous indicator"
        if why is None and not math.isfinite(r):
            why = "indicator jumped (non-finite distance)"
        if why is None and not has_cache:
            why = "no cached residual yet"
        if why is None and ms and cb.skips_run >= ms:
            why = "max_consecutive_skips reached"
        future, prof = self._future(run, cb, branch.label)
        fut_forced = [self._forced(run, s) for s in future]
        n = j + 1 + len(future)
        if cb.n != n:
            self._set_budget(run, cb, n, j, why is not None, fut_forced, prof)
        acc_before = branch.accumulated
        compute, reason = True, why
        if why is None:
            acc = acc_before + r
            left = cb.k - cb.computed
            can_skip, can_compute = budget.options(
                False, len(future), left, budget.min_computes(fut_forced, ms, cb.skips_run + 1),
                budget.min_computes(fut_forced, ms, 0))
            if not can_skip and not can_compute:       # unplanned computes spent it
                compute, reason = False, "target: over budget (unplanned computes)"
            elif not can_skip:
                compute, reason = True, "target: budget must be spent"
            elif not can_compute:
                compute, reason = False, "target: budget kept for the forced calls ahead"
            elif self.shared and j in self.slots:
                compute = self.slots[j]
                reason = "target: with the other conds"
            else:
                compute, reason = self._choose(run, cb, j, acc, left, future, fut_forced)
        if self.shared:
            self.slots.setdefault(j, compute)
        if compute:
            cb.computed += 1
            cb.skips_run = 0
            return Decision(False, 0.0, r, reason)
        cb.skips_run += 1
        return Decision(True, acc_before + r, r, reason)

    @staticmethod
    def _fewest(cb, j, forced_now, fut_forced, max_skips) -> int:
        """The fewest computed calls this cond's run can still end with, from call j on (the
        calls computed so far, and those the forced calls and max_skips require)."""
        if j == 0:
            return budget.min_computes([True] + fut_forced, max_skips)
        return cb.computed + budget.min_computes([forced_now] + fut_forced, max_skips,
                                                 cb.skips_run)

    def _set_budget(self, run, cb, n, j, forced_now, fut_forced, prof):
        minimum = self._fewest(cb, j, forced_now, fut_forced, self.max_consecutive_skips)
        k, clamped = budget.budget(n, self.target, minimum)
        cb.n, cb.k, cb.clamped = n, k, clamped
        if clamped and not self.warned:
            self.warned = True
            logger.warning("TeaCache: target_speedup %gx is more than this schedule allows (%d "
                           "model calls per cond, at least %d of them computed): clamped to "
                           "%.2fx.", self.target, n, k, n / k)
        if prof is not None and j == 0:
            cb.earlier = list(prof["rescaled"])
            cb.source = cb.offered or SOURCE_PREVIOUS
            if not self.planned:
                self.plan = cb.source
            self.planned = True
        elif cb.earlier is not None and len(cb.earlier) != n:
            cb.earlier = None

    def _predict(self, run, cb, j, future) -> tuple:
        """(the distances predicted for the calls after call j, planned on an earlier run's
        profile?): the schedule's shape scaled to the last calls seen (budget.call_scales,
        budget.predict_distances), on the calls to come that the earlier run's profile gives
        where there is one for exactly these calls (planned), else that the schedule gives.

        A planned run predicts as a first run does, not from the earlier run's recorded
        distances: planning on those (scaled to this run's) placed the computes worse on two
        of the three proxies, chosen leave one proxy out (BENCHMARKS.md, "What a later run
        plans on": each proxy's pick from the two others' calibration prompts was the
        prediction; later runs on the evaluation prompts, mean delta to the fixed thresholds at
        the same computes, reuse / extrapolate, recorded -> predicted: LTX-Video -0.64 / -0.65
        -> +0.15 / +1.17 dB, Wan +0.17 / +0.68 -> +0.57 / +1.66, HunyuanVideo +1.84 / +3.23 ->
        +1.66 / +3.07)."""
        seen = cb.rescaled[1:j + 1]
        scales = budget.call_scales(run.sigmas, cb.steps + future)
        return (budget.predict_distances(seen, scales[1:j + 1], scales[j + 1:]),
                self._planned(cb, j, future))

    @staticmethod
    def _planned(cb, j, future) -> bool:
        """Whether call j plans on an earlier run's profile: there is one for exactly these
        calls (call j and the calls `future` after it)."""
        return cb.earlier is not None and len(cb.earlier) == j + 1 + len(future)

    def _choose(self, run, cb, j, acc, left, future, fut_forced):
        pred, planned = self._predict(run, cb, j, future)
        tau = budget.online_threshold(acc, pred, fut_forced, left, self.max_consecutive_skips,
                                      cb.skips_run)
        self.tau = tau
        how = f"planned on the {cb.source}" if planned else "predicted"
        if acc >= tau:
            return True, f"target: online threshold reached ({how})"
        return False, f"target: below the online threshold ({how})"

    def describe_limit(self) -> str:
        return f"target {self.target:g}x" + ("" if self.tau is None else f" (online {self.tau:.4g})")

    # ---- reporting, and the profile a later run plans on ------------------------------------
    def summary_fields(self, run) -> dict:
        per = {}
        for b in run.branches.values():
            cb = self.conds.get(id(b))
            if cb is None:
                continue
            skip_max, comp_min = budget.equivalent_threshold(b.records)
            computed = sum(1 for r in b.records if r.computed)
            forced = [r.computed and not r.reason.startswith("target:") for r in b.records]
            fixed = budget.equivalent_fixed_threshold([r.rescaled for r in b.records], forced,
                                                      computed, self.max_consecutive_skips)
            per[b.label] = {"equivalent_threshold": fixed,"calls": len(b.records),
                            "computed": computed,
                            "budget": cb.k, "clamped": cb.clamped,
                            "largest_skipped_acc": skip_max, "smallest_computed_acc": comp_min,
                            "planned": cb.earlier is not None,
                            "plan": cb.source if cb.earlier is not None else SOURCE_PREDICTION}
        skips = [v["largest_skipped_acc"] for v in per.values() if v["largest_skipped_acc"] is not None]
        comps = [v["smallest_computed_acc"] for v in per.values() if v["smallest_computed_acc"] is not None]
        real = [v["calls"] / v["computed"] for v in per.values() if v["computed"]]
        fixed = [v["equivalent_threshold"] for v in per.values() if v["equivalent_threshold"] is not None]
        return {"target_speedup": self.target,
                "target": {"shared": self.shared, "planned": self.planned, "plan": self.plan,
                           "two_calls_per_step": self.two_calls, "conds": per,
                           "clamped": any(v["clamped"] for v in per.values()),
                           "realised_per_cond": min(real) if real else 1.0,
                           "equivalent_threshold": min(fixed) if fixed else None,
                           "largest_skipped_acc": max(skips) if skips else None,
                           "smallest_chosen_compute_acc": min(comps) if comps else None}}

    def summary_text(self, run) -> str:
        f = self.summary_fields(run)["target"]
        eq = "n/a" if f["equivalent_threshold"] is None else f"{f['equivalent_threshold']:.4g}"
        if f["largest_skipped_acc"] is not None:
            eq += f"; skipped up to accumulated {f['largest_skipped_acc']:.4g}"
        clamp = " (clamped: the schedule allows less)" if f["clamped"] else ""
        how = f"planned on the {self.plan}" if self.planned else "predicted online"
        return (f"target {self.target:g}x{clamp}, realised {f['realised_per_cond']:.2f}x per "
                f"cond ({how}; rel_l1_thresh ignored; equivalent thresh {eq})")

    def finish(self, run):
        """Keep each cond's distance profile for the next run with the same schedule, when
        this run reached its last step (on the registration, and in the profile store)."""
        store = self._profiles(run)
        keep = []
        for b in run.branches.values():
            cb = self.conds.get(id(b))
            if cb is None or not cb.steps or cb.steps[-1] != run.total_steps - 1:
                continue
            key = self._profile_key(run, b.label)
            store.pop(key, None)
            store[key] = {"steps": list(cb.steps), "rescaled": list(cb.rescaled)}
            while len(store) > self.PROFILES_KEPT:
                store.pop(next(iter(store)))
            keep.append((self._stored_parts(run, b.label), store[key],
                         {"model": run.model_desc, "cond": b.label,
                          "steps": run.total_steps, "calls": len(cb.steps)}))
        src = getattr(run, "stored_profiles", None)
        if src is not None and keep:
            src.put(keep)           # never raises: a failed write is a warning

