"""The benchmark harness runs end to end (correctness only; no timing assertions)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROXY = ROOT / "models" / "wan_proxy.safetensors"
# proxy name -> (model file, its published-coefficients TeaCache group)
PROXIES = {"wan": (PROXY, "TeaCache wan2.1_t2v_1.3B"),
           "hunyuan": (ROOT / "models" / "hunyuan_proxy.safetensors", "TeaCache hunyuan_video"),
           "ltxv": (ROOT / "models" / "ltxv_proxy.safetensors", "TeaCache ltxv"),
           "wan_shapes": (ROOT / "models" / "wan_shapes_proxy.safetensors",
                          "TeaCache wan2.1_t2v_1.3B")}
# proxy name -> what ComfyUI's loader must detect: (model_base class, diffusion model class,
# supported_models config class, transformer blocks per model call)
DETECTED = {"wan": ("WAN21", "WanModel", "WAN21_T2V", 6),
            "hunyuan": ("HunyuanVideo", "HunyuanVideo", "HunyuanVideo", 3 + 4),
            "ltxv": ("LTXV", "LTXVModel", "LTXV", 6),
            "wan_shapes": ("WAN21", "WanModel", "WAN21_T2V", 9)}


@pytest.mark.parametrize("proxy", list(PROXIES))
def test_benchmark_quick_run(tmp_path, proxy):
    model, published = PROXIES[proxy]
    if not model.exists():
        pytest.skip(f"models/{model.name} is committed; run scripts/train_proxy.py --proxy {proxy}")
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_benchmark.py"), "--quick",
                        "--proxy", proxy, "--threads", "1", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["meta"]["proxy"] == proxy and res["meta"]["model"] == model.name
    rows = {row["method"]: row for row in res["fidelity"]}
    assert rows["uncached"]["reduction"] == 1.0 and rows["uncached"]["psnr"] == float("inf")
    blocks_per_call = DETECTED[proxy][3]
    assert rows["uncached"]["blocks"] == 6 * blocks_per_call     # 6 steps, cond+uncond batched
    assert {"steps/2", "easycache 0.2", "lazycache 0.2"} <= set(rows)
    tea = [row for row in res["fidelity"] if row["group"].startswith("TeaCache")]
    assert {row["group"] for row in tea} == {
        "TeaCache uncalibrated", "TeaCache calibrated", published,
        "TeaCache uncalibrated+extrapolate", "TeaCache calibrated+extrapolate",
        "TeaCache target", "TeaCache target+extrapolate",
        # issue 21: the generic path forced on the proxy, and its block-input+vec experiment
        "TeaCache generic", "TeaCache generic+extrapolate", "TeaCache generic-vec",
        "TeaCache generic-vec+extrapolate"}
    for row in tea:
        if row["group"].startswith("TeaCache target"):      # target_speedup 2 on 6 steps
            assert row["param"] == 2.0 and row["reduction"] == 2.0, row
        assert row["blocks"] <= rows["uncached"]["blocks"] and row["psnr"] > 0
        assert row["cache_bytes"] > 0
    # the generic path holds one residual per stack and stream: on the dual-stream HunyuanVideo
    # the double blocks' image and text residuals and the single blocks' joint one, on Wan
    # (one stack, one stream) what the family adapter holds
    by_group = {row["group"]: row["cache_bytes"] for row in tea}
    for est in ("", "+extrapolate"):
        ded, gen = by_group["TeaCache uncalibrated" + est], by_group["TeaCache generic" + est]
        if proxy == "hunyuan":
            assert gen > ded, (est, gen, ded)
        elif DETECTED[proxy][1] == "WanModel":
            assert gen == ded, (est, gen, ded)
    fidelity_table = (tmp_path / "table.md").read_text().split("### at the same reduction")[0]
    assert fidelity_table.count("| teacache[") == 11
    assert [(e["sampler"], e["target"]) for e in res["matched"]] == [("euler", 2.0), ("euler", 3.0),
                                                                    ("euler", 4.0)]
    assert set(res["matched"][0]["groups"]) == {row["group"] for row in res["fidelity"]} - {"none"}
    assert (tmp_path / "fidelity_vs_speedup.png").stat().st_size > 1000


def test_proxy_registry():
    sys.path.insert(0, str(ROOT))
    from benchmarks.proxies import PROXIES as REGISTRY, get_proxy
    assert set(REGISTRY) == set(PROXIES)
    for name in REGISTRY:
        p = get_proxy(name)
        assert p.model == PROXIES[name][0]
        assert not set(p.eval_prompts) & set(p.calib_prompts)        # disjoint prompt lists
        pos, neg = p.positive(p.eval_prompts[0]), p.negative()
        assert pos[0][0].shape == neg[0][0].shape and pos[0][0].abs().sum() > 0
        assert neg[0][0].abs().sum() == 0
        assert set(pos[0][1]) == set(neg[0][1])
    hv = get_proxy("hunyuan")
    pos = hv.positive(hv.eval_prompts[0])
    assert pos[0][0].shape == (1, 12, 4096) and pos[0][1]["pooled_output"].shape == (1, 768)
    lt = get_proxy("ltxv")
    pos, neg = lt.positive(lt.eval_prompts[0]), lt.negative()
    assert pos[0][0].shape == (1, 16, 4096) and pos[0][1]["attention_mask"].shape == (1, 16)
    n = int(pos[0][1]["attention_mask"].sum())           # the prompt's tokens, then padding
    assert n in (6, 7) and pos[0][0][0, n:].abs().sum() == 0 and pos[0][0][0, n - 1].abs().sum() > 0
    assert neg[0][1]["attention_mask"].tolist() == [[1] + [0] * 15]


@pytest.mark.parametrize("proxy", list(PROXIES))
def test_proxy_detected_by_comfyui_loader(proxy):
    """Each committed proxy loads through ComfyUI's own loader (its detection runs) as the
    family it was trained as, on this ComfyUI (0.3.75 and the newest run this file), and its
    blocks are the ones the benchmarks count."""
    import comfy.sd
    sys.path.insert(0, str(ROOT))
    from benchmarks.proxies import get_proxy
    model_file, _ = PROXIES[proxy]
    if not model_file.exists():
        pytest.skip(f"models/{model_file.name} is committed; run scripts/train_proxy.py --proxy {proxy}")
    model = comfy.sd.load_diffusion_model(str(model_file))
    base, dm = model.model, model.model.diffusion_model
    found = (type(base).__name__, type(dm).__name__, type(base.model_config).__name__)
    assert found == DETECTED[proxy][:3]
    assert len(get_proxy(proxy).blocks(dm)) == DETECTED[proxy][3]
    if proxy == "ltxv":     # heads from the checkpoint's config metadata (detection assumes 32)
        attn = dm.transformer_blocks[0].attn1
        assert (attn.heads, attn.dim_head, dm.inner_dim) == (3, 64, 192)
        assert float(base.model_sampling.shift) == 2.37


def test_interpolation_at_a_target_reduction():
    sys.path.insert(0, str(ROOT))
    from benchmarks.tables import interpolate_at
    import math
    pts = [(1.5, 40.0), (3.0, 30.0), (6.0, 20.0)]
    assert interpolate_at(pts, 3.0) == 30.0
    assert math.isclose(interpolate_at(pts, math.sqrt(1.5 * 3.0)), 35.0)   # halfway in log
    assert interpolate_at(pts, 1.2) is None and interpolate_at(pts, 7.0) is None
    assert interpolate_at([(2.0, 31.0)], 2.0) == 31.0
    # several points at one reduction count as their mean, from below, above or alone
    tied = [(1.5, 40.0), (3.0, 28.0), (3.0, 32.0), (3.0, 36.0), (6.0, 20.0)]
    assert interpolate_at(tied, 3.0) == 32.0
    assert interpolate_at(tied[1:], 3.0) == interpolate_at(tied[:4], 3.0) == 32.0
    assert math.isclose(interpolate_at(tied, math.sqrt(3.0 * 6.0)), 26.0)


@pytest.mark.parametrize("proxy", sorted(PROXIES))
def test_target_benchmark_quick(proxy, tmp_path):
    """benchmarks/target_benchmark.py on each proxy: harness correctness only (no timing)."""
    model, _ = PROXIES[proxy]
    if not model.exists():
        pytest.skip(f"models/{model.name} is committed; run scripts/train_proxy.py --proxy {proxy}")
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "target_benchmark.py"),
                        "--quick", "--proxy", proxy, "--match", "2", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["meta"]["model"] == model.name
    assert res["meta"]["scheduler"] == "simple"          # --scheduler's default
    kinds = {row["kind"] for row in res["rows"]}
    assert kinds == {"threshold", "first", "later", "stored"}
    plans = {"first": "prediction", "later": "previous run", "stored": "stored profile"}
    for row in res["rows"]:
        if row["kind"] != "threshold":           # 8 steps at 2x: exactly 4 computed calls
            assert row["reduction"] == 2.0 and row["error"] == 0.0, row
            assert row["planned"] == [row["kind"] != "first"], row
            assert row["plan"] == [plans[row["kind"]]], row
            assert "front_psnr" in row and row["placement"] == 0.0
            # the 0.3 threshold of the quick sweep makes 4 computes too: the front is measured
            assert row["front_exact"], row
    table = (tmp_path / "table.md").read_text()
    assert "| euler | 8 | 2x | first |" in table and "scheduler simple," in table
    summary = (tmp_path / "summary.md").read_text()
    assert "| euler | 8 | 2x | 2.00x / 2.00x / 2.00x |" in summary
    assert summary.count("reduction within 5% of the target in 1 of 1 cells") == 3


def test_matched_threshold_search():
    """The search for a fixed threshold that realises a target run's block executions bisects
    the sweep's own gaps (geometric middle), takes hints inside the gap first, and stops where
    one realises them or where no gap is left."""
    sys.path.insert(0, str(ROOT / "devtools"))
    sys.path.insert(0, str(ROOT))
    import math
    from benchmarks.target_benchmark import next_threshold
    known = [(0.1, 80.0), (0.4, 40.0)]            # (threshold, mean block executions)
    assert math.isclose(next_threshold(known, 60.0), 0.2)
    assert next_threshold(known, 60.0, hints=[0.3, 0.05]) == 0.3
    assert next_threshold(known + [(0.2, 60.0)], 60.0) is None
    assert next_threshold([(0.2, 60.0)], 80.0) == 0.1         # open below: half the smallest
    assert next_threshold([(0.2, 60.0)], 40.0) == 0.4         # open above: twice the largest
    assert next_threshold([(0.3, 80.0), (0.2, 40.0)], 60.0) is None     # not monotone: stop


def _import_graph() -> dict[str, set[str]]:
    """module -> the modules of this repository it imports (anywhere in the file, lazy imports
    too): the pack (relative or comfyui_teacache.*), benchmarks.*, and devtools' bare names."""
    import ast
    files = {}
    for d in ("nodes", "teacache_core", "benchmarks", "devtools"):
        for p in (ROOT / d).rglob("*.py"):
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = p
    devtools = {m.split(".", 1)[1] for m in files if m.startswith("devtools.")}
    graph = {}
    for mod, path in files.items():
        pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[:len(pkg.split(".")) - (node.level - 1)]
                    b = ".".join(base + ([node.module] if node.module else []))
                else:
                    b = node.module or ""
                names = [b] + [f"{b}.{a.name}" for a in node.names]
            else:
                continue
            relative = isinstance(node, ast.ImportFrom) and node.level > 0
            for n in names:
                if n.startswith("comfyui_teacache."):
                    n = n[len("comfyui_teacache."):]
                elif n in devtools:
                    n = f"devtools.{n}"
                elif not relative and not n.startswith(("benchmarks.", "devtools.")):
                    continue                     # ComfyUI's `nodes`, torch, ...
                if n in files and n != mod:
                    deps.add(n)
        graph[mod] = deps
    return graph


