"""Placement oracle for skip estimates (issue 25): which steps should be computed, per prompt,
for a given skip estimate, on a trained proxy (benchmarks/proxies.py), through ComfyUI's loader
and KSampler and the pack's own engine.

A candidate schedule (the set of computed steps; cond and uncond decided together, step 0
always computed) is sampled for real: the pack's engine runs with a rule that computes exactly
the schedule's steps (ScheduleRule, set through registration.customize_run as
benchmarks/peers.py does) and the estimate under test as run.estimator. Per prompt:
  1. backward greedy from all N steps computed: remove the step whose removal hurts the PSNR
     of the final latent against the uncached run the least, repeat down to --k-min;
  2. local search from the greedy schedule at each reported K: move a computed step to a free
     neighbour (one step earlier or later) while that improves the PSNR.
The first step is never removed (nothing is cached before it); the last may be.

Prefix replay: a candidate shares its decisions up to some step with a schedule sampled
before; every model call of that shared prefix is replayed (ComfyUI's APPLY_MODEL output, and
the engine's per-cond state after the call: residuals, records, estimator state) instead of
run. Keyed by (decision bits up to the call's step, call number), kept per prompt in an LRU of
bounded size (--cache-mb). Euler and the engine are deterministic on the CPU with one thread:
tests/test_oracle.py checks that a replayed candidate equals the same schedule recomputed bit
for bit.

Printed: per estimate, the oracle front (PSNR mean and worst over the prompts at K = N/2,
N/3, N/4 computed steps, i.e. 2x/3x/4x fewer block executions; for refresh variants, at the
same BLOCK executions, interpolated along the greedy front), next to the pack's own modes at
the same reduction (threshold sweep interpolated in log reduction, and target_speedup), with
the pack's threshold rule also run with each candidate estimate.

    .venv/bin/python benchmarks/oracle.py --proxy wan --steps 24 --prompts 3 \
        --estimates reuse,extrapolate,quad --out out/oracle_wan
"""
from __future__ import annotations

import argparse
import collections
import copy
import itertools
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))
sys.path.insert(0, str(ROOT))

from comfy_env import bench_session, load_pack  # noqa: E402

REPLAY_KEY = "teacache_oracle_replay"
THRESHOLDS = [0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.45, 0.7, 1.0, 1.5]
TARGETS = [2.0, 3.0, 4.0]


# --------------------------------------------------------------------------- the fixed rule

class ScheduleRule:
    """Compute exactly the steps of `schedule` (a set of step indices); skip the others (a
    cond with nothing cached yet computes)."""

    def __init__(self, schedule):
        self.schedule = frozenset(schedule)

    def decide(self, run, branch, step, distance, *, forced, has_cache):
        from comfyui_teacache.teacache_core.policy import Decision, rescale
        # the rescaled distance is tracked where the indicator is read (an estimate that
        # uses it, as indline); with the tiny indicator it is 0
        r = None if distance is None else rescale(run.preset.coefficients, distance)
        if step in self.schedule or forced is not None:
            return Decision(False, 0.0, r, forced or "scheduled")
        if not has_cache:
            return Decision(False, 0.0, r, "no cached residual yet")
        return Decision(True, branch.accumulated + (r or 0.0), r, "not scheduled")

    def describe_limit(self):
        return f"{len(self.schedule)} scheduled"

    def summary_text(self, run):
        return f"oracle schedule {sorted(self.schedule)}"


def _tiny_indicator(ctx, key, args):
    """The rule reads no indicator: one zero per batch row, nothing of hidden-state size."""
    import torch
    x = ctx.run.owner.adapter.block_input(key, args)
    return torch.zeros(x.shape[0], 1, dtype=torch.float32, device=x.device)


# --------------------------------------------------------------------------- prefix replay

