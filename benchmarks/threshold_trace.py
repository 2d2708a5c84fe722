"""A first run's online threshold call by call, against the fixed threshold that makes the
same computes on the same prompt (issue 22; a reading of single runs, nothing is chosen here).

Per prompt: one first run of target_speedup (fresh node, no profile store), its computed calls
K; the fixed threshold that makes exactly K computes on that prompt (bisection in log
threshold); both runs' PSNR against the uncached run, both schedules, the indicator's rescaled
distance per call, and the online threshold at every call the target decided on its own over
that fixed threshold (TargetRule.tau; "-" where the call was forced or the budget decided).
Above 1: the target asks more accumulated distance before a compute than the fixed threshold
does there; below 1, less.

    .venv/bin/python benchmarks/threshold_trace.py --proxy wan_shapes --prompt-offset 4 \\
        [--prompts 4] [--steps 20] [--sampler euler] [--target 2] [--estimate extrapolate]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))
sys.path.insert(0, str(ROOT))

from comfy_env import bench_session, load_pack  # noqa: E402


def schedule_text(records) -> str:
    return "".join("C" if r["computed"] else "." for r in records)


def bisect_threshold(computes, k: int, lo: float = 1e-4, hi: float = 3.0, tries: int = 30):
    """(threshold, its result) whose computes(threshold)[0] is exactly k, by bisection in log
    threshold (computes falls as the threshold rises); None when no try makes exactly k."""
    for _ in range(tries):
        mid = (lo * hi) ** 0.5
        got = computes(mid)
        if got[0] == k:
            return mid, got
        if got[0] > k:
            lo = mid
        else:
            hi = mid
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proxy", default="wan_shapes")
    ap.add_argument("--prompt-offset", type=int, default=4,
                    help="first evaluation prompt (seed 100 + N)")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--sampler", default="euler")
    ap.add_argument("--target", type=float, default=2.0)
    ap.add_argument("--estimate", default="extrapolate")
    ap.add_argument("--latent", default="3x16x16", help="frames x height x width")
    ap.add_argument("--cfg", type=float, default=5.0)
    a = ap.parse_args()
    load_pack()
    import comfy.sd
    import nodes
    import torch
    from benchmarks.metrics import psnr
    from benchmarks.proxies import get_proxy
    from comfyui_teacache.nodes.apply import TeaCacheApply
    from comfyui_teacache.teacache_core.patching import registration_of
    from comfyui_teacache.teacache_core.target import TargetRule

    bench_session("teacache-threshold-trace-")
    proxy = get_proxy(a.proxy)
    model = comfy.sd.load_diffusion_model(str(proxy.model))
    f, h, w = (int(v) for v in a.latent.split("x"))
    latent = torch.zeros(1, proxy.eval_latent[0], f, h, w)
    taus = {}
    shipped_choose = TargetRule._choose

    def choose(self, run, cb, j, acc, left, future, fut_forced):
        out = shipped_choose(self, run, cb, j, acc, left, future, fut_forced)
        if cb is next(iter(self.conds.values())):
            taus[j] = self.tau
        return out
    TargetRule._choose = choose

    def sample(m, p, seed):
        with torch.inference_mode():
            return nodes.common_ksampler(m, seed, a.steps, a.cfg, a.sampler, "simple",
                                         proxy.positive(p), proxy.negative(),
                                         {"samples": latent})[0]["samples"]

    def node(thresh, target):
        return TeaCacheApply.execute(model, thresh, 0, -1, "uncalibrated", "model_device",
                                     False, 0, a.estimate, target, False).result[0]

    def records(m):
        return registration_of(m).last_summary["branches"]["cond"]

    print(f"{proxy.name}, {a.sampler} {a.steps} steps, target {a.target:g}x, {a.estimate}, "
          f"evaluation prompts {a.prompt_offset}-{a.prompt_offset + a.prompts - 1}")
    for i in range(a.prompt_offset, a.prompt_offset + a.prompts):
        seed, p = 100 + i, proxy.eval_prompts[i]
        ref = sample(model, p, seed)
        taus.clear()
        m = node(0.1, a.target)
        out = sample(m, p, seed)
        recs = records(m)
        k = sum(r["computed"] for r in recs)
        trace = dict(taus)

        def computes(thresh):
            mf = node(thresh, 0.0)
            x = sample(mf, p, seed)
            rf = records(mf)
            return sum(r["computed"] for r in rf), x, rf
        found = bisect_threshold(computes, k)
        line = f"seed {seed}: K = {k} of {len(recs)}, target {psnr(out, ref):.1f} dB"
        if found is None:
            print(line + "; no fixed threshold makes exactly K")
            continue
        thresh, (_, x, rf) = found
        print(line + f", fixed threshold {thresh:.4g} {psnr(x, ref):.1f} dB")
        print("  target    " + schedule_text(recs))
        print("  fixed     " + schedule_text(rf))
        print("  distance  " + " ".join(f"{r['rescaled'] or 0:.3f}" for r in recs))
        print("  online / fixed threshold  " + " ".join(
            f"{trace[j] / thresh:.2f}" if trace.get(j) else "-" for j in range(len(recs))))


if __name__ == "__main__":
    main()
