"""Benchmark: target_speedup against the fixed-threshold sweep on a trained proxy.

For each sampler and step count: the uncached run per prompt (the reference); TeaCache with
fixed thresholds (the greedy rule's front); TeaCache with target_speedup at each target, on
the first run of a fresh node (no profile yet: the distances to come predicted from the
schedule moves) and on later runs (the node sampled once before with the same schedule, on a
calibration prompt: predicted from that run's distances) and on stored-profile runs (a fresh
node with the profile store on, after another node stored its profile of the same model and
schedule on a calibration prompt: as a new node or a restarted ComfyUI plans); all three
with skip_estimate reuse and extrapolate. All uncalibrated (identity rescale), CFG on (cond and
uncond batched). Optionally (--separate) the targets once more with per-cond decisions (cond
and uncond choose their computed calls independently).

Reported per cell: realised reduction in transformer-block executions (uncached / method) and
its error against the target, PSNR / SSIM of the final latent against the uncached run (mean
and worst over the prompts), and the threshold front's PSNR interpolated (in log reduction,
benchmarks/tables.interpolate_at) at the same reduction.

Writes <out>/results.json, <out>/table.md (every row) and <out>/summary.md (one row per cell,
first and later runs side by side, and the mean / min delta to the front); --render rewrites
the two tables from a results.json.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))
sys.path.insert(0, str(ROOT))

from comfy_env import bench_session, load_pack  # noqa: E402
from benchmarks.first_run_loo import label as shape_label, rule_variant as _place  # noqa: E402

THRESHOLDS = [0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.3, 0.45, 0.7, 1.0]
TARGETS = [1.5, 2.0, 3.0, 4.0]


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proxy", default="wan", help="trained proxy (benchmarks/proxies.py): "
                    "wan, hunyuan, ltxv or wan_shapes")
    ap.add_argument("--model", default=None, help="model file (default: the proxy's)")
    ap.add_argument("--samplers", default="euler,dpmpp_2m,uni_pc")
    ap.add_argument("--steps", default="20,30,50")
    ap.add_argument("--targets", default=",".join(f"{t:g}" for t in TARGETS))
    ap.add_argument("--thresholds", default=",".join(f"{t:g}" for t in THRESHOLDS))
    ap.add_argument("--estimates", default="reuse,extrapolate")
    ap.add_argument("--prompts", type=int, default=4, help="evaluation prompts")
    ap.add_argument("--cfg", type=float, default=5.0)
    ap.add_argument("--scheduler", default="simple",
                    help="ComfyUI scheduler of every run (simple: the one every constant was "
                         "chosen on; beta, normal, ...: a schedule no choice has seen)")
    ap.add_argument("--latent", default=None,
                    help="frames x height x width (default: the proxy's evaluation latent, "
                         "5x16x16 for wan, hunyuan and wan_shapes, 5x8x8 for ltxv)")
    ap.add_argument("--kinds", default="first,later,stored",
                    help="which target rows: first, later, stored, self (comma-separated; self: "
                         "planned on the same prompt and seed's own earlier run)")
    ap.add_argument("--prompt-set", default="eval", choices=("eval", "calib"),
                    help="eval: the proxy's evaluation prompts (seeds 100+); calib: calibration "
                         "prompts 4.. (seeds 700+), for choosing constants (first_run_loo.py)")
    ap.add_argument("--prompt-offset", type=int, default=0, metavar="N",
                    help="with --prompt-set eval: start at evaluation prompt N (seed 100 + N), "
                         "a second set of held-out prompts (0: the first --prompts ones)")
    ap.add_argument("--first-run-shapes", default=None, metavar="M:S[:W[:R[:P[:V]]]],...",
                    help="first-run predictions to measure: move power : sigma power pairs of "
                         "budget.call_scales, optionally : a first-run warm-up fraction W "
                         "and : a recent fit R and : a fitted power's ridge P "
                         "and : V = 1 to plan first runs on the model's conditioning "
                         "vectors where its family has them, 2 on the shipped shape with "
                         "the vectors' phase (benchmarks/target_variants.py; default: the "
                         "shipped constants only)")
    ap.add_argument("--cost-weights", default=None, metavar="SKIP_COST_JSON",
                    help="a benchmarks/skip_cost.py results file: first-run shapes with a "
                         "seventh field C > 0 weigh the indicator by this proxy's measured "
                         "cost per unit at each call's sigma to the power C "
                         "(benchmarks/target_variants.use_cost_weights)")
    ap.add_argument("--placements", default=None, metavar="F,...",
                    help="target rows with the online threshold at these fractions of the "
                         "interval of thresholds that spend the budget (benchmarks/target_variants.py; "
                         "default 0: the shipped rule); with --extend, the rows to add")
    ap.add_argument("--late-weights", default=None, metavar="A,...",
                    help="later and stored-profile rows with the calls to come weighted by "
                         "(sigma now / sigma there) ** A (benchmarks/target_variants.py; "
                         "default 0: the shipped rule); with --extend, the rows to add")
    ap.add_argument("--spacing-caps", default=None, metavar="F,...",
                    help="target rows with at most ceil(F x calls / budget) skipped calls in a "
                         "row (benchmarks/target_variants.py; default 0: the shipped rule); "
                         "with --extend, the rows to add")
    ap.add_argument("--later-plans", default=None, metavar="NAME,...",
                    help="later and stored-profile rows planned on: prediction (shipped), "
                         "profile (the rule before), profile recent, blend "
                         "(benchmarks/target_variants.py); with --extend, the rows to add")
    ap.add_argument("--match", type=int, default=0, metavar="TRIES",
                    help="per target, search up to TRIES fixed thresholds for one that realises "
                         "the same block runs (bisection in the sweep's own gaps): the front at "
                         "the same runs, measured instead of interpolated between two other "
                         "placements")
    ap.add_argument("--extend", default=None, metavar="RESULTS_JSON",
                    help="add matched thresholds to an earlier results.json (its rows are kept; "
                         "only the uncached references, the matched thresholds and the target "
                         "rows that --placements / --first-run-shapes / --late-weights / "
                         "--later-plans ask for are sampled, for the cells and estimates it has)")
    ap.add_argument("--separate", action="store_true",
                    help="also measure per-cond (not shared) computed calls")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "out" / "target_benchmark"))
    ap.add_argument("--quick", action="store_true", help="tiny smoke run")
    ap.add_argument("--render", default=None, metavar="RESULTS_JSON",
                    help="only re-render table.md and summary.md from a results.json")
    return ap.parse_args()


def main():
    a = parse()
    if a.render:
        res = json.loads(Path(a.render).read_text())
        write_tables(Path(a.render).parent, res["meta"], res["rows"])
        return
    if a.quick:
        a.samplers, a.steps, a.targets, a.thresholds, a.prompts = "euler", "8", "2", "0.1,0.3", 1
        a.estimates = "reuse"
        a.kinds = "first,later,stored"
    earlier = None
    if a.extend:        # sample as the earlier run did: its proxy, prompts, latent and cells
        earlier = json.loads(Path(a.extend).read_text())
        m, rs = earlier["meta"], earlier["rows"]
        a.proxy, a.cfg, a.prompts = m["proxy"], m["cfg"], m["prompts"]
        a.scheduler = m.get("scheduler", "simple")
        a.prompt_set = m.get("prompt_set", "eval")
        a.prompt_offset = m.get("prompt_offset", 0)
        a.latent = "x".join(str(v) for v in m["latent"][2:])
        a.samplers = ",".join(dict.fromkeys(r["sampler"] for r in rs))
        a.steps = ",".join(dict.fromkeys(str(r["steps"]) for r in rs))
        a.estimates = ",".join(dict.fromkeys(r["estimate"] for r in rs))
        a.match = a.match or 6
    load_pack()
    import torch
    import comfy.sd
    import nodes
    from benchmarks import target_variants as variants
    from benchmarks.metrics import psnr, ssim
    from benchmarks.proxies import get_proxy
    from benchmarks.tables import interpolate_at
    from comfyui_teacache.nodes.apply import TeaCacheApply
    from comfyui_teacache.teacache_core import budget as pack_budget
    from comfyui_teacache.teacache_core.patching import registration_of
    from comfyui_teacache.teacache_core.target import TargetRule

    bench_session("teacache-target-bench-", a.threads)
    proxy = get_proxy(a.proxy)
    a.model = a.model or str(proxy.model)
    model = comfy.sd.load_diffusion_model(a.model)
    dm = model.get_model_object("diffusion_model")
    blocks = {"n": 0}
    for b in proxy.blocks(dm):
        b.register_forward_pre_hook(lambda *_: blocks.__setitem__("n", blocks["n"] + 1))
    f, h, w = (int(v) for v in (a.latent or "x".join(map(str, proxy.eval_latent[1:]))).split("x"))
    latent = torch.zeros(1, proxy.eval_latent[0], f, h, w)
    if a.prompt_set == "eval":
        off = a.prompt_offset
        prompts, seed0 = proxy.eval_prompts[off:off + a.prompts], 100 + off
    else:       # calibration prompt 0 warms the later and stored rows' nodes
        prompts, seed0 = proxy.calib_prompts[4:4 + a.prompts], 700
    shipped = (pack_budget.MOVE_POWER, pack_budget.SIGMA_POWER)
    placements = [float(x) for x in a.placements.split(",")] if a.placements else [0.0]
    weights = [float(x) for x in a.late_weights.split(",")] if a.late_weights else [0.0]
    plans = a.later_plans.split(",") if a.later_plans else [variants.SHIPPED_LATER_PLAN]
    caps = [float(x) for x in a.spacing_caps.split(",")] if a.spacing_caps else [0.0]
    shapes = ([_shape(x) for x in a.first_run_shapes.split(",")]
              if a.first_run_shapes else [shipped])
    kinds = a.kinds.split(",")

    def run(m, prompt, seed, steps, sampler):
        pos, neg = proxy.positive(prompt), proxy.negative()
        blocks["n"] = 0
        # as ComfyUI's executor runs a prompt: without it, samplers that are not wrapped in
        # no_grad (uni_pc) keep the autograd graph of every step alive
        with torch.inference_mode():
            out = nodes.common_ksampler(m, seed, steps, a.cfg, sampler, a.scheduler, pos, neg,
                                        {"samples": latent})[0]["samples"]
        return out, blocks["n"]

    def node(thresh=0.0, target=0.0, estimate="reuse", store=False):
        # the profile store is off unless a row measures it: a fresh node is then a first run
        return TeaCacheApply.execute(model, thresh, 0, -1, "uncalibrated", "model_device", False,
                                     0, estimate, target, store).result[0]

    targets = [float(t) for t in a.targets.split(",")]
    thresholds = [float(t) for t in a.thresholds.split(",")]
    estimates = a.estimates.split(",")
    curves = {}
    if a.cost_weights:
        sc = json.loads(Path(a.cost_weights).read_text())["proxies"][a.proxy]
        curves = {e: variants.cost_curve(sc["prompts"], e, sc["sigmas"]) for e in estimates}
    modes = [("shared", True)] + ([("separate", False)] if a.separate else [])
    rows = earlier["rows"] if earlier else []
    t_start = time.perf_counter()
    for sampler in a.samplers.split(","):
        for steps in (int(s) for s in a.steps.split(",")):
            if earlier and not any(r["sampler"] == sampler and r["steps"] == steps
                                   for r in rows):
                continue
            refs = [run(model, p, seed0 + i, steps, sampler) for i, p in enumerate(prompts)]
            ref_blocks = statistics.mean(n for _, n in refs)

            def measure(make_each, label, **meta):
                ps, ss, bl, extra = [], [], [], []
                for i, p in enumerate(prompts):
                    m = make_each(i, p)
                    out, n = run(m, p, seed0 + i, steps, sampler)
                    ps.append(psnr(out, refs[i][0]))
                    ss.append(ssim(out, refs[i][0]))
                    bl.append(n)
                    s = registration_of(m).last_summary
                    extra.append(s.get("target", {}))
                red = ref_blocks / statistics.mean(bl)
                row = {"sampler": sampler, "steps": steps, "method": label, **meta,
                       "blocks": statistics.mean(bl), "reduction": red,
                       "psnr": _mean(ps), "psnr_worst": min(ps), "ssim": statistics.mean(ss),
                       "ssim_worst": min(ss), "psnr_each": ps, "blocks_each": bl}
                if extra and extra[0]:
                    eq = [e.get("equivalent_threshold") for e in extra]
                    row["equivalent_threshold"] = [x for x in eq if x is not None]
                    row["planned"] = [bool(e.get("planned")) for e in extra]
                    row["plan"] = [e.get("plan") for e in extra]
                rows.append(row)
                return row

            for est in estimates:
                if earlier and not any(r["sampler"] == sampler and r["steps"] == steps
                                       and r["estimate"] == est for r in rows):
                    continue
                for t in thresholds if not earlier else ():
                    m = node(thresh=t, estimate=est)
                    measure(lambda *_, m=m: m, f"threshold {t:g}", kind="threshold", estimate=est,
                            param=t)
                new_rows = (not earlier or a.placements or a.first_run_shapes or a.late_weights
                            or a.later_plans or a.spacing_caps)
                for mode, shared in modes if new_rows else ():
                    TargetRule.SHARED = shared
                    for r, place, wt, plan, cap in ((r, f, w, p, c) for f in placements
                                                    for w in weights for p in plans
                                                    for c in caps for r in targets):
                        variants.use(place)
                        variants.use_spacing_cap(cap)
                        tag = {"placement": place, **({"late_weight": wt} if wt else {}),
                               "later_plan": plan, **({"spacing_cap": cap} if cap else {})}
                        # first run: a fresh node per prompt (no profile of this schedule yet)
                        for shape in shapes if "first" in kinds and not wt \
                                and plan == variants.SHIPPED_LATER_PLAN else ():
                            pack_budget.MOVE_POWER, pack_budget.SIGMA_POWER = shape[:2]
                            variants.use_warmup(shape[2] if len(shape) > 2 else 0.0)
                            variants.use_recent(shape[3] if len(shape) > 3 else 0.0,
                                                shape[4] if len(shape) > 4 else 0.0)
                            variants.use_schedule_vectors(model, int(shape[5])
                                                          if len(shape) > 5 else 0)
                            variants.use_cost_weights(curves.get(est), shape[6]
                                                      if len(shape) > 6 else 0.0)
                            extra = {} if shape == shipped else {"shape": list(shape)}
                            measure(lambda *_, r=r, est=est: node(target=r, estimate=est),
                                    f"target {r:g} first", kind="first", estimate=est,
                                    param=r, mode=mode, **extra, **tag)
                        pack_budget.MOVE_POWER, pack_budget.SIGMA_POWER = shipped
                        variants.use_warmup(0.0)
                        variants.use_recent(0.0)
                        variants.use_schedule_vectors(model, 0)
                        variants.use_cost_weights(None)
                        variants.use_late_weight(wt)
                        variants.use_later_plan(plan)
                        # later runs: one node that sampled once before (another prompt/seed)
                        if "later" in kinds:
                            warm = node(target=r, estimate=est)
                            run(warm, proxy.calib_prompts[0], 999, steps, sampler)
                            measure(lambda *_, w=warm: w, f"target {r:g} later", kind="later",
                                    estimate=est, param=r, mode=mode, **tag)
                        # stored profile: another node stored this schedule's profile (another
                        # prompt/seed); each prompt's fresh node plans from the store
                        if "stored" in kinds:
                            run(node(target=r, estimate=est, store=True),
                                proxy.calib_prompts[0], 999, steps, sampler)
                            measure(lambda *_, r=r, est=est: node(target=r, estimate=est,
                                                                  store=True),
                                    f"target {r:g} stored", kind="stored", estimate=est,
                                    param=r, mode=mode, **tag)
                        # self: the node sampled this very prompt and seed before, so it plans
                        # on (nearly) this run's own distances: the limit of any prediction
                        if "self" in kinds:
                            def warmed(i, p, r=r, est=est):
                                m = node(target=r, estimate=est)
                                run(m, p, seed0 + i, steps, sampler)
                                return m
                            measure(warmed, f"target {r:g} self", kind="self", estimate=est,
                                    param=r, mode=mode, **tag)
                    TargetRule.SHARED = True
                    variants.use(0.0)
                    variants.use_spacing_cap(0.0)
                    variants.use_late_weight(0.0)
                    variants.use_later_plan(variants.SHIPPED_LATER_PLAN)
                if a.match:
                    match_front(rows, sampler, steps, est, a.match, measure, node)
            Path(a.out).mkdir(parents=True, exist_ok=True)
            (Path(a.out) / "partial.json").write_text(json.dumps(rows, default=str))
            print(f"{sampler} {steps} steps done ({time.perf_counter() - t_start:.0f}s)",
                  flush=True)

    # the threshold front at the reduction each target run realised (a matched threshold,
    # where one was found, is a point of the front at exactly that reduction)
    for r in rows:
        if r["kind"] in KINDS:
            front = [x for x in rows if x["kind"] == "threshold" and x["sampler"] == r["sampler"]
                     and x["steps"] == r["steps"] and x["estimate"] == r["estimate"]]
            r["front_psnr"] = interpolate_at([(x["reduction"], x["psnr"]) for x in front],
                                             r["reduction"])
            r["front_psnr_worst"] = interpolate_at([(x["reduction"], x["psnr_worst"])
                                                    for x in front], r["reduction"])
            r["front_ssim"] = interpolate_at([(x["reduction"], x["ssim"]) for x in front],
                                             r["reduction"])
            r["front_exact"] = any(abs(x["reduction"] - r["reduction"]) < 1e-9 for x in front)
            r["error"] = r["reduction"] / r["param"] - 1
    command = " ".join(["benchmarks/target_benchmark.py"] + sys.argv[1:])
    meta = {"command": command,
            "proxy": a.proxy, "prompt_set": a.prompt_set,
            **({"prompt_offset": a.prompt_offset} if a.prompt_offset else {}),
            "shipped_shape": list(shipped),
            "shipped_recent": pack_budget.RECENT_CALLS,
            "shipped_later_plan": variants.SHIPPED_LATER_PLAN,
            "match": a.match, "prompts": len(prompts), "cfg": a.cfg, "scheduler": a.scheduler,
            "latent": list(latent.shape),
            "model": Path(a.model).name, "seconds": round(time.perf_counter() - t_start),
            "machine": f"{platform.machine()}, {a.threads} torch threads, torch {torch.__version__}"}
    if earlier:         # the earlier run's meta, and what extended it
        meta = {**earlier["meta"], "extended_by": command, "match": a.match,
                "seconds": earlier["meta"]["seconds"] + meta["seconds"]}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1,
                                                 default=str))
    print(write_tables(out, meta, rows))


def _shape(text) -> tuple:
    """"M:S", "M:S:W", "M:S:W:R", "M:S:W:R:P", "M:S:W:R:P:V" or "M:S:W:R:P:V:C" (W, the
    first-run warm-up fraction; R, the recent fit's calls; P, the fitted power's ridge; V, 1:
    the conditioning vectors' moves, 2: the shipped shape with their phase; C: weighed by the
    measured cost per unit to the power C, --cost-weights; trailing zeros left out)."""
    v = tuple(float(x) for x in text.split(":"))
    while len(v) > 2 and v[-1] == 0:
        v = v[:-1]
    return v


def next_threshold(known, goal_blocks, hints=()):
    """The next fixed threshold to sample in the search for one that realises `goal_blocks`
    (mean block executions), from the (threshold, blocks) pairs sampled so far: None when one
    already does, or when the sampled ones leave no gap to search. A hint (the target runs'
    equivalent thresholds) inside the gap comes first; else the geometric middle of the gap
    (half the smallest threshold, or twice the largest, where the gap is open)."""
    if any(abs(b - goal_blocks) < 1e-9 for _, b in known):
        return None
    more = [t for t, b in known if b > goal_blocks]        # too many block runs: raise it
    fewer = [t for t, b in known if b < goal_blocks]
    lo, hi = (max(more) if more else None), (min(fewer) if fewer else None)
    if lo is not None and hi is not None and lo >= hi:
        return None
    tried = {t for t, _ in known}
    for h in hints:
        if h not in tried and (lo is None or h > lo) and (hi is None or h < hi):
            return h
    if lo is None:
        return hi / 2 if hi and hi > 1e-6 else None
    if hi is None:
        return lo * 2 if lo < 100 else None
    mid = math.sqrt(lo * hi) if lo > 0 else hi / 2
    return None if hi - lo < 1e-7 * hi else mid


def match_front(rows, sampler, steps, est, tries, measure, node):
    """Per distinct block count of the target rows of one cell and skip estimate: sample
    fixed thresholds (kind "threshold", matched True) until one realises the same mean block
    executions, at most `tries` per count. The search only bisects the sweep's own gaps (it
    takes no hint from the target rows), so the front does not lean on the method it judges:
    many thresholds make the same number of computes, at other calls, with other PSNR."""
    cell = [r for r in rows if r["sampler"] == sampler and r["steps"] == steps
            and r["estimate"] == est]
    goals = dict.fromkeys(r["blocks"] for r in cell if r["kind"] in KINDS)
    for goal in goals:
        for _ in range(tries):
            known = [(r["param"], r["blocks"]) for r in rows if r["kind"] == "threshold"
                     and r["sampler"] == sampler and r["steps"] == steps
                     and r["estimate"] == est]
            t = next_threshold(known, goal)
            if t is None:
                break
            m = node(thresh=t, estimate=est)
            measure(lambda *_, m=m: m, f"threshold {t:.4g} (matched)", kind="threshold",
                    estimate=est, param=t, matched=True)


def write_tables(out: Path, meta, rows) -> str:
    """table.md (every row) and summary.md (one row per cell, first and later runs side by
    side, plus the mean/min delta to the front per skip estimate and run)."""
    table = render(meta, rows)
    (out / "table.md").write_text(table)
    summary = render_summary(rows)
    (out / "summary.md").write_text(summary)
    return table + "\n" + summary


def _mean(v):
    finite = [x for x in v if math.isfinite(x)]
    return statistics.mean(finite) if len(finite) == len(v) else math.inf


def _f(x, nd=1):
    if x is None:
        return "-"
    return "inf" if math.isinf(x) else f"{x:.{nd}f}"


def _delta(r, key="psnr"):
    front = r.get("front_" + key)
    if front is None or not math.isfinite(r[key]):
        return None
    return r[key] - front


def _groups(rows):
    """(skip estimate, mode, placement, its target rows) for each present, in the rows' order."""
    for est in dict.fromkeys(r["estimate"] for r in rows):
        for mode in dict.fromkeys(r.get("mode") for r in rows if r.get("mode")):
            sel = [r for r in rows if r["estimate"] == est and r.get("mode") == mode]
            for place in dict.fromkeys(_place(r) for r in sel):
                yield est, mode, place, [r for r in sel if _place(r) == place]


