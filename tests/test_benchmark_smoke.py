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
    assert {row["group"] for row in tea} == {"TeaCache uncalibrated", "TeaCache calibrated",
                                            "TeaCache wan2.1_t2v_1.3B"}
    for row in tea:
        assert row["blocks"] <= rows["uncached"]["blocks"] and row["psnr"] > 0
        assert row["cache_bytes"] > 0
    fidelity_table = (tmp_path / "table.md").read_text().split("### wall time")[0]
    assert fidelity_table.count("| teacache[") == 3
    assert (tmp_path / "fidelity_vs_speedup.png").stat().st_size > 1000
