"""Render what TeaCache did in one sampling run as a picture (PIL; no ComfyUI).

For each cond: a strip with one cell per model call, green = computed, grey = skipped, and a
chart of the rescaled distance per call (bars), the accumulator (line) and the threshold
(dashed). For a calibration run: the scatter of (indicator change, output change) samples with
the fitted polynomial.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

WIDTH = 1024
STRIP_H = 28
CHART_H = 150
TITLE_H = 22
PANEL_GAP = 12
SCATTER_H = 300
COMPUTED = (46, 160, 67)
SKIPPED = (150, 150, 150)
BAR = (70, 110, 200)
ACC = (220, 120, 20)
THRESH = (200, 30, 30)
BG = (255, 255, 255)
INK = (20, 20, 20)
MARGIN_L, MARGIN_R = 60, 16


def _cells(n: int):
    """x ranges of n cells across the plotting width."""
    w = (WIDTH - MARGIN_L - MARGIN_R) / max(n, 1)
    return [(MARGIN_L + i * w, MARGIN_L + (i + 1) * w) for i in range(n)]


def layout(summary: dict) -> dict:
    """Where everything goes: {"size": (w, h), "strips": {label: [(x0, y0, x1, y1), ...]}},
    one rectangle per record of that branch (the tests read the pixels there)."""
    y = TITLE_H + 6
    strips = {}
    for label, recs in summary.get("branches", {}).items():
        y += TITLE_H
        strips[label] = [(int(a) + 1, y, int(b) - 1, y + STRIP_H) for a, b in _cells(len(recs))]
        y += STRIP_H + CHART_H + PANEL_GAP
    if summary.get("calibration"):
        y += SCATTER_H + PANEL_GAP
    return {"size": (WIDTH, max(y, 120)), "strips": strips}


def render(summary: dict) -> Image.Image:
    lay = layout(summary)
    img = Image.new("RGB", lay["size"], BG)
    d = ImageDraw.Draw(img)
    thr = float(summary.get("threshold") or 0)
    if summary.get("target_speedup"):       # the line a fixed threshold would draw
        thr = float((summary.get("target") or {}).get("equivalent_threshold") or 0)
    d.text((8, 6), _title(summary), fill=INK)
    if not summary.get("branches"):
        d.text((8, TITLE_H + 20), summary.get("note") or
               "no model call reached TeaCache in this run", fill=INK)
    for label, recs in summary.get("branches", {}).items():
        rects = lay["strips"][label]
        y0 = rects[0][1] if rects else TITLE_H
        skipped = sum(1 for r in recs if not r["computed"])
        d.text((8, y0 - TITLE_H + 4), f"{label}: {skipped}/{len(recs)} calls skipped "
               "(green computed, grey skipped; bars: rescaled change, orange: accumulator, "
               "red dashes: threshold)", fill=INK)
        for r, (x0, ya, x1, yb) in zip(recs, rects):
            d.rectangle([x0, ya, x1, yb], fill=COMPUTED if r["computed"] else SKIPPED)
            if x1 - x0 > 14:
                d.text((x0 + 2, ya + 8), str(r["step"]), fill=BG)
        _chart(d, recs, thr, yb_top=y0 + STRIP_H + 4)
    cal = summary.get("calibration")
    if cal:
        _scatter(d, cal, lay["size"][1] - SCATTER_H - PANEL_GAP)
    return img


def _title(s: dict) -> str:
    if "preset" not in s:
        return f"TeaCache - {s.get('model', '')}"
    preset = s.get("preset", "?")
    est = " | skips extrapolated" if s.get("skip_estimate") == "extrapolate" else ""
    return (f"TeaCache - {s.get('model', '')} | {preset} | indicator {s.get('indicator', '?')} "
            f"| {_rule_text(s)}{est} | est. {s.get('estimated_speedup', 1):.2f}x")


def _rule_text(s: dict) -> str:
    """The threshold, or for target_speedup: the target, what it realised, and the fixed
    threshold that would compute as many calls on this run's distances."""
    if not s.get("target_speedup"):
        return f"threshold {s.get('threshold', 0):g}"
    t = s.get("target") or {}
    eq = t.get("equivalent_threshold")
    return (f"target {s['target_speedup']:g}x{' (clamped)' if t.get('clamped') else ''}, "
            f"realised {t.get('realised_per_cond', 1.0):.2f}x per cond, equivalent threshold "
            + ("n/a" if eq is None else f"{eq:.4g}"))


def _chart(d, recs, thr, yb_top):
    top, bottom = yb_top + 4, yb_top + CHART_H - 14
    vals = [r["rescaled"] for r in recs if r["rescaled"] is not None and math.isfinite(r["rescaled"])]
    accs = [r["accumulated"] for r in recs]
    vmax = max([thr] + [abs(v) for v in vals] + accs + [1e-9]) * 1.1

    def yv(v):
        return bottom - (bottom - top) * max(min(v / vmax, 1.0), -0.2)

    d.line([MARGIN_L, bottom, WIDTH - MARGIN_R, bottom], fill=INK)
    d.text((4, top), f"{vmax:.3g}", fill=INK)
    d.text((4, bottom - 10), "0", fill=INK)
    cells = _cells(len(recs))
    pts = []
    for r, (a, b) in zip(recs, cells):
        if r["rescaled"] is not None and math.isfinite(r["rescaled"]):
            d.rectangle([a + (b - a) * 0.2, yv(r["rescaled"]), b - (b - a) * 0.2, bottom], fill=BAR)
        pts.append(((a + b) / 2, yv(r["accumulated"])))
    if len(pts) > 1:
        d.line(pts, fill=ACC, width=2)
    if thr > 0:
        ty = yv(thr)
        x = MARGIN_L
        while x < WIDTH - MARGIN_R:
            d.line([x, ty, min(x + 8, WIDTH - MARGIN_R), ty], fill=THRESH, width=2)
            x += 14


def _scatter(d, cal, y0):
    pts = np.asarray(cal.get("samples") or [], dtype=float).reshape(-1, 2)
    d.text((8, y0), f"calibration {cal.get('name')!r}: {len(pts)} samples (x: indicator change, "
           f"y: output change), fit rmse {cal.get('fit_rmse') or float('nan'):.3g}", fill=INK)
    top, bottom = y0 + TITLE_H, y0 + SCATTER_H - 10
    left, right = MARGIN_L, WIDTH - MARGIN_R
    d.rectangle([left, top, right, bottom], outline=INK)
    if len(pts) == 0:
        return
    xmax = max(pts[:, 0].max(), 1e-9) * 1.05
    ymax = max(pts[:, 1].max(), 1e-9) * 1.05

    def xy(x, y):
        return (left + (right - left) * x / xmax,
                bottom - (bottom - top) * max(min(y / ymax, 1.0), 0.0))

    for x, y in pts:
        cx, cy = xy(x, y)
        d.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=BAR)
    coeffs = cal.get("coefficients")
    if coeffs:
        xs = np.linspace(0, xmax, 200)
        d.line([xy(x, y) for x, y in zip(xs, np.polyval(coeffs, xs))], fill=THRESH, width=2)
    d.text((left + 4, top + 4), f"y max {ymax:.3g}", fill=INK)
    d.text((right - 90, bottom - 14), f"x max {xmax:.3g}", fill=INK)