def _tensor_bytes(obj) -> int:
    import torch
    n = 0
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, torch.Tensor):
            n += o.numel() * o.element_size()
        elif isinstance(o, dict):
            stack.extend(o.values())
        elif isinstance(o, (list, tuple)):
            stack.extend(o)
        elif hasattr(o, "__dict__"):
            stack.extend(vars(o).values())
    return n


class ReplayCache:
    """Per prompt: (decision prefix, call number) -> (output, engine state after the call).
    LRU, bounded in bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.entries = collections.OrderedDict()
        self.bytes = 0
        self.hits = self.misses = 0

    def get(self, key):
        e = self.entries.get(key)
        if e is not None:
            self.entries.move_to_end(key)
        return e

    def put(self, key, entry, size):
        if key in self.entries:
            return
        self.entries[key] = (entry, size)
        self.bytes += size
        while self.bytes > self.max_bytes and len(self.entries) > 1:
            _, (_, s) = self.entries.popitem(last=False)
            self.bytes -= s


class _RunReplay:
    """Replay state of one sampling run."""

    def __init__(self, bits, cache):
        self.bits = bits            # tuple of 0/1 per step: computed?
        self.cache = cache          # ReplayCache or None (recompute everything)
        self.calls = 0
        self.replaying = cache is not None
        self.pending = None         # the state to restore before the first computed call
        self.ran = 0                # model calls run (not replayed)


def _snapshot(run):
    """The engine's per-cond state after a call, by cond label (uuids differ between runs)."""
    return ({b.label: copy.deepcopy(b) for b in run.branches.values()},
            (run.calls, run.calls_blocks_ran, run.peak_cache_bytes))


def _restore(run, snap, to, batch):
    from comfyui_teacache.teacache_core.engine import call_chunks
    branches, counters = snap
    labels = {}
    for ch in call_chunks(to, batch):
        labels[ch.label] = ch.key
    run.branches = {}
    for label, b in branches.items():
        key = labels.get(label)
        if key is None:
            raise RuntimeError(f"oracle replay: cond {label!r} is not in this call")
        run.branches[key] = copy.deepcopy(b)
    run.calls, run.calls_blocks_ran, run.peak_cache_bytes = counters


# --------------------------------------------------------------------------- the runner

