"""The "at the same reduction" table with PSNR and SSIM (mean and worst) for every method group,
from one or more results.json of run_benchmark.py (later files add groups, never replace).
The table itself is benchmarks/tables.py's (run_benchmark.py appends the same to its table.md).

    python benchmarks/peers_table.py out/peers/results.json [more results.json ...]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.tables import load_rows, render_same_reduction  # noqa: E402

if __name__ == "__main__":
    print(render_same_reduction(load_rows(sys.argv[1:])))
