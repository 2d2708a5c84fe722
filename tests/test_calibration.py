"""TeaCacheCalibrate, saved calibrations in TeaCacheApply, and TeaCacheReport."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import folder_paths
import tiny_models as tm
from harness import apply, computed_steps, sample, summary

from comfyui_teacache.nodes.apply import TeaCacheApply, model_type_options
from comfyui_teacache.nodes.calibrate import TeaCacheCalibrate
from comfyui_teacache.nodes.common import calibration_folder
from comfyui_teacache.nodes.report import TeaCacheReport
from comfyui_teacache.teacache_core import calibration as calib
from comfyui_teacache.teacache_core.report import COMPUTED, SKIPPED, layout


@pytest.fixture(autouse=True)
def user_dir(tmp_path):
    old = folder_paths.get_user_directory()
    folder_paths.set_user_directory(str(tmp_path / "user"))
    yield tmp_path / "user"
    folder_paths.set_user_directory(old)


@pytest.fixture(scope="module")
def wan(model_dir):
    return tm.load(tm.build_wan(model_dir / "wan_calib.safetensors", num_layers=2, seed=21))


def calibrate(model, name, runs=2, steps=10, skip_first=0, indicator="auto", conds=None):
    cal_model = TeaCacheCalibrate.execute(model, name, skip_first, indicator).result[0]
    outs = []
    for seed in range(runs):
        pos, neg = (conds or tm.wan_conds)(seed=seed)
        out, n = sample(cal_model, torch.zeros(1, 16, 3, 8, 8), pos, neg, steps=steps, seed=seed)
        outs.append((out, n))
    return cal_model, outs


# ---- pure fitting, files, names ------------------------------------------------------------

def test_known_polynomial_is_recovered():
    true = [3.0, -2.0, 0.5, 1.2, 0.01]
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 0.5, 400)
    y = np.polyval(true, x) + rng.normal(0, 1e-4, x.shape)
    coeffs, rmse = calib.fit(np.stack([x, y], 1).tolist())
    assert np.allclose(coeffs, true, atol=0.05) and rmse < 2e-4


def test_too_few_samples_give_no_fit():
    assert calib.fit([[0.1, 0.2], [0.2, 0.3]]) == (None, None)


@pytest.mark.parametrize("bad", ["", "../evil", "a/b", "a\\b", "/abs", "..", "x..y", ".hidden",
                                 "name with space", "n" * 65, "ü", "con:x", None, 3])
def test_hostile_names_rejected(bad, wan):
    with pytest.raises(ValueError):
        calib.validate_name(bad)
    assert isinstance(TeaCacheCalibrate.validate_inputs(bad, 0), str)
    with pytest.raises(ValueError):
        TeaCacheCalibrate.execute(wan, bad, 0, "auto")


def test_round_trip_and_atomic_save(tmp_path):
    cal = calib.Calibration("rt", "wan", "modulated_input", {"dim": 128}, "tiny",
                            samples=[[0.1 * i, 0.2 * i + 0.01 * i * i] for i in range(1, 12)])
    cal.refit()
    p = calib.save(tmp_path, cal)
    assert [f.name for f in tmp_path.iterdir()] == ["rt.json"]      # no temp file left
    back = calib.load(tmp_path, "rt")
    assert back.coefficients == cal.coefficients and back.samples == cal.samples
    assert json.loads(p.read_text())["format"] == "teacache-calibration"
    assert back.preset().coefficients == tuple(cal.coefficients)


@pytest.mark.parametrize("content, fragment", [
    ("{not json", "not JSON"), ("[1, 2]", "not a TeaCache calibration"),
    ('{"format": "teacache-calibration", "version": 99}', "version"),
    ('{"format": "teacache-calibration", "version": 1, "name": "c"}', "damaged"),
    ('{"format": "teacache-calibration", "version": 1, "name": "other", "family": "wan", '
     '"indicator": "x", "dims": {}}', "says it is calibration")])
def test_corrupt_or_foreign_files_are_clear_errors_and_never_overwritten(wan, content, fragment):
    folder = calibration_folder()
    folder.mkdir(parents=True)
    (folder / "c.json").write_text(content)
    with pytest.raises(ValueError, match=fragment):
        calib.load(folder, "c")
    with pytest.raises(ValueError, match=fragment):
        TeaCacheCalibrate.execute(wan, "c", 0, "auto")
    with pytest.raises(ValueError, match=fragment):
        TeaCacheApply.execute(wan, 0.1, 0, -1, "calib:c", "model_device", False, 0)
    assert (folder / "c.json").read_text() == content


def test_saved_files_are_json_and_stay_in_their_folder(wan, user_dir):
    calibrate(wan, "mine", runs=1)
    files = sorted(p.relative_to(user_dir) for p in user_dir.rglob("*") if p.is_file())
    assert files == [calibration_folder().relative_to(user_dir) / "mine.json"]
    json.loads((calibration_folder() / "mine.json").read_text())


# ---- through ComfyUI -------------------------------------------------------------------------

def test_calibration_samples_unchanged_and_accumulates(wan):
    pos, neg = tm.wan_conds(seed=0)
    base, n_base = sample(wan, torch.zeros(1, 16, 3, 8, 8), pos, neg, steps=10, seed=0)
    cal_model, outs = calibrate(wan, "acc", runs=2)
    assert torch.equal(outs[0][0], base) and outs[0][1] == n_base     # nothing skipped
    cal = calib.load(calibration_folder(), "acc")
    assert cal.runs == 2 and cal.family == "wan" and cal.dims == {"dim": 128, "in_dim": 16,
                                                                   "out_dim": 16}
    # 10 steps -> 9 consecutive pairs per cond, 2 conds, 2 runs
    assert cal.sample_count == 9 * 2 * 2
    assert cal.coefficients is not None and len(cal.coefficients) == 5
    assert "calib:acc" in model_type_options()


def test_skip_first_steps_leaves_out_early_pairs_and_forces_them(wan):
    calibrate(wan, "ret", runs=1, skip_first=3)
    cal = calib.load(calibration_folder(), "ret")
    assert cal.sample_count == (9 - 2) * 2          # pairs ending at steps 3..9
    patched = apply(wan, 1e6, model_type="calib:ret")
    pos, neg = tm.wan_conds()
    sample(patched, torch.zeros(1, 16, 3, 8, 8), pos, neg, steps=10)
    assert computed_steps(patched)[:3] == [0, 1, 2]
    with pytest.raises(ValueError, match="skip_first_steps to 3"):
        TeaCacheCalibrate.execute(wan, "ret", 0, "auto")


def test_calibration_for_another_model_is_refused(wan, model_dir):
    calibrate(wan, "small", runs=1)
    other = tm.load(tm.build_wan(model_dir / "wan_calib_other.safetensors", dim=256,
                                 num_layers=1, seed=2))
    with pytest.raises(ValueError, match="dim=128"):
        TeaCacheApply.execute(other, 0.1, 0, -1, "calib:small", "model_device", False, 0)
    with pytest.raises(ValueError, match="Use another name"):
        TeaCacheCalibrate.execute(other, "small", 0, "auto")


PROXY = Path(__file__).resolve().parents[1] / "models" / "wan_proxy.safetensors"


@pytest.fixture(scope="module")
def proxy():
    """The small trained Wan (scripts/train_proxy.py): a real model's smooth trajectory."""
    return tm.load(PROXY)