def test_no_import_cycles():
    """No two modules of the pack, the benchmarks or the tools import each other, directly or
    through others (benchmarks/tables.py holds what the benchmark scripts share)."""
    graph = _import_graph()
    assert "benchmarks.tables" in graph["benchmarks.run_benchmark"]
    assert "benchmarks.tables" in graph["benchmarks.peers_table"]
    assert "teacache_core.patching" in graph["nodes.apply"]
    cycles = _cycles(graph)
    assert not cycles, f"modules that import each other: {cycles}"
    assert _cycles({**graph, "benchmarks.tables": {"benchmarks.run_benchmark"}})   # can fail


def _cycles(graph) -> list[list[str]]:
    state, cycles = {}, []

    def visit(m, path):
        state[m] = "open"
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                cycles.append(path[path.index(d):] + [d])
            elif d not in state:
                visit(d, path + [d])
        state[m] = "done"
    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return cycles


def test_first_run_loo_picks_on_the_other_proxies():
    """benchmarks/first_run_loo.py: a held-out proxy's pick is chosen on the two others only
    (the smaller of their scores, each the smaller over the skip estimates)."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.first_run_loo import pick, render, scores

    def res(proxy, deltas):
        rows = []
        for shape, (reuse, extra) in deltas.items():
            for est, d in (("reuse", reuse), ("extrapolate", extra)):
                rows.append({"kind": "first", "estimate": est, "shape": list(shape),
                             "psnr": 40.0 + d, "psnr_worst": 38.0, "front_psnr": 40.0,
                             "front_psnr_worst": 38.0})
        rows.append({"kind": "threshold", "estimate": "reuse", "psnr": 1.0})
        return {"meta": {"proxy": proxy, "shipped_shape": [0.3, 1.25]}, "rows": rows}
    a, b = (0.3, 1.0), (0.3, 2.0)
    tables = {"p": scores(res("p", {a: (1.0, -3.0), b: (0.5, 0.2)})),
              "q": scores(res("q", {a: (2.0, 2.0), b: (0.1, 0.3)})),
              "r": scores(res("r", {a: (5.0, 5.0), b: (-1.0, 0.0)}))}
    # a run without shipped_recent was measured before the recent fit shipped: every call
    a, b = a + (0.0, -1.0), b + (0.0, -1.0)
    assert tables["p"][a]["extrapolate"][:2] == (-3.0, -3.0)
    assert pick(tables, ["q", "r"], (0.3, 1.25)) == a        # held out p: p's own -3 unseen
    assert pick(tables, ["p", "r"], (0.3, 1.25)) == b        # a's -3 on p loses to b's -1
    # the shipped shape stays unless the best is more than the margin above it
    assert pick(tables, ["p", "r"], b) == b and pick(tables, ["q", "r"], b) == a
    assert pick(tables, ["q", "r"], b, margin=3.0) == b      # a: +2.0 against b's +0.1
    text = render(tables, [0.3, 1.25, 0.0, -1.0])
    assert "| p | q + r | 0.3 : 1, every call | +2.00 | -3.00 |" in text
    # --kind later: the later runs' rows per placement (the shipped placement is 0)
    rows = [{"kind": "later", "estimate": est, "placement": f, "psnr": 40.0 + d,
             "psnr_worst": 38.0, "front_psnr": 40.0, "front_psnr_worst": 38.0}
            for f, d in ((0.0, -1.0), (0.5, 0.5)) for est in ("reuse", "extrapolate")]
    rows.append({**rows[0], "shape": [0.3, 2.0], "psnr": 99.0})     # not a later-run variant
    later = scores({"meta": {"shipped_shape": [0.3, 1.25]}, "rows": rows}, "later")
    p0, p5 = "placement 0", "placement 0.5"
    assert set(later) == {p0, p5} and later[p0]["reuse"][:2] == (-1.0, -1.0)
    tables = {"p": later, "q": later}
    assert pick(tables, ["q"], p0) == p5 and pick(tables, ["q"], p0, margin=2.0) == p0
    assert "| p | q | placement 0.5 | +0.50 | +0.50 |" in render(tables, p0, "later")
    # rows measured with --later-plans name their plan ("profile": the shipped one)
    from benchmarks.first_run_loo import rule_variant
    assert rule_variant({"placement": 0.0, "later_plan": "profile"}) == "placement 0, plan profile"
    assert rule_variant({"placement": 0.0, "late_weight": 1.0, "later_plan": "blend"}) == \
        "placement 0, late weight 1, plan blend"


def test_worst_prompt_reads_each_prompt_at_its_computes(tmp_path):
    """benchmarks/worst_prompt.py: each prompt's front at the computes a target made on it
    (exact counts averaged, else interpolated in log computes, unknown across a threshold
    without per-prompt results), the issue's criterion and the front against itself."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.worst_prompt import cells, prompt_front, report

    assert prompt_front([(10, 40.0), (10, 42.0), (20, 50.0)], 10) == 41.0
    assert abs(prompt_front([(10, 40.0), (40, 60.0)], 20) - 50.0) < 1e-9     # log midpoint
    assert prompt_front([(10, 40.0)], 20) is None                            # one side only
    assert prompt_front([(10, 40.0), (40, 60.0)], 20, unread=[30]) is None
    cell = {"sampler": "euler", "steps": 20, "estimate": "reuse"}
    rows = [{**cell, "kind": "threshold", "param": 0.1, "blocks": 20.9, "psnr_worst": 50.0,
             "blocks_each": [20, 22], "psnr_each": [50.0, 52.0]},
            {**cell, "kind": "threshold", "param": 0.2, "blocks": 20.5, "psnr_worst": 45.0,
             "blocks_each": [20, 21], "psnr_each": [45.0, 48.0]},
            {**cell, "kind": "later", "later_plan": "prediction", "param": 2.0, "blocks": 20.0,
             "psnr_worst": 46.0, "front_psnr_worst": 50.0, "blocks_each": [20, 20],
             "psnr_each": [46.0, 49.0]}]
    (c,) = cells(rows, "later", "prediction")
    assert c["miss"] and c["self_miss"] and c["neighbours"] == 2      # 46 < 50 - 3; 45 too
    assert c["prompt_deltas"] == [46.0 - 47.5, None]     # prompt 2 made no fewer than 21
    assert c["same_worst"] is None and not c["same_miss"]
    assert cells(rows, "later", "profile") == []
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"meta": {"proxy": "p"}, "rows": rows}))
    text = report([path])
    assert "| p | reuse | 1 | 1 | 0 of 0 covered | 1 of 1 (-1.50 dB) | 1 |" in text
    assert "- p reuse euler 20 steps 2x: worst 46.0 dB" in text