class OracleRunner:
    """One model, one estimate: sample a schedule for a prompt, with or without replay."""

    def __init__(self, model, proxy, latent, steps, cfg, sampler, estimate, *,
                 cache_mb=1500, replay=True):
        from benchmarks.skip_estimates import install_refresh, make_estimator, refresh_blocks
        from comfyui_teacache.teacache_core.config import TeaCacheConfig
        from comfyui_teacache.teacache_core.patching import apply_teacache
        import comfy.patcher_extension as pe
        self.proxy, self.latent, self.steps, self.cfg, self.sampler = \
            proxy, latent, steps, cfg, sampler
        self.estimate = estimate
        self.make_estimator = lambda: make_estimator(estimate)
        self.refresh = refresh_blocks(estimate)
        m, reg = apply_teacache(model, TeaCacheConfig(1.0, model_type="uncalibrated",
                                                      skip_estimate="extrapolate"))
        install_refresh(m, reg, self.refresh)
        reg.customize_run = self._customize
        m.add_wrapper_with_key(pe.WrappersMP.APPLY_MODEL, REPLAY_KEY, self._apply_model)
        self.model, self.reg = m, reg
        self.replay = replay
        self.cache_bytes = int(cache_mb * 2 ** 20)
        self.caches = {}
        self._schedule = None
        self._prompt = None
        self._active = None
        self.runs = 0
        self.calls_run = 0

    def _customize(self, run):
        run.retention = True            # the last step is not forced: the oracle may skip it
        run.forced_first = 1
        run.rule = ScheduleRule(self._schedule)
        run.estimator = self.make_estimator()
        if not getattr(run.estimator, "needs_indicator", False):
            run.indicator = _tiny_indicator
        bits = tuple(int(i in self._schedule) for i in range(self.steps))
        cache = None
        if self.replay:
            cache = self.caches.setdefault(self._prompt, ReplayCache(self.cache_bytes))
        run.oracle_replay = _RunReplay(bits, cache)

    def _apply_model(self, executor, *args, **kwargs):
        from comfyui_teacache.teacache_core.patching import RUN_KEY
        to = kwargs.get("transformer_options")
        if not isinstance(to, dict):
            to = next((a for a in reversed(args) if isinstance(a, dict)), {})
        run = to.get(RUN_KEY)
        st = getattr(run, "oracle_replay", None)
        if st is None:
            return executor(*args, **kwargs)
        x = args[0]
        t = args[1] if len(args) > 1 else kwargs.get("t")
        step = run.step_index(float(t.flatten()[0]))
        key = (st.bits[:step + 1], st.calls)
        st.calls += 1
        if st.replaying:
            e = st.cache.get(key)
            if e is not None:
                (out, snap), _ = e
                st.pending = snap
                st.cache.hits += 1
                return out.clone()
            st.replaying = False
            st.cache.misses += 1
            if st.pending is not None:
                _restore(run, st.pending, to, x.shape[0])
                st.pending = None
        out = executor(*args, **kwargs)
        st.ran += 1
        if st.cache is not None:
            snap = _snapshot(run)
            entry = (out.detach().clone(), snap)
            st.cache.put(key, entry, _tensor_bytes(entry))
        return out

    def sample(self, prompt_index, schedule, seed=None):
        """The final latent of prompt `prompt_index` with exactly `schedule` computed."""
        import torch
        import nodes
        sched = frozenset(schedule) | {0}
        self._schedule, self._prompt = sched, prompt_index
        p = self.proxy.eval_prompts[prompt_index]
        with torch.inference_mode():
            out = nodes.common_ksampler(
                self.model, 100 + prompt_index if seed is None else seed, self.steps, self.cfg,
                self.sampler, "simple", self.proxy.positive(p), self.proxy.negative(),
                {"samples": self.latent})[0]["samples"]
        self.runs += 1
        return out


# --------------------------------------------------------------------------- the search

class PromptSearch:
    """Greedy + local search for one prompt, memoising every schedule's PSNR."""

    def __init__(self, runner: OracleRunner, prompt_index: int, reference, psnr):
        self.r, self.i, self.ref, self.psnr = runner, prompt_index, reference, psnr
        self.memo = {}

    def score(self, schedule) -> float:
        key = frozenset(schedule) | {0}
        if key not in self.memo:
            self.memo[key] = self.psnr(self.r.sample(self.i, key), self.ref)
        return self.memo[key]

    def greedy(self, k_min: int, window: int = 0, lazy: int = 0):
        """Backward greedy from every step computed down to k_min computed steps. Returns
        {K: (schedule, psnr)} along the path. To bound the cost (each round has K candidates):
        window > 0: after the first round only the computed steps within `window` steps of
        the previous removal are tried afresh; lazy > 0: so are the `lazy` best of the other
        steps by their score in the round they were last tried (a stale score; lazy greedy).
        Both 0: every computed step every round (the exact greedy)."""
        n = self.r.steps
        cur = frozenset(range(n))
        path = {n: (cur, self.score(cur))}
        last = None
        stale = {}
        while len(cur) > k_min:
            cands = [j for j in sorted(cur) if j != 0]
            if (window or lazy) and last is not None:
                near = {j for j in cands if window and abs(j - last) <= window}
                rest = sorted((j for j in cands if j not in near),
                              key=lambda j: -stale.get(j, math.inf))
                cands = sorted(near | set(rest[:lazy])) or cands
            # the latest removals first: their candidates replay the longest prefix
            best = None
            for j in sorted(cands, reverse=True):
                s = cur - {j}
                v = self.score(s)
                stale[j] = v
                if best is None or v > best[1]:
                    best = (s, v, j)
            cur, last = best[0], best[2]
            stale.pop(last, None)
            path[len(cur)] = (cur, best[1])
        return path

    def exhaustive(self, k: int):
        """The best of EVERY schedule with k computed steps (step 0 among them): the
        placement limit itself, where the count C(N-1, k-1) is small enough to sample. In
        lexicographic order, so consecutive schedules share long prefixes (replayed)."""
        n = self.r.steps
        best = None
        for rest in itertools.combinations(range(1, n), k - 1):
            s = frozenset(rest) | {0}
            v = self.score(s)
            if best is None or v > best[1]:
                best = (s, v)
        return best

    def local(self, schedule, max_rounds: int = 6):
        """Move a computed step to a free neighbour while that improves the PSNR (first
        improvement, latest steps first); at most max_rounds passes."""
        n = self.r.steps
        cur = frozenset(schedule) | {0}
        val = self.score(cur)
        for _ in range(max_rounds):
            improved = False
            for j in sorted(cur, reverse=True):
                if j == 0 or j not in cur:
                    continue
                for d in (1, -1):
                    k = j + d
                    if k <= 0 or k >= n or k in cur:
                        continue
                    s = (cur - {j}) | {k}
                    v = self.score(s)
                    if v > val + 1e-9:
                        cur, val, improved = s, v, True
                        break
            if not improved:
                break
        return cur, val


