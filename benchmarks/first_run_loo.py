"""Leave-one-proxy-out choice of target_speedup's first-run prediction (issue 22).

A first run predicts the distances still to come as c * move ** M / sigma ** S
(teacache_core/budget.call_scales). M and S are fitted constants, so they are chosen on some
proxies and reported on another: this reads one tuning run of benchmarks/target_benchmark.py
per proxy (``--prompt-set calib --kinds first --first-run-shapes M:S,...``: calibration
prompts, never the evaluation prompts), scores every shape on every proxy, and for each proxy
picks the shape that the two OTHER proxies prefer. The pick is then measured on the held-out
proxy's evaluation prompts by target_benchmark.py (``--first-run-shapes <pick>``); that
figure, not the tuning score, is the result.

Score of a shape on a proxy: the first runs' PSNR delta to the fixed-threshold front at the
same reduction (mean over the cells: sampler x steps x target), taken for each skip estimate,
and the smaller of the two (a shape must hold with reuse and extrapolate). A pick maximises
the smaller of its two tuning proxies' scores (it must hold on both), and stays the shipped
shape unless the best beats it by more than MARGIN dB (the default changes only on a clear
win). The shape shipped is the one all proxies together pick, and is labelled in-sample.

    .venv/bin/python benchmarks/first_run_loo.py out/tune_wan/results.json \\
        out/tune_hunyuan/results.json out/tune_ltxv/results.json [--out out/first_run_loo.md] \\
        [--eval out/target_wan/results.json out/target_hunyuan/results.json ...]

With --eval (target_benchmark.py runs on the evaluation prompts, one per proxy, measuring the
picks with --first-run-shapes): the held-out table, per proxy and skip estimate, of the first
runs with that proxy's pick (held out), the later and the stored-profile runs, against the
issue's goal (mean within 0.3 dB of the front or above, worst prompt within 3 dB of the front's
worst, realised reduction within 5%).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path


MARGIN = 0.3


def fit_suffix(shape) -> str:
    """What a first-run prediction adds to its move and sigma powers: ", warm-up W"
    (target_variants.use_warmup), ", recent R" or ", every call" (use_recent), ", fitted
    power P" (use_recent's ridge), the schedule vectors (use_schedule_vectors) and ", cost
    weights" (use_cost_weights)."""
    out = f", warm-up {shape[2]:g}" if len(shape) > 2 and shape[2] else ""
    if len(shape) > 3 and shape[3]:
        out += f", recent {shape[3]:g}" if shape[3] > 0 else ", every call"
    if len(shape) > 4 and shape[4]:
        out += f", fitted power {shape[4]:g}"
    if len(shape) > 5 and shape[5]:
        out += ", schedule vectors" if shape[5] == 1 else ", schedule vectors' phase"
    if len(shape) > 6 and shape[6]:
        out += ", cost weights" + (f"^{shape[6]:g}" if shape[6] != 1 else "")
    return out


def label(shape) -> str:
    """A first-run prediction's name: "move^M / sigma^S", with its warm-up and recent fit."""
    return f"move^{shape[0]:g} / sigma^{shape[1]:g}" + fit_suffix(shape)


def _name(shape) -> str:
    """"M : S" and its fit_suffix; a later-run rule variant (a string) as it is."""
    if isinstance(shape, str):
        return shape
    return f"{shape[0]:g} : {shape[1]:g}" + fit_suffix(shape)


def shape_of(row, shipped) -> tuple:
    """A first-run prediction as (M, S, warm-up, recent fit), the shipped one's where the row
    has none (`shipped`: shipped_of(res))."""
    s = tuple(row.get("shape") or shipped)
    s += (0.0,) * (3 - len(s)) if len(s) < 3 else ()
    return s if len(s) > 3 else s + (shipped[3],)


def rule_variant(row) -> str:
    """How a row's online threshold was placed, its later-run distances weighed and planned
    (benchmarks/target_variants.py): "placement F[, late weight A][, plan P][, spacing cap
    C]"; rows from before any existed: placement 0 (rows measured with --later-plans name
    their plan, "profile" the shipped one)."""
    w, plan, cap = row.get("late_weight"), row.get("later_plan"), row.get("spacing_cap")
    return (f"placement {row.get('placement', 0.0):g}" + (f", late weight {w:g}" if w else "")
            + (f", plan {plan}" if plan else "") + (f", spacing cap {cap:g}" if cap else ""))


def variant_of(row, shipped, kind: str = "first"):
    """What a tuning row measures: the first-run shape (kind "first"), or the rule variant of
    the later runs (kind "later": rule_variant)."""
    return shape_of(row, shipped) if kind == "first" else rule_variant(row)


