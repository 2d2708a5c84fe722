"""In-process demo (./run_demo.sh --in-process): sample the small trained Wan-architecture model
with ComfyUI's KSampler inside this Python process (no server, no workflow), without and with
TeaCache, and show what changed.

For every setting it runs ComfyUI's own KSampler (euler, CFG) on the same seeds, interleaved,
several repetitions, and prints: transformer-block executions, steps skipped, the median
wall-time ratio against the uncached run, and the PSNR of the final latent against the
uncached one. It writes out/in_process_preview.png (frames of each result, three latent
channels as RGB) and out/in_process_results.json.

The model (models/wan_proxy.safetensors) is ComfyUI's WanModel trained by
scripts/train_proxy.py on synthetic moving-blob videos (benchmarks/proxy.py); it is loaded
with ComfyUI's own loader. Speed ratios on a tiny model on a CPU understate what a real
14B model gets, where the blocks are nearly all of the step time.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))
sys.path.insert(0, str(ROOT))

from comfy_env import load_pack  # noqa: E402


def psnr(x, ref) -> float:
    mse = float(((x - ref) ** 2).mean())
    rng = float(ref.max() - ref.min())
    return math.inf if mse == 0 else 10 * math.log10(rng * rng / mse)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="run_demo.sh --in-process",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "wan_proxy.safetensors"))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--cfg", type=float, default=5.0)
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--size", type=int, default=16, help="latent height and width")
    ap.add_argument("--thresholds", default="0.05,0.1,0.2,0.3")
    ap.add_argument("--prompts", type=int, default=2, help="evaluation prompts (seeds) averaged")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "out"))
    a = ap.parse_args(argv)

    load_pack()
    import torch
    import logging
    import comfy.sd
    import nodes
    import comfy.utils
    from benchmarks.proxy import EVAL_PROMPTS, make_context, make_uncond_context
    from comfyui_teacache.nodes.apply import TeaCacheApply
    from comfyui_teacache.teacache_core.patching import registration_of

    torch.set_num_threads(max(1, torch.get_num_threads()))
    logging.getLogger().setLevel(logging.WARNING)
    comfy.utils.PROGRESS_BAR_ENABLED = False
    model = comfy.sd.load_diffusion_model(a.model)
    dm = model.get_model_object("diffusion_model")
    print(f"model: {Path(a.model).name} -> {type(model.model).__name__} / {type(dm).__name__}, "
          f"dim {dm.dim}, {len(dm.blocks)} blocks; latent 16x{a.frames}x{a.size}x{a.size}, "
          f"{a.steps} steps euler, cfg {a.cfg}")

    blocks = {"n": 0}
    for b in dm.blocks:
        b.register_forward_pre_hook(lambda *_: blocks.__setitem__("n", blocks["n"] + 1))

    thresholds = [float(t) for t in a.thresholds.split(",") if t.strip()]
    settings = [("no TeaCache", None)] + [(f"TeaCache {t:g}", t) for t in thresholds]
    models = {name: (model if t is None else TeaCacheApply.execute(
        model, t, 0, -1, "auto", "model_device", False, 0).result[0]) for name, t in settings}
    prompts = EVAL_PROMPTS[:a.prompts]
    latent = {"samples": torch.zeros(1, 16, a.frames, a.size, a.size)}

    def run(m, i):
        pos = [[make_context(prompts[i]), {}]]
        neg = [[make_uncond_context(), {}]]
        blocks["n"] = 0
        t0 = time.perf_counter()
        out = nodes.common_ksampler(m, 100 + i, a.steps, a.cfg, "euler", "simple", pos, neg,
                                    latent)[0]["samples"]
        return out, time.perf_counter() - t0, blocks["n"]

    for name, _ in settings:                      # warm-up (first-call costs)
        run(models[name], 0)
    times = {name: [] for name, _ in settings}
    results = {}
    for rep in range(a.repeats):                  # interleaved repetitions
        for name, _ in settings:
            for i in range(len(prompts)):
                out, dt, n = run(models[name], i)
                times[name].append(dt)
                results[(name, i)] = (out, n)
    rows = []
    base_t = statistics.median(times["no TeaCache"])
    for name, t in settings:
        ps = [psnr(results[(name, i)][0], results[("no TeaCache", i)][0]) for i in range(len(prompts))]
        n = statistics.mean(results[(name, i)][1] for i in range(len(prompts)))
        s = registration_of(models[name]).last_summary if t is not None else None
        skipped = 0 if s is None else sum(1 for r in s["branches"]["cond"] if not r["computed"])
        rows.append({"setting": name, "threshold": t, "blocks_run": n, "steps_skipped": skipped,
                     "steps": a.steps, "median_s": statistics.median(times[name]),
                     "speedup": base_t / statistics.median(times[name]),
                     "psnr_db_mean": statistics.mean(ps), "psnr_db_worst": min(ps)})
    print(f"\n{'setting':<16}{'skipped':>9}{'blocks':>8}{'time':>9}{'speed-up':>10}{'PSNR dB':>9}{'worst':>8}")
    for r in rows:
        p = "inf" if math.isinf(r["psnr_db_mean"]) else f"{r['psnr_db_mean']:.1f}"
        w = "inf" if math.isinf(r["psnr_db_worst"]) else f"{r['psnr_db_worst']:.1f}"
        print(f"{r['setting']:<16}{r['steps_skipped']:>5}/{r['steps']:<3}{r['blocks_run']:>8.0f}"
              f"{r['median_s']:>8.2f}s{r['speedup']:>9.2f}x{p:>9}{w:>8}")
    print("\nPSNR: final latent against the uncached run (same seed), mean and worst over "
          f"{len(prompts)} prompt(s); speed-up: median of {a.repeats * len(prompts)} timed runs.")

    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "in_process_results.json").write_text(json.dumps(rows, indent=2))
    write_preview(out_dir / "in_process_preview.png", [(name, results[(name, 0)][0]) for name, _ in settings],
                  model.model.latent_format)
    print(f"wrote {out_dir / 'in_process_preview.png'} and {out_dir / 'in_process_results.json'}")


def write_preview(path, named, latent_format):
    """One row per setting: every frame, latent channels 0-2 as RGB (shared normalisation)."""
    from PIL import Image, ImageDraw
    lat = [latent_format.process_in(x)[0, :3].float() for _, x in named]
    lo = min(float(x.min()) for x in lat)
    hi = max(float(x.max()) for x in lat)
    c, f, h, w = lat[0].shape
    scale, label_w = max(1, 96 // h), 110
    img = Image.new("RGB", (label_w + f * (w * scale + 4), len(lat) * (h * scale + 4)), "white")
    draw = ImageDraw.Draw(img)
    for r, ((name, _), x) in enumerate(zip(named, lat)):
        y0 = r * (h * scale + 4)
        draw.text((4, y0 + h * scale // 2 - 6), name, fill="black")
        for k in range(f):
            fr = ((x[:, k] - lo) / (hi - lo + 1e-8) * 255).clamp(0, 255).byte().permute(1, 2, 0)
            tile = Image.fromarray(fr.numpy(), "RGB").resize((w * scale, h * scale), Image.NEAREST)
            img.paste(tile, (label_w + k * (w * scale + 4), y0))
    img.save(path)


if __name__ == "__main__":
    main()