def test_same_computes_reads_placements_at_the_targets_computes(tmp_path):
    """benchmarks/same_computes.py on the LTX-Video proxy (8 steps, 2x): the target's run, the
    fixed thresholds that make exactly its computes, and the oracle at the same count, on a
    calibration prompt (harness correctness only)."""
    model, _ = PROXIES["ltxv"]
    if not model.exists():
        pytest.skip("models/ltxv_proxy.safetensors is committed")
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "same_computes.py"),
                        "--proxy", "ltxv", "--cells", "euler:8:2:reuse", "--prompts", "1",
                        "--sweep", "0.02:1:8", "--window", "1", "--lazy", "1",
                        "--local-rounds", "1", "--patterns", "C.C.C.C.,C..C.C.C",
                        "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["meta"]["prompt_set"] == "calib"
    (row,) = res["cells"][0]["prompts"]
    assert row["calls"] == 8 and row["k"] == 4 and row["target_pattern"].count("C") == 4
    assert all(f["pattern"].count("C") == 4 for f in row["fixed"])
    assert row["fixed_count"] == len({f["pattern"] for f in row["fixed"]})
    assert row["oracle_pattern"].count("C") == 4 and row["oracle_pattern"][0] == "C"
    # the target's own schedule sampled by the oracle's runner is the target's run
    assert abs(row["target_resampled"] - row["target"]) < 1e-6
    assert set(row["patterns"]) == {"C.C.C.C.", "C..C.C.C"}
    text = (tmp_path / "table.md").read_text()
    assert "| euler 8 steps 2x reuse | 4 of 8 |" in text and "| `C..C.C.C` | 4 |" in text


