"""Fitting, saving and loading user calibrations (pure python/numpy; no ComfyUI).

A calibration records, for every consecutive pair of model calls of one cond, the relative L1
change of the indicator (x) and of the model output (y), and fits y ~ poly(x) (degree 4,
numpy.polyfit, as the TeaCache paper). Samples accumulate across runs under one name, so many
prompts make one good fit. Files are plain JSON in one folder; names are checked so that a name
can never point outside it; writes are atomic (temp file + os.replace).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .coefficients import Preset

FORMAT = "teacache-calibration"
VERSION = 1
PREFIX = "calib:"          # how calibrations appear in TeaCacheApply's model_type list
DEGREE = 4
MIN_SAMPLES = DEGREE + 2
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-.]{0,63}")


class CalibrationError(ValueError):
    """A calibration name or file that cannot be used; the message says what to do."""


def validate_name(name) -> str:
    """The name, if it is a safe file stem; CalibrationError otherwise."""
    if not isinstance(name, str) or not name:
        raise CalibrationError("calibration name is empty: give it a name like 'wan13b_mine'.")
    if not _NAME.fullmatch(name) or ".." in name or name.endswith("."):
        raise CalibrationError(
            f"calibration name {name!r} is not allowed: use 1-64 letters, digits, '_', '-' or "
            "'.', starting with a letter or digit (no path separators, no '..').")
    return name


@dataclass
class Calibration:
    name: str
    family: str
    indicator: str
    dims: dict
    model: str                                  # human description of the calibrated model
    skip_first: int = 0                         # retention-style: first steps left out
    samples: list = field(default_factory=list)  # [[x, y], ...]
    coefficients: list | None = None
    fit_rmse: float | None = None
    runs: int = 0
    created: str = ""
    updated: str = ""

    @property
    def sample_count(self) -> int:
        return len(self.samples)

    def add(self, pairs) -> int:
        good = [[float(x), float(y)] for x, y in pairs
                if math.isfinite(x) and math.isfinite(y)]
        self.samples.extend(good)
        return len(good)

    def refit(self):
        self.coefficients, self.fit_rmse = fit(self.samples)

    def to_json(self) -> dict:
        d = asdict(self)
        d.update(format=FORMAT, version=VERSION, sample_count=self.sample_count,
                 degree=DEGREE)
        return d

    def preset(self) -> Preset:
        if self.coefficients is None:
            raise CalibrationError(
                f"calibration {self.name!r} has only {self.sample_count} samples and no fit yet: "
                f"run TeaCacheCalibrate on more prompts (at least {MIN_SAMPLES} step pairs).")
        return Preset(PREFIX + self.name, self.family, self.indicator, tuple(self.coefficients),
                      source=f"user calibration {self.name!r} ({self.sample_count} samples, "
                             f"rmse {self.fit_rmse:.3g})",
                      match=dict(self.dims), note=self.model)


def fit(samples, degree: int = DEGREE):
    """(coefficients highest power first, rmse), or (None, None) with too few samples."""
    pts = np.asarray(samples, dtype=np.float64).reshape(-1, 2)
    if len(pts) < max(MIN_SAMPLES, degree + 1) or np.ptp(pts[:, 0]) == 0:
        return None, None
    coeffs = np.polyfit(pts[:, 0], pts[:, 1], degree)
    rmse = float(np.sqrt(np.mean((np.polyval(coeffs, pts[:, 0]) - pts[:, 1]) ** 2)))
    return [float(c) for c in coeffs], rmse


def _path(folder, name) -> Path:
    return Path(folder) / f"{validate_name(name)}.json"


def load(folder, name) -> Calibration:
    p = _path(folder, name)
    if not p.exists():
        raise CalibrationError(f"no calibration named {name!r} (looked for {p.name} in the "
                               "TeaCache calibration folder): run TeaCacheCalibrate first.")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CalibrationError(f"calibration file {p.name} is unreadable or not JSON ({e}); "
                               "delete it or pick another name.") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise CalibrationError(f"{p.name} is not a TeaCache calibration file; it is left "
                               "untouched: pick another name.")
    if d.get("version") != VERSION:
        raise CalibrationError(f"{p.name} has format version {d.get('version')!r}; this "
                               f"TeaCache reads version {VERSION}. Recalibrate under a new name.")
    try:
        cal = Calibration(
            name=str(d["name"]), family=str(d["family"]), indicator=str(d["indicator"]),
            dims=dict(d["dims"]), model=str(d.get("model", "")),
            skip_first=int(d.get("skip_first", 0)),
            samples=[[float(x), float(y)] for x, y in d.get("samples", [])],
            coefficients=None if d.get("coefficients") is None
            else [float(c) for c in d["coefficients"]],
            fit_rmse=None if d.get("fit_rmse") is None else float(d["fit_rmse"]),
            runs=int(d.get("runs", 0)), created=str(d.get("created", "")),
            updated=str(d.get("updated", "")))
    except (KeyError, TypeError, ValueError) as e:
        raise CalibrationError(f"calibration file {p.name} is damaged ({type(e).__name__}: {e}); "
                               "delete it or pick another name.") from None
    if cal.name != name:
        raise CalibrationError(f"{p.name} says it is calibration {cal.name!r}, not {name!r}; "
                               "it is left untouched.")
    if cal.coefficients is not None and len(cal.coefficients) != DEGREE + 1:
        raise CalibrationError(f"calibration file {p.name} is damaged (expected {DEGREE + 1} "
                               "coefficients).")
    return cal


def save(folder, cal: Calibration) -> Path:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    p = _path(folder, cal.name)
    p.parent.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    cal.created = cal.created or now
    cal.updated = now
    fd, tmp = tempfile.mkstemp(prefix=f".{cal.name}.", suffix=".tmp", dir=str(p.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(cal.to_json(), f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p


def list_names(folder) -> list[str]:
    """Names of the calibration files in the folder (not validated beyond the name)."""
    try:
        return sorted(p.stem for p in Path(folder).glob("*.json") if _NAME.fullmatch(p.stem))
    except OSError:
        return []