def test_applying_a_calibration_moves_skips_the_expected_way(proxy):
    """The fit maps indicator change to output change: where it says the output changes more
    than the indicator (poly(d) > d), the same threshold must skip fewer calls, and the
    other way round."""
    sys.path.insert(0, str(PROXY.parents[1]))
    from benchmarks.proxy import CALIB_PROMPTS, EVAL_PROMPTS, make_context, make_uncond_context

    def prompts(prompt_list):
        return lambda seed: ([[make_context(prompt_list[seed]), {}]],
                             [[make_uncond_context(), {}]])
    wan = proxy
    calibrate(wan, "dir", runs=3, conds=prompts(CALIB_PROMPTS))
    cal = calib.load(calibration_folder(), "dir")
    xs = np.asarray(cal.samples)[:, 0]
    ratio = float(np.median(np.polyval(cal.coefficients, xs) / xs))
    pos, neg = prompts(EVAL_PROMPTS)(0)
    lat = torch.zeros(1, 16, 3, 8, 8)
    thr = 0.15
    raw = apply(wan, thr, model_type="uncalibrated")
    fitted = apply(wan, thr, model_type="calib:dir")
    sample(raw, lat, pos, neg, steps=10)
    sample(fitted, lat, pos, neg, steps=10)
    n_raw, n_fit = len(computed_steps(raw)), len(computed_steps(fitted))
    recs = summary(fitted)["branches"]["cond"]
    assert summary(fitted)["preset"] == "calib:dir"
    for r in recs:
        if r["distance"] is not None:
            assert r["rescaled"] == pytest.approx(float(np.polyval(cal.coefficients, r["distance"])))
    if ratio > 1.05:
        assert n_fit >= n_raw
    elif ratio < 0.95:
        assert n_fit <= n_raw
    assert n_fit != n_raw or abs(ratio - 1) < 0.3


