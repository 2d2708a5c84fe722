"""How well a first run's shape follows the indicator, call by call (issue 22): the shipped
shape (budget.call_scales: move ** 0.3 / sigma ** 1.25) against the moves of the blocks'
conditioning vector (target_variants.schedule_vectors / schedule_shape), on each proxy.

Samples each proxy's calibration prompts (4.., seeds 700..) with every call computed
(a threshold of 1e-9: threshold 0 is the node switched off), reads the rescaled indicator distance of every call, and prints per proxy the
ratio distance / shape call by call and its coefficient of variation over calls 1.. (std /
mean: 0 where the shape predicts the distances up to one scale, which is all a first run fits).
HunyuanVideo has no vectors in target_variants.VECTORS (its modulation vector adds the pooled
text and guidance): only the shipped shape's row.

    .venv/bin/python benchmarks/vector_shape.py [--proxies wan,hunyuan,ltxv,wan_shapes] \\
        [--prompts 2] [--steps 20] [--sampler euler] [--out out/vector_shape.md]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))
sys.path.insert(0, str(ROOT))

from comfy_env import bench_session, load_pack  # noqa: E402


def cv(values) -> float:
    v = [x for x in values if x > 0]
    return statistics.pstdev(v) / statistics.mean(v) if len(v) > 1 else float("nan")


def ratios(distances, shape) -> list:
    return [d / s if s > 0 and d is not None else 0.0 for d, s in zip(distances, shape)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proxies", default="wan,hunyuan,ltxv,wan_shapes")
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--sampler", default="euler")
    ap.add_argument("--cfg", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    load_pack()
    import comfy.samplers
    import comfy.sd
    import nodes
    import torch
    from benchmarks import target_variants as tv
    from benchmarks.proxies import get_proxy
    from comfyui_teacache.nodes.apply import TeaCacheApply
    from comfyui_teacache.teacache_core import budget
    from comfyui_teacache.teacache_core.adapters import find_adapter
    from comfyui_teacache.teacache_core.patching import registration_of

    bench_session("teacache-vector-shape-", a.threads)
    lines = [f"{a.sampler}, {a.steps} steps, CFG {a.cfg:g}, calibration prompts 4-"
             f"{3 + a.prompts} (seeds 700-{699 + a.prompts}), every call computed; "
             "distance / shape per call (calls 1..), and its coefficient of variation", "",
             "| proxy | prompt | shape | distance / shape, call by call | CV |",
             "|---|---|---|---|---:|"]
    for name in a.proxies.split(","):
        proxy = get_proxy(name)
        model = comfy.sd.load_diffusion_model(str(proxy.model))
        ms = model.get_model_object("model_sampling")
        sigmas = comfy.samplers.calculate_sigmas(ms, "simple", a.steps).tolist()
        steps = list(range(a.steps))
        family = find_adapter(model.get_model_object("diffusion_model")).family
        vec = tv.schedule_vectors(model, family, sigmas[:-1])
        shapes = {"move^0.3 / sigma^1.25 (shipped)": budget.call_scales(sigmas, steps)}
        if vec is not None:
            shapes["conditioning vector's moves"] = tv.shape_scales(tv.schedule_shape(vec),
                                                                    steps)
        f, h, w = proxy.eval_latent[1:]
        latent = torch.zeros(1, proxy.eval_latent[0], f, h, w)
        for i in range(a.prompts):
            p = proxy.calib_prompts[4 + i]
            m = TeaCacheApply.execute(model, 1e-9, 0, -1, "uncalibrated", "model_device", False,
                                      0, "reuse", 0.0, False).result[0]
            with torch.inference_mode():
                nodes.common_ksampler(m, 700 + i, a.steps, a.cfg, a.sampler, "simple",
                                      proxy.positive(p), proxy.negative(), {"samples": latent})
            recs = registration_of(m).last_summary["branches"]["cond"]
            d = [r["rescaled"] for r in recs]
            for label, shape in shapes.items():
                r = ratios(d, shape)[1:]
                lines.append(f"| {name} | {4 + i} | {label} | "
                             + " ".join(f"{x:.2f}" for x in r) + f" | {cv(r):.2f} |")
        print(f"{name} done", flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