# --------------------------------------------------------------------------- CLI

def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proxy", default="wan", help="wan, hunyuan, ltxv, wan_shapes (benchmarks/proxies.py)")
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--cfg", type=float, default=5.0)
    ap.add_argument("--sampler", default="euler")
    ap.add_argument("--prompts", type=int, default=3)
    ap.add_argument("--latent", default="3x16x16",
                    help="frames x height x width (ltxv: height and width halved, patch 1)")
    ap.add_argument("--estimates", default="reuse,extrapolate",
                    help="comma-separated: reuse, extrapolate, quad, indline, and any of them with "
                         "+refresh1 (the last block runs on every call)")
    ap.add_argument("--ks", default="",
                    help="computed steps to report (default N/2, N/3, N/4)")
    ap.add_argument("--k-min", type=int, default=0, help="greedy down to (default min(ks), "
                    "lower for refresh variants)")
    ap.add_argument("--window", type=int, default=0,
                    help="greedy tries only steps within this distance of the last removal "
                         "(0 = all)")
    ap.add_argument("--lazy", type=int, default=0,
                    help="greedy also tries the LAZY best other steps by their stale score "
                         "(0 with --window 0 = every step every round)")
    ap.add_argument("--local-rounds", type=int, default=6)
    ap.add_argument("--exhaustive", type=int, default=0, metavar="MAX",
                    help="also sample every schedule at each reported K whose count "
                         "C(N-1, K-1) is at most MAX: the true placement limit, to check "
                         "how far greedy + local search is from it (short schedules)")
    ap.add_argument("--thresholds", default=",".join(f"{t:g}" for t in THRESHOLDS))
    ap.add_argument("--targets", default=",".join(f"{t:g}" for t in TARGETS))
    ap.add_argument("--pack-estimates", default="",
                    help="estimates to run with the pack's rule (default: --estimates)")
    ap.add_argument("--no-pack", action="store_true", help="oracle only")
    ap.add_argument("--cache-mb", type=float, default=1500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "out" / "oracle"))
    return ap.parse_args()


def blocks_counter(proxy, dm):
    counter = {"n": 0}
    for b in proxy.blocks(dm):
        b.register_forward_pre_hook(lambda *_: counter.__setitem__("n", counter["n"] + 1))
    return counter


def interp_k(path_pts, k):
    """PSNR at (fractional) k computed steps, linear between the greedy front's points."""
    pts = sorted(path_pts)
    for (k0, v0), (k1, v1) in zip(pts, pts[1:]):
        if k0 <= k <= k1:
            return v0 if k1 == k0 else v0 + (k - k0) / (k1 - k0) * (v1 - v0)
    return None


