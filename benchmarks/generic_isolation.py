"""Is the generic path's gap to a family adapter its indicator or its residuals? (issue 21)

Runs, on a trained proxy, the family adapter (uncalibrated: modulated input, identity rescale)
and the generic path made to decide on that same indicator (benchmarks/generic_indicator.py
`family_indicator`), at the same thresholds: the schedules of computed steps must match, and
the outputs then differ only by the rounding of the generic path's per-stack residual sums.

    python benchmarks/generic_isolation.py --proxy hunyuan --thresholds 0.1,0.2,0.3
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))
sys.path.insert(0, str(ROOT))

from comfy_env import bench_session, load_pack  # noqa: E402


def main():
    from benchmarks.proxies import PROXIES, get_proxy
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proxy", choices=list(PROXIES), default="wan")
    ap.add_argument("--thresholds", default="0.1,0.2")
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--cfg", type=float, default=5.0)
    ap.add_argument("--sampler", default="euler")
    a = ap.parse_args()
    load_pack()
    import torch
    import comfy.sd
    import nodes
    from benchmarks.generic_indicator import family_indicator, install
    from benchmarks.metrics import psnr
    from comfyui_teacache.teacache_core.config import TeaCacheConfig
    from comfyui_teacache.teacache_core.patching import apply_teacache, registration_of
    bench_session("teacache-bench-user-", 1, logging.WARNING)
    proxy = get_proxy(a.proxy)
    model = comfy.sd.load_diffusion_model(str(proxy.model))
    lat = torch.zeros(1, *proxy.eval_latent)
    indicator = family_indicator(model)

    def run(m, p, seed):
        with torch.inference_mode():
            return nodes.common_ksampler(m, seed, a.steps, a.cfg, a.sampler, "simple",
                                         proxy.positive(p), proxy.negative(),
                                         {"samples": lat})[0]["samples"]

    def schedule(m):
        recs = registration_of(m).last_summary["branches"]["cond"]
        return "".join("C" if r["computed"] else "." for r in recs)

    # why the indicators differ: their relative L1 change at every step (nothing skipped)
    # ... and what they stand for: the relative L1 change of the model's output (the cond's
    # row of the batched call) from one step to the next
    outs = []
    hook = model.get_model_object("diffusion_model").register_forward_hook(
        lambda mod, args, out: outs.append(out[:1].detach().clone()))
    run(model, proxy.eval_prompts[0], 100)
    hook.remove()
    per_step = {"model output": [None] + [((b - a).abs().sum() / a.abs().sum()).item()
                                          for a, b in zip(outs, outs[1:])]}
    for name, make in (("modulated input (adapter)", lambda: apply_teacache(
            model, TeaCacheConfig(0.0, model_type="uncalibrated"))[0]),
            ("block input (generic)", lambda: apply_teacache(
                model, TeaCacheConfig(0.0, model_type="generic"))[0]),
            ("block input + vec (experiment)", lambda: install(
                model, TeaCacheConfig(0.0, model_type="generic")))):
        m = make()
        run(m, proxy.eval_prompts[0], 100)
        per_step[name] = [r["distance"] for r in
                          registration_of(m).last_summary["branches"]["cond"]]
    names = list(per_step)
    print("| step | " + " | ".join(names) + " |\n|---:|" + "---:|" * len(names))
    for k in range(1, len(per_step[names[0]])):
        print(f"| {k} | " + " | ".join(f"{per_step[n][k]:.4f}" for n in names) + " |")
    print()
    print("| threshold | skip_estimate | prompt | computed steps (C), family adapter | same "
          "schedule under the generic path | PSNR dB adapter / generic | max abs difference |")
    print("|---:|---|---:|---|---|---:|---:|")
    for thr in (float(t) for t in a.thresholds.split(",")):
        for est in ("reuse", "extrapolate"):
            for i, p in enumerate(proxy.eval_prompts[:a.prompts]):
                ref = run(model, p, 100 + i)
                fam = apply_teacache(model, TeaCacheConfig(thr, model_type="uncalibrated",
                                                           skip_estimate=est))[0]
                gen = install(model, TeaCacheConfig(thr, model_type="generic", skip_estimate=est),
                              indicator)
                of, og = run(fam, p, 100 + i), run(gen, p, 100 + i)
                sf, sg = schedule(fam), schedule(gen)
                print(f"| {thr:g} | {est} | {i} | `{sf}` | {'yes' if sf == sg else f'no: `{sg}`'} | "
                      f"{psnr(of, ref):.2f} / {psnr(og, ref):.2f} | "
                      f"{(of - og).abs().max().item():.1e} |", flush=True)


if __name__ == "__main__":
    main()