def shipped_of(res, kind: str = "first"):
    """The run's shipped rule: (M, S, 0, its recent fit; -1 = every call seen, as runs before
    budget.RECENT_CALLS shipped were) for first runs, "placement 0" for later runs (", plan
    P" where the run names the later runs' shipped plan: rows since it did name theirs)."""
    m = res["meta"]
    if kind != "first":
        plan = m.get("shipped_later_plan")
        return "placement 0" + (f", plan {plan}" if plan else "")
    return tuple(m["shipped_shape"][:2]) + (0.0, float(m.get("shipped_recent", -1)))


def scores(res, kind: str = "first") -> dict:
    """variant -> {estimate: (mean delta, min delta, mean worst-prompt delta, cells)} over the
    rows of one kind (first: per shape; later: per rule_variant) of one tuning run."""
    shipped = shipped_of(res)
    out = {}
    for r in res["rows"]:
        if r["kind"] != kind or r.get("front_psnr") is None or not math.isfinite(r["psnr"]):
            continue
        if kind == "later" and r.get("shape"):
            continue
        d = r["psnr"] - r["front_psnr"]
        dw = (r["psnr_worst"] - r["front_psnr_worst"]
              if r.get("front_psnr_worst") is not None else None)
        out.setdefault(variant_of(r, shipped, kind), {}).setdefault(r["estimate"], []).append(
            (d, dw))
    table = {}
    for shape, per in out.items():
        table[shape] = {}
        for est, v in per.items():
            ds = [d for d, _ in v]
            dws = [w for _, w in v if w is not None]
            table[shape][est] = (statistics.mean(ds), min(ds),
                                 statistics.mean(dws) if dws else math.nan, len(ds))
    return table


def score(entry) -> float:
    """The smaller mean delta over the skip estimates."""
    return min(v[0] for v in entry.values())


def pick(tables: dict, proxies, shipped, margin: float = MARGIN) -> tuple:
    """The shape maximising the smallest score over `proxies`; the shipped shape unless the
    best is more than `margin` dB above it."""
    common = set.intersection(*(set(tables[p]) for p in proxies))
    worst = lambda s: min(score(tables[p][s]) for p in proxies)       # noqa: E731
    best = max(sorted(common), key=lambda s: (worst(s), s == shipped))
    if shipped in common and worst(best) - worst(shipped) <= margin:
        return shipped
    return best


def _variant(shipped):
    return tuple(shipped) if isinstance(shipped, (list, tuple)) else shipped


def render(tables: dict, shipped, kind: str = "first") -> str:
    shipped = _variant(shipped)
    proxies = list(tables)
    shapes = sorted(set.intersection(*(set(t) for t in tables.values())))
    ests = sorted({e for t in tables.values() for s in t.values() for e in s})
    what = "first runs'" if kind == "first" else "later runs'"
    lines = [f"Tuning scores (calibration prompts): {what} mean PSNR delta to the front, dB, "
             "per skip estimate (" + " / ".join(ests) + "); the score is the smaller. A pick "
             f"keeps the shipped rule unless another is more than {MARGIN:g} dB above it.", "",
             ("| move power : sigma power | " if kind == "first" else
              "| placement of the online threshold | ") + " | ".join(proxies) + " |",
             "|---|" + "---:|" * len(proxies)]
    for s in shapes:
        mark = " (shipped before)" if s == shipped else ""
        cells = [" / ".join(f"{tables[p][s][e][0]:+.2f}" for e in ests) for p in proxies]
        lines.append(f"| {_name(s)}{mark} | " + " | ".join(cells) + " |")
    lines += ["", "| held out | tuned on | pick | its tuning score (smaller of the two) | "
              "the held-out proxy's calibration score (not the result) |", "|---|---|---|---:|---:|"]
    for held in proxies:
        rest = [p for p in proxies if p != held]
        s = pick(tables, rest, shipped)
        lines.append(f"| {held} | {' + '.join(rest)} | {_name(s)} | "
                     f"{min(score(tables[p][s]) for p in rest):+.2f} | "
                     f"{score(tables[held][s]):+.2f} |")
    s = pick(tables, proxies, shipped)
    lines += ["", f"All {len(proxies)} proxies together pick {_name(s)} (in-sample "
              f"score {min(score(tables[p][s]) for p in proxies):+.2f})."]
    return "\n".join(lines) + "\n"


def _kept(name: str, only=None, without=None) -> bool:
    """Whether a rule named `name` is kept by --only / --without."""
    return (not only or only in name) and not (without and without in name)