def main():
    a = parse()
    load_pack()
    import torch
    import comfy.sd
    import nodes
    from benchmarks.metrics import psnr
    from benchmarks.proxies import get_proxy
    from benchmarks.skip_estimates import install_refresh, make_estimator, refresh_blocks
    from benchmarks.tables import interpolate_at
    from comfyui_teacache.teacache_core.config import TeaCacheConfig
    from comfyui_teacache.teacache_core.patching import apply_teacache

    bench_session("teacache-oracle-", a.threads)
    proxy = get_proxy(a.proxy)
    if not proxy.model.exists():
        raise SystemExit(f"no model file {proxy.model}: train it (scripts/train_proxy.py)")
    model = comfy.sd.load_diffusion_model(str(proxy.model))
    dm = model.get_model_object("diffusion_model")
    nblocks = len(proxy.blocks(dm))
    counter = blocks_counter(proxy, dm)
    f, h, w = (int(v) for v in a.latent.split("x"))
    if proxy.name == "ltxv":
        h, w = h // 2, w // 2
    latent = torch.zeros(1, proxy.eval_latent[0], f, h, w)
    n = a.steps
    ks = [int(k) for k in a.ks.split(",")] if a.ks else [n // 2, n // 3, n // 4]
    ks = sorted(set(ks), reverse=True)
    reductions = [n / k for k in ks]
    estimates = [e.strip() for e in a.estimates.split(",") if e.strip()]
    prompts = list(range(a.prompts))
    t_start = time.perf_counter()

    def plain(m, i):
        p = proxy.eval_prompts[i]
        counter["n"] = 0
        with torch.inference_mode():
            out = nodes.common_ksampler(m, 100 + i, n, a.cfg, a.sampler, "simple",
                                        proxy.positive(p), proxy.negative(),
                                        {"samples": latent})[0]["samples"]
        return out, counter["n"]

    t0 = time.perf_counter()
    refs = {i: plain(model, i) for i in prompts}
    t_ref = (time.perf_counter() - t0) / len(prompts)
    ref_blocks = statistics.mean(refs[i][1] for i in prompts)
    print(f"{proxy.name}: {nblocks} blocks, latent {list(latent.shape)}, {n} steps, "
          f"uncached run {t_ref:.2f}s, {ref_blocks:g} block executions", flush=True)

    results = {"meta": {"proxy": proxy.name, "steps": n, "cfg": a.cfg, "sampler": a.sampler,
                        "prompts": len(prompts), "latent": list(latent.shape),
                        "blocks": nblocks, "ks": ks, "window": a.window, "lazy": a.lazy,
                        "threads": torch.get_num_threads(),
                        "command": " ".join(["benchmarks/oracle.py"] + sys.argv[1:])},
               "oracle": {}, "pack": {}}

    # ---- the oracle, per estimate --------------------------------------------------------
    for est in estimates:
        t0 = time.perf_counter()
        runner = OracleRunner(model, proxy, latent, n, a.cfg, a.sampler, est,
                              cache_mb=a.cache_mb)
        nr = runner.refresh
        # block executions of K computed steps: K * B + (N - K) * refreshed blocks
        k_at = {r: (n * nblocks / r - n * nr) / (nblocks - nr) for r in reductions}
        k_min = a.k_min or max(1, min(math.floor(min(k_at.values())), min(ks)))
        per_prompt = []
        for i in prompts:
            t1 = time.perf_counter()
            ps = PromptSearch(runner, i, refs[i][0], psnr)
            path = ps.greedy(k_min, window=a.window, lazy=a.lazy)
            rec = {"greedy": {k: v for k, (s, v) in path.items()}, "local": {}}
            for r, kf in k_at.items():
                for k in sorted({math.floor(kf), math.ceil(kf)}):
                    if k < k_min or k > n or str(k) in rec["local"]:
                        continue
                    s, v = ps.local(path[k][0], a.local_rounds)
                    rec["local"][str(k)] = {"psnr": v, "schedule": sorted(s),
                                            "greedy_psnr": path[k][1]}
            if a.exhaustive:
                rec["exhaustive"] = {}
                for k in sorted({int(x) for x in rec["local"]}):
                    if math.comb(n - 1, k - 1) <= a.exhaustive:
                        s, v = ps.exhaustive(k)
                        rec["exhaustive"][str(k)] = {"psnr": v, "schedule": sorted(s),
                                                     "count": math.comb(n - 1, k - 1)}
            rec["runs"] = len(ps.memo)
            rec["seconds"] = time.perf_counter() - t1
            per_prompt.append(rec)
            print(f"  {est} prompt {i}: {len(ps.memo)} schedules in {rec['seconds']:.0f}s "
                  f"(replay hits {runner.caches[i].hits}, misses {runner.caches[i].misses}); "
                  + ", ".join(f"K={k}: {d['psnr']:.1f} dB {d['schedule']}"
                              for k, d in rec["local"].items())
                  + "".join(f"; exhaustive K={k} ({d['count']} schedules): {d['psnr']:.1f} dB "
                            f"{d['schedule']}" for k, d in rec.get("exhaustive", {}).items()),
                  flush=True)
            runner.caches.pop(i, None)      # free the prompt's replay cache
        front = {}
        for r, kf in k_at.items():
            vals = []
            for rec in per_prompt:
                pts = [(int(k), d["psnr"]) for k, d in rec["local"].items()]
                vals.append(interp_k(pts, kf) if len(pts) > 1 or kf == int(kf)
                            else rec["local"].get(str(int(kf)), {}).get("psnr"))
            vals = [v for v in vals if v is not None]
            front[f"{r:g}"] = {"k": kf, "mean": statistics.mean(vals) if vals else None,
                               "worst": min(vals) if vals else None}
        results["oracle"][est] = {"front": front, "prompts": per_prompt,
                                  "seconds": time.perf_counter() - t0}
        print(f"oracle {est}: " + ", ".join(
            f"{r}x (K={d['k']:.3g}): {_f(d['mean'])} / {_f(d['worst'])} dB"
            for r, d in front.items()) + f"  [{time.perf_counter() - t0:.0f}s]", flush=True)
        # evenly spaced schedules with this estimate, for reference
        even = {}
        for r, kf in k_at.items():
            if kf < 1:
                continue
            k = max(1, round(kf))
            sched = {round(j * n / k) for j in range(k)}
            vs = [psnr(runner.sample(i, sched), refs[i][0]) for i in prompts]
            even[f"{r:g}"] = {"k": k, "mean": statistics.mean(vs), "worst": min(vs)}
        results["oracle"][est]["even"] = even

    # ---- the pack's rule (threshold sweep, target_speedup) with each estimate --------------
    pack_estimates = [e for e in (a.pack_estimates or a.estimates).split(",") if e] \
        if not a.no_pack else []
    for est in pack_estimates:
        t0 = time.perf_counter()
        nr = refresh_blocks(est)

        def build(thr=0.0, target=0.0):
            m, reg = apply_teacache(model, TeaCacheConfig(
                thr, model_type="uncalibrated", target_speedup=target,
                skip_estimate="extrapolate"
                if est.startswith(("extrapolate", "quad", "indline"))
                else "reuse"))
            install_refresh(m, reg, nr)
            if est.split("+")[0].split("-")[0] in ("quad", "indline"):
                reg.customize_run = lambda run: setattr(run, "estimator", make_estimator(est))
            return m
        rows = []
        for thr in [float(t) for t in a.thresholds.split(",")]:
            m = build(thr)
            ps_, bl = [], []
            for i in prompts:
                out, nb = plain(m, i)
                ps_.append(psnr(out, refs[i][0]))
                bl.append(nb)
            rows.append({"thresh": thr, "reduction": ref_blocks / statistics.mean(bl),
                         "mean": statistics.mean(ps_), "worst": min(ps_)})
        tgt = []
        for r in [float(t) for t in a.targets.split(",")]:
            ps_, bl = [], []
            for i in prompts:
                out, nb = plain(build(0.0, r), i)     # a fresh node: a first run
                ps_.append(psnr(out, refs[i][0]))
                bl.append(nb)
            tgt.append({"target": r, "reduction": ref_blocks / statistics.mean(bl),
                        "mean": statistics.mean(ps_), "worst": min(ps_)})
        at = {}
        for r in reductions:
            at[f"{r:g}"] = {
                "mean": interpolate_at([(x["reduction"], x["mean"]) for x in rows], r),
                "worst": interpolate_at([(x["reduction"], x["worst"]) for x in rows], r)}
        results["pack"][est] = {"thresholds": rows, "targets": tgt, "at": at,
                                "seconds": time.perf_counter() - t0}
        print(f"pack {est}: threshold rule " + ", ".join(
            f"{r}x: {_f(d['mean'])} / {_f(d['worst'])}" for r, d in at.items())
            + "; target " + ", ".join(f"{x['target']:g} ({x['reduction']:.2f}x): "
                                      f"{x['mean']:.1f} / {x['worst']:.1f}" for x in tgt)
            + f"  [{time.perf_counter() - t0:.0f}s]", flush=True)

    results["meta"]["seconds"] = time.perf_counter() - t_start
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    table = render(results)
    (out / "table.md").write_text(table)
    print(table)
    print(f"wrote {out}/results.json, table.md  ({results['meta']['seconds']:.0f}s)")


def _f(v):
    return "-" if v is None else f"{v:.1f}"


def _exhaustive_front(o, ks) -> dict:
    """K -> 'mean / worst' of the exhaustive best over the prompts, where every prompt has it."""
    out = {}
    for k in ks:
        vals = [p.get("exhaustive", {}).get(str(k), {}).get("psnr") for p in o.get("prompts", [])]
        if vals and all(v is not None for v in vals):
            out[k] = f"{statistics.mean(vals):.1f} / {min(vals):.1f}"
    return out


def render(res) -> str:
    meta = res["meta"]
    rs = [f"{meta['steps'] / k:g}" for k in meta["ks"]]
    lines = [f"proxy {meta['proxy']}, {meta['steps']} {meta['sampler']} steps, CFG {meta['cfg']:g}, "
             f"{meta['prompts']} prompts, latent {meta['latent']}; PSNR dB mean / worst",
             "", "| estimate | placement | " + " | ".join(f"{r}x" for r in rs) + " |",
             "|---|---|" + "---|" * len(rs)]
    for est in list(dict.fromkeys(list(res["oracle"]) + list(res["pack"]))):
        o = res["oracle"].get(est, {})
        if o:
            lines.append(f"| {est} | oracle | " + " | ".join(
                f"{_f(o['front'][r]['mean'])} / {_f(o['front'][r]['worst'])}" for r in rs)
                + " |")
            ex = _exhaustive_front(o, meta["ks"])
            if ex:
                lines.append(f"| {est} | every schedule (exhaustive) | " + " | ".join(
                    ex.get(k, "-") for k in meta["ks"]) + " |")
        p = res["pack"].get(est)
        if p:
            lines.append(f"| {est} | threshold rule | " + " | ".join(
                f"{_f(p['at'][r]['mean'])} / {_f(p['at'][r]['worst'])}" for r in rs) + " |")
            tg = {f"{x['target']:g}": x for x in p["targets"]}
            lines.append(f"| {est} | target_speedup | " + " | ".join(
                (f"{tg[r]['mean']:.1f} / {tg[r]['worst']:.1f} ({tg[r]['reduction']:.2f}x)"
                 if r in tg else "-") for r in rs) + " |")
        ev = o.get("even")
        if ev:
            lines.append(f"| {est} | evenly spaced | " + " | ".join(
                (f"{_f(ev[r]['mean'])} / {_f(ev[r]['worst'])} (K={ev[r]['k']})" if r in ev else "-")
                for r in rs) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
