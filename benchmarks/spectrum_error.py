"""How Spectrum's forecast error grows (issue 24; BENCHMARKS.md "Spectrum"): on a trained proxy,
the hidden state after the last transformer block (Spectrum's forecast target) is recorded at
every step of uncached runs (per cond), then each skipped step of a schedule is forecast from
the TRUE features of the steps that schedule computed before it (teacher-forced: the forecaster
alone, without the drift a real cached run adds) and compared with the true feature, as the
relative L2 error of the hidden state and of its layer norm over channels (the head normalises
it first: WanModel's and HunyuanVideo's final layers start with a LayerNorm without affine).
Next to it, the same error for reusing the last computed feature and for the line through the
last two (both also teacher-forced), by distance in steps from the last computed step.

    .venv/bin/python benchmarks/spectrum_error.py --proxy wan --prompts 4 --threads 1
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))
sys.path.insert(0, str(ROOT))

from comfy_env import load_pack  # noqa: E402

# (label, warm-up, window, flex, w): the README setting, the config's w, warm-up scaled to 24
SCHEDULES = [("README: warm-up 5, N 2, flex 0.75, w 0.5", 5, 2, 0.75, 0.5),
             ("README: warm-up 5, N 2, flex 3.0, w 0.5", 5, 2, 3.0, 0.5),
             ("warm-up 2, N 2, flex 1.5, w 0.5", 2, 2, 1.5, 0.5),
             ("warm-up 2, N 2, flex 1.5, w 1.0", 2, 2, 1.5, 1.0)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proxy", default="wan")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--cfg", type=float, default=5.0)
    ap.add_argument("--sampler", default="euler")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    load_pack()
    import torch
    import comfy.sd
    import comfy.utils
    import nodes
    from benchmarks import peers
    from benchmarks.proxies import get_proxy
    from comfyui_teacache.teacache_core.patching import registration_of

    if a.threads:
        torch.set_num_threads(a.threads)
    comfy.utils.PROGRESS_BAR_ENABLED = False
    proxy = get_proxy(a.proxy)
    model = comfy.sd.load_diffusion_model(str(proxy.model))
    # every step computed (floor(ws) = 1): the forecaster of each cond keeps every feature
    m = peers.Spectrum(0.0, window=1, warmup=1).install(model)
    reg = registration_of(m)
    runs = []
    plain = reg.customize_run

    def keep(run):
        plain(run)
        runs.append(run)
    reg.customize_run = keep

    trajectories = []          # per prompt and cond: [steps] features
    for i, p in enumerate(proxy.eval_prompts[:a.prompts]):
        with torch.inference_mode():
            nodes.common_ksampler(m, 100 + i, a.steps, a.cfg, a.sampler, "simple",
                                  proxy.positive(p), proxy.negative(),
                                  {"samples": torch.zeros(1, *proxy.eval_latent)})
        for lab, fc in runs[-1].estimator.fc.items():
            assert fc.steps == list(range(a.steps)), fc.steps
            trajectories.append((lab, [f.clone() for f in fc.feats]))

    def rel(est, true):
        return (torch.linalg.vector_norm((est - true).double()) /
                torch.linalg.vector_norm(true.double())).item()

    def ln(t):
        return torch.nn.functional.layer_norm(t.double(), t.shape[-1:])

    print(f"proxy {a.proxy}, {a.steps} steps, {a.sampler}, CFG {a.cfg}, {a.prompts} prompts x "
          "cond/uncond; relative L2 error of the forecast hidden state (after the head's layer "
          "norm in brackets), median over prompts and conds, teacher-forced\n")
    for label, warm, win, flex, w in SCHEDULES:
        sched = peers.spectrum_schedule(a.steps, warm, win, flex)
        errs = {}               # step -> {method: [errors]}
        for _, feats in trajectories:
            fc = peers.SpectrumForecaster(w=w, t_max=a.steps)
            last = []
            for s in range(a.steps):
                if s in sched:
                    fc.update(s, feats[s])
                    last.append(s)
                    continue
                f = feats[s]
                h1 = feats[last[-1]]
                line = h1 if len(last) < 2 else h1 + (h1 - feats[last[-2]]) * (
                    (s - last[-1]) / (last[-1] - last[-2]))
                for name, est in (("Spectrum", fc.predict(s)), ("reuse", h1), ("line", line)):
                    e = errs.setdefault(s, {}).setdefault(name, [])
                    e.append((rel(est, f), rel(ln(est), ln(f))))
        print(f"#### {label}: computes {sched} ({a.steps / len(sched):.2f}x)\n")
        print("| step | since last computed | Spectrum | reuse last | line through last two |")
        print("|---:|---:|---:|---:|---:|")
        for s, by in errs.items():
            since = s - max(x for x in sched if x < s)
            cells = []
            for name in ("Spectrum", "reuse", "line"):
                v = by[name]
                cells.append(f"{statistics.median(e for e, _ in v):.3f} "
                             f"({statistics.median(e for _, e in v):.3f})")
            print(f"| {s} | {since} | " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    main()