def test_same_computes_prior_schedule_from_other_proxies():
    """same_computes.prior_schedule: step 0 and the k - 1 steps the other proxies' oracle
    schedules of the same cell compute most often (ties: the later step)."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.same_computes import prior_schedule

    def res(*pats, cell=("euler", 6, 2.0, "reuse")):
        return {"cells": [{"sampler": cell[0], "steps": cell[1], "target": cell[2],
                           "estimate": cell[3],
                           "prompts": [{"oracle_pattern": p} for p in pats]}]}
    sources = [res("C.C.C.", "C..CC."), res("C.CC..", cell=("euler", 6, 3.0, "reuse"))]
    # step 4 in both, steps 2 and 3 in one each: 4, then 3 (the later of the tie)
    assert prior_schedule(sources, ("euler", 6, 2.0, "reuse"), 6, 3) == "C..CC."
    assert prior_schedule(sources, ("euler", 6, 3.0, "reuse"), 6, 3) == "C.CC.."
    with pytest.raises(SystemExit):
        prior_schedule(sources, ("uni_pc", 6, 2.0, "reuse"), 6, 3)


def test_partial_rows_compare_shapes_on_the_same_cells():
    """benchmarks/partial_rows.py: a stopped run's first-run rows against the front of their
    cell, each shape only on the cells the named shape reached."""
    from benchmarks.partial_rows import compare
    from benchmarks.tables import interpolate_at

    def row(kind, steps, psnr, red, shape=None, worst=None):
        r = {"kind": kind, "sampler": "euler", "steps": steps, "estimate": "reuse",
             "param": 2.0, "psnr": psnr, "psnr_worst": psnr if worst is None else worst,
             "reduction": red}
        return {**r, "shape": shape} if shape else r
    rows = [row("threshold", 20, 50.0, 1.5), row("threshold", 20, 40.0, 2.5),
            row("threshold", 30, 60.0, 1.5), row("threshold", 30, 50.0, 2.5),
            row("first", 20, 46.0, 2.0), row("first", 30, 54.0, 2.0),
            row("first", 20, 44.0, 2.0, [0.3, 1.25, 0, 3, 0, 2], worst=40.0)]
    table = {(s, e): (n, mean, miss) for s, e, n, mean, miss, _ in
             compare(rows, "0.3:1.25:0:3:0:2")}
    front = interpolate_at([(1.5, 50.0), (2.5, 40.0)], 2.0)             # the 20-step cell
    assert table[("shipped", "reuse")] == (1, pytest.approx(46.0 - front), 0)
    assert table[("0.3:1.25:0:3:0:2", "reuse")] == (1, pytest.approx(44.0 - front), 1)


def test_vector_shape_reads_distance_over_shape(tmp_path):
    """benchmarks/vector_shape.py on two proxies (one with conditioning vectors, one without):
    a row per prompt and shape, the vector's only where the family has one."""
    out = tmp_path / "vector_shape.md"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "vector_shape.py"),
                        "--proxies", "wan_shapes,hunyuan", "--prompts", "1", "--steps", "6",
                        "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [line.split(" | ") for line in out.read_text().splitlines()
            if line.startswith("| wan_shapes") or line.startswith("| hunyuan")]
    assert [(x[0], x[2]) for x in rows] == [
        ("| wan_shapes", "move^0.3 / sigma^1.25 (shipped)"),
        ("| wan_shapes", "conditioning vector's moves"),
        ("| hunyuan", "move^0.3 / sigma^1.25 (shipped)")]
    for x in rows:
        assert len(x[3].split()) == 5 and float(x[4].rstrip(" |")) >= 0


