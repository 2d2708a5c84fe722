"""The full-size benchmarks run end to end at a reduced size on the CPU (harness correctness;
no timing or memory assertions here: tests/test_memory.py asserts the memory bound)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(script, tmp_path, *args):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args, "--out",
                        str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads((tmp_path / "results.json").read_text())


def test_gpu_benchmark_smoke_on_cpu(tmp_path):
    res = _run("gpu_benchmark.py", tmp_path, "--smoke")
    rows = {r["setting"]: r for r in res["rows"]}
    assert {"no TeaCache", "no TeaCache (again)", "TeaCache 0 (overhead)"} <= set(rows)
    cached = [r for name, r in rows.items() if name.startswith("~2x")]
    assert len(cached) == 2 and all(r["ideal"] > 1.2 for r in cached)
    assert rows["TeaCache 0 (overhead)"]["ideal"] == 1.0
    assert all(r["formula_peak"] is not None for r in cached)
    assert "| of ideal |" in (tmp_path / "table.md").read_text()


def test_memory_benchmark_quick(tmp_path):
    res = _run("memory_benchmark.py", tmp_path, "--quick")
    assert len(res["rows"]) == 4
    for r in res["rows"]:
        assert r["computed_steps"] == [0, 2, 4]
        assert 0 < r["held"] <= r["formula_held"]