def held_out(tables: dict, evals: dict, shipped, kind: str = "first", only=None,
             without=None) -> str:
    """The goal table on the evaluation prompts: each proxy's first runs with its pick (kind
    "first"), or every placement's runs with the pick of the later runs' placement marked."""
    shipped = _variant(shipped)
    lines = ["| held-out proxy | skip_estimate | run | delta to the front, mean (min / max) | "
             "cells >= front | cells within 0.3 dB | worst prompt delta, mean (min) | worst "
             "within 3 dB | reduction within 5% |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for held, res in evals.items():
        rest = [p for p in tables if p != held]
        s = pick(tables, rest, shipped)
        ests = list(dict.fromkeys(r["estimate"] for r in res["rows"] if r["kind"] != "threshold"))
        firsts = sorted({shape_of(r, shipped_of(res)) for r in res["rows"]
                         if r["kind"] == "first"}, key=lambda x: kind == "first" and x != s)
        places = sorted({rule_variant(r) for r in res["rows"] if r["kind"] != "threshold"
                         and _kept(rule_variant(r), only, without)})
        for est, place in ((e, f) for e in ests for f in places):
            for run, shape in [("first", x) for x in firsts] + [("later", None), ("stored", None)]:
                sel = [r for r in res["rows"] if r["kind"] == run and r["estimate"] == est
                       and rule_variant(r) == place
                       and (run != "first"
                            or shape_of(r, shipped_of(res)) == shape)]
                if not sel:
                    continue
                d = [r["psnr"] - r["front_psnr"] for r in sel if r.get("front_psnr") is not None
                     and math.isfinite(r["psnr"])]
                dw = [r["psnr_worst"] - r["front_psnr_worst"] for r in sel
                      if r.get("front_psnr_worst") is not None and math.isfinite(r["psnr_worst"])]
                err = [abs(r["reduction"] / r["param"] - 1) for r in sel]
                label = run if run != "first" else f"first, {_name(shape)}"
                if kind == "first" and run == "first":
                    label += " (the pick, held out)" if shape == s else " (not the pick)"
                if len(places) > 1:
                    label += f", {place}"
                    if kind == "later":
                        label += " (the pick, held out)" if place == s else " (not the pick)"
                lines.append(
                    f"| {held} | {est} | {label} | {statistics.mean(d):+.2f} ({min(d):+.1f} / "
                    f"{max(d):+.1f}) | {sum(x >= 0 for x in d)} of {len(d)} | "
                    f"{sum(x >= -0.3 for x in d)} of {len(d)} | {statistics.mean(dw):+.2f} "
                    f"({min(dw):+.1f}) | {sum(x >= -3 for x in dw)} of {len(dw)} | "
                    f"{sum(e <= 0.05 for e in err)} of {len(err)} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", help="tuning results.json, one per proxy")
    ap.add_argument("--out", default=None, help="also write the tables here")
    ap.add_argument("--eval", nargs="*", default=[],
                    help="target_benchmark.py results.json on the evaluation prompts, one per "
                         "proxy: prints the held-out goal table")
    ap.add_argument("--only", default=None, metavar="TEXT",
                    help="only the rules whose name contains TEXT (e.g. \"plan\": the later "
                         "runs' plans, measured with target_benchmark.py --later-plans)")
    ap.add_argument("--without", default=None, metavar="TEXT",
                    help="leave out the rules whose name contains TEXT")
    ap.add_argument("--shipped", default=None, metavar="NAME",
                    help="the rule a pick must beat by the margin (default: the shipped one "
                         "as the rows name it; e.g. \"placement 0, plan profile\", or for "
                         "--kind first M:S:W:R, e.g. 0.3:1.25:0:3)")
    ap.add_argument("--kind", default="first", choices=("first", "later"),
                    help="first: choose the first-run shape; later: choose the placement of "
                         "the later runs' online threshold (tuning runs with --kinds later "
                         "--placements F,...)")
    a = ap.parse_args()
    tables, shipped = {}, None
    for path in a.results:
        res = json.loads(Path(path).read_text())
        tables[res["meta"]["proxy"]] = {k: v for k, v in scores(res, a.kind).items()
                                        if _kept(_name(k), a.only, a.without)}
        shipped = shipped_of(res, a.kind)
        if a.shipped:           # first runs: "M:S:W:R" (e.g. 0.3:1.25:0:3); later: the name
            shipped = (tuple(float(x) for x in a.shipped.split(":")) if a.kind == "first"
                       else a.shipped)
    text = render(tables, shipped, a.kind)
    if a.eval:
        evals = {}
        for path in a.eval:         # several runs of one proxy: their target rows together
            res = json.loads(Path(path).read_text())
            if res["meta"]["proxy"] in evals:
                evals[res["meta"]["proxy"]]["rows"] += [r for r in res["rows"]
                                                        if r["kind"] != "threshold"]
            else:
                evals[res["meta"]["proxy"]] = res
        text += "\n" + held_out(tables, evals, shipped, a.kind, a.only, a.without)
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