def test_oracle_placement_counts_computes_per_third():
    """benchmarks/oracle_placement.py: the oracle's computes per third of the schedule."""
    from benchmarks.oracle_placement import placement, thirds
    assert thirds([0, 4, 8, 12, 16, 23], 24) == [2, 2, 2]
    assert thirds([0, 1, 2, 20, 21, 22, 23], 24) == [3, 0, 4]
    res = {"meta": {"steps": 24}, "oracle": {"reuse": {"prompts": [
        {"local": {"6": {"schedule": [0, 8, 16, 20, 22, 23]}}},
        {"local": {"6": {"schedule": [0, 4, 12, 18, 21, 23]}}}]}}}
    assert placement(res, [6, 8]) == [("reuse", 6, [1.5, 1.0, 3.5], 2)]


def test_skip_cost_helpers():
    """benchmarks/skip_cost.py: cost per unit of the indicator, ranks, thirds."""
    from benchmarks.skip_cost import cost_per_unit, spearman, thirds_median
    c = cost_per_unit([None, 40.0, 60.0, float("inf")], [None, 0.1, 0.05, 0.2])
    assert c[0] == pytest.approx(0.01 / 0.1) and c[1] == pytest.approx(0.001 / 0.05)
    assert c[2] == 0.0
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert thirds_median([1, 2, 3, None, 5, 6]) == [1.5, 3, 5.5]