def _pixel(img, rect):
    x0, y0, x1, y1 = rect
    return tuple(int(v) for v in (img[0, (y0 + y1) // 2, (x0 + x1) // 2] * 255).round())


def test_report_marks_exactly_the_skipped_steps(wan):
    patched = apply(wan, 0.2)
    pos, neg = tm.wan_conds()
    out, _ = sample(patched, torch.zeros(1, 16, 3, 8, 8), pos, neg, steps=10)
    img, text = TeaCacheReport.execute(patched, {"samples": out}).result
    s = json.loads(text)
    lay = layout(s)
    assert img.shape == (1, lay["size"][1], lay["size"][0], 3) and img.dtype == torch.float32
    for label, recs in s["branches"].items():
        assert len(recs) == 10
        for r, rect in zip(recs, lay["strips"][label]):
            assert _pixel(img, rect) == (COMPUTED if r["computed"] else SKIPPED)
    assert {r["computed"] for r in s["branches"]["cond"]} == {True, False}


def test_report_picks_the_run_that_made_the_latent(wan):
    a = apply(wan, 1e6)
    pos, neg = tm.wan_conds()
    lat = torch.zeros(1, 16, 3, 8, 8)
    out6, _ = sample(a, lat, pos, neg, steps=6)
    out8, _ = sample(a, lat, pos, neg, steps=8)
    s6 = json.loads(TeaCacheReport.execute(a, {"samples": out6}).result[1])
    s8 = json.loads(TeaCacheReport.execute(a, {"samples": out8}).result[1])
    assert s6["total_steps"] == 6 and s8["total_steps"] == 8


def test_report_of_a_calibration_shows_the_scatter(wan):
    cal_model, outs = calibrate(wan, "rep", runs=1)
    img, text = TeaCacheReport.execute(cal_model, {"samples": outs[-1][0]}).result
    s = json.loads(text)
    assert s["calibration"]["name"] == "rep" and len(s["calibration"]["samples"]) == 18
    assert img.shape[1] == layout(s)["size"][1]


def test_report_without_teacache_says_so_and_does_not_fail(wan, caplog):
    """TeaCache bypassed (Ctrl+B) to compare: the report must not break the workflow."""
    img, text = TeaCacheReport.execute(wan, {"samples": torch.zeros(1, 16, 3, 8, 8)}).result
    s = json.loads(text)
    assert s["branches"] == {} and "bypassed or not connected" in s["note"]
    assert img.shape[0] == 1 and img.shape[-1] == 3 and img.shape[1] >= 100
    assert "has no TeaCache" in caplog.text
