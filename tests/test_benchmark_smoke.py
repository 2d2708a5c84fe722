"""The benchmark harness runs end to end (correctness only; no timing assertions)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROXY = ROOT / "models" / "wan_proxy.safetensors"


@pytest.mark.skipif(not PROXY.exists(), reason="models/wan_proxy.safetensors is committed; "
                    "run scripts/train_proxy.py to make it")
def test_benchmark_quick_run(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_benchmark.py"), "--quick",
                        "--threads", "1", "--out", str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "results.json").read_text())
    rows = {row["method"]: row for row in res["fidelity"]}
    assert rows["uncached"]["reduction"] == 1.0 and rows["uncached"]["psnr"] == float("inf")
    assert {"steps/2", "easycache 0.2", "lazycache 0.2"} <= set(rows)
    tea = [row for row in res["fidelity"] if row["group"].startswith("TeaCache")]
    assert {row["group"] for row in tea} == {
        "TeaCache uncalibrated", "TeaCache calibrated", "TeaCache wan2.1_t2v_1.3B",
        "TeaCache uncalibrated+extrapolate", "TeaCache calibrated+extrapolate"}
    for row in tea:
        assert row["blocks"] <= rows["uncached"]["blocks"] and row["psnr"] > 0
        assert row["cache_bytes"] > 0
    fidelity_table = (tmp_path / "table.md").read_text().split("### at the same reduction")[0]
    assert fidelity_table.count("| teacache[") == 5
    assert [(e["sampler"], e["target"]) for e in res["matched"]] == [("euler", 2.0), ("euler", 3.0),
                                                                    ("euler", 4.0)]
    assert set(res["matched"][0]["groups"]) == {row["group"] for row in res["fidelity"]} - {"none"}
    assert (tmp_path / "fidelity_vs_speedup.png").stat().st_size > 1000


def test_interpolation_at_a_target_reduction():
    sys.path.insert(0, str(ROOT))
    from benchmarks.run_benchmark import interpolate_at
    import math
    pts = [(1.5, 40.0), (3.0, 30.0), (6.0, 20.0)]
    assert interpolate_at(pts, 3.0) == 30.0
    assert math.isclose(interpolate_at(pts, math.sqrt(1.5 * 3.0)), 35.0)   # halfway in log
    assert interpolate_at(pts, 1.2) is None and interpolate_at(pts, 7.0) is None
    assert interpolate_at([(2.0, 31.0)], 2.0) == 31.0
