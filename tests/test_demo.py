"""./run_demo.sh's demo (demo/demo.py) runs end to end at minimal settings: its own real
ComfyUI server, the Wan 2.1 example workflow with TeaCache bypassed and at two thresholds,
one prompt, one repetition, few steps. Checks the printed table and every file it writes;
no timing is asserted."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import e2e_server

ROOT = Path(__file__).resolve().parents[1]
STEPS = 6


def test_demo_runs_the_example_workflow_through_the_server(tmp_path):
    e2e_server.setup_or_skip("server")
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, str(ROOT / "demo" / "demo.py"), "--prompts", "1", "--repeats", "1",
         "--steps", str(STEPS), "--size", "64x64x5", "--thresholds", "0.08,0.3",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, f"demo failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    text = r.stdout
    print(text)
    assert "wan2.1_t2v_1.3B_teacache.json" in text
    assert "steps 30 -> 6" in text and "latent 16x2x8x8" in text
    # the table: one row per setting; the uncached run skips nothing and is its own reference
    rows = {m.group(1): m.groups()[1:] for m in re.finditer(
        r"^(no TeaCache|TeaCache [\d.]+(?: extrap\.)?)\s+(\d+)\s+(\d+)\s+([\d.]+) s\s+([\d.]+)x\s+"
        r"([\d.]+)x\s+(\S+)\s+(\S+)$",
        text, re.M)}
    assert set(rows) == {"no TeaCache", "TeaCache 0.08", "TeaCache 0.3",
                         "TeaCache 0.3 extrap."}, text
    assert rows["no TeaCache"][:2] == (str(STEPS), "0") and rows["no TeaCache"][5] == "inf"
    for name in ("TeaCache 0.08", "TeaCache 0.3"):
        computed, skipped = int(rows[name][0]), int(rows[name][1])
        assert computed + skipped == STEPS and computed >= 2     # first and last computed
    assert int(rows["TeaCache 0.3"][1]) >= 1                    # a high threshold skips

    res = json.loads((out / "demo_results.json").read_text())
    by = {row["setting"]: row for row in res["rows"]}
    assert by["no TeaCache"]["log_lines"] == [None]             # bypassed: TeaCache never ran
    for name, t in (("TeaCache 0.08", "0.08"), ("TeaCache 0.3", "0.3")):
        assert f"thresh {t} " in by[name]["log_lines"][0]
        assert by[name]["steps_skipped_per_prompt"] == [int(rows[name][1])]
    ext = by["TeaCache 0.3 extrap."]
    assert "thresh 0.3 " in ext["log_lines"][0] and "skips extrapolated" in ext["log_lines"][0]
    assert "extrapolated" not in by["TeaCache 0.3"]["log_lines"][0]
    assert res["meta"]["steps"] == STEPS and len(res["meta"]["prompts"]) == 1

    from PIL import Image
    with Image.open(out / "demo_compare.webp") as im:
        # 1 + 4 frames per latent frame, but the encoder merges identical neighbours
        assert im.format == "WEBP" and 1 <= im.n_frames <= 5
        assert im.size[0] > 3 * 64                              # three videos side by side
    for f in ("demo_compare.png", "demo_teacache_report_0.08.png",
              "demo_teacache_report_0.3.png", "demo_teacache_report_0.3_extrapolate.png"):
        with Image.open(out / f) as im:
            assert im.format == "PNG" and im.size[0] > 100
    assert "Prompt executed" in (out / "demo_server.log").read_text()