def render(meta, rows) -> str:
    lines = [f"Model {meta['model']}, CFG {meta['cfg']}, latent {meta['latent']}, "
             f"{meta['prompts']} evaluation prompts, scheduler {meta.get('scheduler', 'simple')}, "
             f"uncalibrated (identity rescale); {meta['machine']}; {meta['seconds']} s. Command: "
             f"`{meta['command']}`.", "",
             "Reduction = uncached block executions / the method's (error against the target "
             "in brackets). PSNR dB mean / worst over the prompts against the uncached run; "
             "front = the fixed-threshold sweep (same skip estimate) interpolated at the same "
             "reduction; delta = target mean PSNR - front mean PSNR.", ""]
    for est, mode, place, sel in _groups(rows):
        lines += [f"### skip_estimate {est}, {mode} computed calls, {place}", "",
                  "| sampler | steps | target | run | reduction (error) | PSNR mean / worst "
                  "| SSIM mean / worst | front PSNR mean / worst | delta dB | equivalent "
                  "threshold |",
                  "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
        for r in sel:
            eq = r.get("equivalent_threshold") or []
            eqs = f"{min(eq):.3g}-{max(eq):.3g}" if eq else "-"
            delta = _delta(r)
            lines.append(
                f"| {r['sampler']} | {r['steps']} | {r['param']:g}x | {_kind(r)} | "
                f"{r['reduction']:.2f}x ({100 * r['error']:+.1f}%) | {_f(r['psnr'])} / "
                f"{_f(r['psnr_worst'])} | {r['ssim']:.4f} / {r['ssim_worst']:.4f} | "
                f"{_f(r.get('front_psnr'))} / {_f(r.get('front_psnr_worst'))} | "
                f"{'-' if delta is None else f'{delta:+.2f}'} | {eqs} |")
        lines.append("")
    lines += ["### fixed-threshold sweep (the front)", "",
              "| sampler | steps | skip_estimate | threshold | reduction | PSNR mean / worst |",
              "|---|---:|---|---:|---:|---:|"]
    for r in rows:
        if r["kind"] == "threshold":
            mark = " (matched)" if r.get("matched") else ""
            lines.append(f"| {r['sampler']} | {r['steps']} | {r['estimate']} | {r['param']:.4g}{mark} | "
                         f"{r['reduction']:.2f}x | {_f(r['psnr'])} / {_f(r['psnr_worst'])} |")
    return "\n".join(lines) + "\n"


def _kind(r) -> str:
    shape = r.get("shape")
    if not shape:
        return r["kind"]
    return f"{r['kind']} ({shape_label(shape)})"


KINDS = ("first", "later", "stored", "self")


def render_summary(rows) -> str:
    """Per skip estimate and mode: one line per (sampler, steps, target) with the first, the
    later and the stored-profile run next to the front, then the mean / min / max delta over
    the cells. First runs with another prediction than the shipped one (shape) are left out."""
    lines = []
    for est, mode, place, sel in _groups(rows):
        sel = [r for r in sel if not r.get("shape")]
        cells = {}
        for r in sel:
            cells.setdefault((r["sampler"], r["steps"], r["param"]), {})[r["kind"]] = r
        present = [k for k in KINDS if any(k in c for c in cells.values())]
        names = " / ".join(present)
        lines += [f"#### skip_estimate {est}, {mode} computed calls, {place}", "",
                  f"| sampler | steps | target | reduction {names} | "
                  + " | ".join(f"{k} PSNR mean / worst" for k in present)
                  + f" | front PSNR mean / worst | delta {names} dB |",
                  "|---|---:|---:|---:|" + "---:|" * len(present) + "---:|---:|"]
        for (sampler, steps, t), c in cells.items():
            xs = [c.get(k) for k in present]
            ref = next(x for x in xs if x)
            red = " / ".join(f"{x['reduction']:.2f}x" if x else "-" for x in xs)
            ps = [f"{_f(x['psnr'])} / {_f(x['psnr_worst'])}" if x else "-" for x in xs]
            ds = " / ".join("-" if x is None or _delta(x) is None else f"{_delta(x):+.1f}"
                            for x in xs)
            lines.append(f"| {sampler} | {steps} | {t:g}x | {red} | " + " | ".join(ps) +
                         f" | {_f(ref.get('front_psnr'))} / {_f(ref.get('front_psnr_worst'))} "
                         f"| {ds} |")
        lines.append("")
        for kind in present:
            d = [_delta(r) for r in sel if r["kind"] == kind]
            d = [x for x in d if x is not None]
            dw = [_delta(r, "psnr_worst") for r in sel if r["kind"] == kind]
            dw = [x for x in dw if x is not None]
            err = [abs(r["error"]) for r in sel if r["kind"] == kind]
            if not d:
                continue
            lines.append(
                f"- {kind} runs: delta to the front mean {statistics.mean(d):+.2f} dB "
                f"(min {min(d):+.2f}, max {max(d):+.2f}; >= 0 in {sum(x >= 0 for x in d)} of "
                f"{len(d)} cells), worst prompt {statistics.mean(dw):+.2f} dB (min "
                f"{min(dw):+.2f}); reduction within 5% of the target in "
                f"{sum(e <= 0.05 for e in err)} of {len(err)} cells (largest error "
                f"{100 * max(err):.1f}%)"
                + (f"; the front measured at the same runs (a matched threshold) in "
                   f"{sum(bool(r.get('front_exact')) for r in sel if r['kind'] == kind)} of "
                   f"{len(err)} cells, interpolated in the others"
                   if any("front_exact" in r for r in sel) else ""))
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