def test_skip_cost_samples_one_skip_per_call(tmp_path):
    """benchmarks/skip_cost.py end to end: one PSNR per skipped call, finite, and a row per
    prompt and estimate."""
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "skip_cost.py"),
                        "--proxies", "wan_shapes", "--prompts", "1", "--steps", "5",
                        "--estimates", "reuse", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "skip_cost.json").read_text())
    row = res["proxies"]["wan_shapes"]["prompts"][0]
    assert row["reuse"]["psnr"][0] is None and len(row["reuse"]["psnr"]) == 5
    assert all(20 < p < 200 for p in row["reuse"]["psnr"][1:])
    assert len(row["distances"]) == 5 and len(row["prediction_moves"]) == 5
    assert len(row["sensitivity"]) == 5 and all(x > 0 for x in row["sensitivity"])
    assert (tmp_path / "skip_cost.md").read_text().count("| wan_shapes | 4 | reuse |") == 1


def test_threshold_trace_bisects_to_the_same_computes():
    """benchmarks/threshold_trace.py: the bisection finds a threshold with exactly K computes
    where one exists, and says so where none does."""
    from benchmarks.threshold_trace import bisect_threshold, schedule_text
    def computes(t):             # computes fall as the threshold rises: 10 below 0.05, then 6
        return (10 if t < 0.05 else 6), t
    got = bisect_threshold(computes, 6)
    assert got is not None and got[1][0] == 6 and got[0] >= 0.05
    assert bisect_threshold(computes, 8) is None
    assert schedule_text([{"computed": True}, {"computed": False}]) == "C."
