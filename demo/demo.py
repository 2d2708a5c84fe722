"""Demo: run the Wan 2.1 example workflow through a real ComfyUI server, without and with
TeaCache, on a small trained model, and show what changed.

What it does (./run_demo.sh; --help for the settings):
1. Starts ComfyUI (`main.py --cpu`, 127.0.0.1, a free port, every folder in a temporary
   directory) with this pack linked into custom_nodes as a user's clone is, and the bundled
   tiny model models/wan_proxy.safetensors (ComfyUI's own WanModel, 6 blocks, trained by
   scripts/train_proxy.py on the synthetic world of benchmarks/proxy.py) under the file name
   the workflow loads.
2. Loads example_workflows/wan2.1_t2v_1.3B_teacache.json and converts it to ComfyUI's API
   format with the server's /object_info, as the page's Queue button does. Only what cannot
   exist at this size is replaced: the text encoder and the VAE, by the demo-only nodes of
   demo/teacache_demo_nodes (the proxy world's "text encoder" and a decoder of its latents).
   Small overrides, printed: latent size, steps, seed, the prompt. A SaveLatent node is added
   after the sampler, for the fidelity numbers.
3. Queues it without TeaCache (the TeaCache node bypassed as the UI's Ctrl+B does: the
   sampler gets TeaCache's input model; TeaCache Report, with nothing to report then, muted) and
   with TeaCache at a few thresholds, on the same seed, for a few prompts, several
   repetitions, interleaved. Each run is timed from POST /prompt until /history has it.
4. Prints a table (TeaCache's skipped steps from its log line, median time, speed-up, PSNR of
   the final latent against the uncached run) and writes into out/: an animated WEBP
   comparing the decoded videos side by side, each cached one with a heat map of where it
   differs from the uncached one under it, a PNG still of the same (every 4th frame), each
   threshold's TeaCache Report image, the numbers as JSON and the server's log. The pictures
   are decoded from the saved latents with the demo decoder (demo/teacache_demo_nodes), as
   the workflow's VAE Decode does, without the WEBP compression of the workflow's video.

Speed-ups on a 2.3M-parameter model on a CPU understate a real model's: here the text
encoding, VAE, sampler and server overheads are a large part of each run.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))
sys.path.append(str(ROOT))              # benchmarks.proxy

import workflows as wfl  # noqa: E402
from comfy_server import ComfyServer, executed_nodes  # noqa: E402

DEMO_PACK = ROOT / "demo" / "teacache_demo_nodes"
WORKFLOW = ROOT / "example_workflows" / "wan2.1_t2v_1.3B_teacache.json"
MODEL = ROOT / "models" / "wan_proxy.safetensors"
STANDINS = {"CLIPLoader": "TeaCacheDemoProxyTextEncoderLoader",
            "VAELoader": "TeaCacheDemoProxyVAELoader"}
LATENT_NODE = "EmptyHunyuanLatentVideo"
# The evaluation prompts (benchmarks.proxy.EVAL_PROMPTS) the demo uses, in this order: ones
# the small model draws clearly (large blobs; it draws the small ones faintly or not at all)
DEMO_PROMPTS = (10, 3, 8, 11, 1, 7)
SUMMARY_RE = re.compile(r"skipped (\d+)/(\d+) model calls per cond .*blocks ran in "
                        r"(\d+)/(\d+) calls \(est\. ([\d.]+)x\)")


def psnr(x, ref) -> float:
    mse = float(((x - ref) ** 2).mean())
    rng = float(ref.max() - ref.min())
    return math.inf if mse == 0 else 10 * math.log10(rng * rng / mse)


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="run_demo.sh", description=__doc__.split("\n\n")[0],
                                 epilog="--in-process runs the older in-process demo "
                                        "(no server; see demo/in_process.py --help).")
    ap.add_argument("--workflow", default=str(WORKFLOW), help="UI-format workflow to run")
    ap.add_argument("--model", default=str(MODEL))
    ap.add_argument("--steps", type=int, default=None, help="default: the workflow's")
    ap.add_argument("--seed", type=int, default=None, help="default: the workflow's")
    ap.add_argument("--thresholds", default=None,
                    help="comma-separated rel_l1_thresh values; default: the workflow's and "
                         "0.15")
    ap.add_argument("--no-extrapolate", dest="extrapolate", action="store_false",
                    help="leave out the run with skip_estimate = extrapolate (at the highest "
                    "threshold)")
    ap.add_argument("--prompts", type=int, default=2,
                    help=f"how many proxy evaluation prompts (at most {len(DEMO_PROMPTS)})")
    ap.add_argument("--repeats", type=int, default=3, help="timed repetitions of every run")
    ap.add_argument("--size", default="128x128x17",
                    help="WxHxFRAMES of the video (latent: /8, /8, 1 + (F-1)/4)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of the server (OMP_NUM_THREADS); 1 is as fast as 2 "
                         "for this tiny model and steadier on shared cores")
    ap.add_argument("--out", default=str(ROOT / "out"))
    return ap.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--in-process" in argv:
        sys.path.insert(0, str(ROOT / "demo"))
        import in_process
        return in_process.main([a for a in argv if a != "--in-process"])
    a = parse_args(argv)
    from comfy_env import comfyui_path
    comfy = comfyui_path()

    # SIGTERM (e.g. a CI timeout) unwinds like Ctrl-C, so the server is always stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    base = Path(tempfile.mkdtemp(prefix="teacache-demo-"))
    server = ComfyServer(base, comfy, node_packs={"teacache_demo_nodes": DEMO_PACK},
                         env={"OMP_NUM_THREADS": str(a.threads)})
    try:
        return run(a, server)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def run(a, server: ComfyServer):
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    wf = wfl.load(a.workflow)
    unet = wfl.ui_nodes_of(wf, "UNETLoader")[0]["widgets_values"][0]
    dest = server.base / "models" / "diffusion_models" / unet
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.symlink_to(Path(a.model).resolve())

    t0 = time.monotonic()
    server.start()
    version = _comfy_version(server.comfy)
    print(f"ComfyUI {version} serving on {server.url} (pid {server.proc.pid}, "
          f"{a.threads} torch thread(s), started in {server.startup_s:.1f} s; base folder "
          f"{server.base})")
    object_info = server.get_json("/object_info")

    # ---- the settings: the workflow as shipped, with TeaCache bypassed, at a few thresholds
    tc = wfl.ui_nodes_of(wf, "TeaCacheApply")
    if len(tc) != 1:
        raise SystemExit(f"{a.workflow}: expected one TeaCache node, found {len(tc)}")
    tc = tc[0]
    wf_thresh = tc["widgets_values"][0]
    thresholds = ([float(t) for t in a.thresholds.split(",") if t.strip()]
                  if a.thresholds else [wf_thresh, 0.15])
    report_ids = [n["id"] for n in wfl.ui_nodes_of(wf, "TeaCacheReport")]
    after_report = [ln[3] for ln in wf["links"] if ln[1] in report_ids]
    settings = [("no TeaCache", None,
                 wfl.set_mode(wfl.set_mode(wf, [tc["id"]], wfl.BYPASSED),
                              report_ids + after_report, wfl.MUTED))]
    # the TeaCache widgets in input order (the server's), as the page lays them out
    info = object_info["TeaCacheApply"]["input"]
    widgets = [n for sec in ("required", "optional") for n, spec in info.get(sec, {}).items()
               if n != "model"]
    est_at = widgets.index("skip_estimate")
    for t in thresholds:
        w = json.loads(json.dumps(wf))
        next(n for n in w["nodes"] if n["id"] == tc["id"])["widgets_values"][0] = t
        settings.append((f"TeaCache {t:g}", t, w))
    if a.extrapolate:
        # the highest threshold again with skip_estimate = extrapolate: same rule, same skips,
        # a closer result (BENCHMARKS.md)
        t = max(thresholds)
        w = json.loads(json.dumps(wf))
        vals = next(n for n in w["nodes"] if n["id"] == tc["id"])["widgets_values"]
        vals[0], vals[est_at] = t, "extrapolate"
        settings.append((f"TeaCache {t:g} extrap.", t, w))

    from benchmarks.proxy import EVAL_PROMPTS
    prompts = [EVAL_PROMPTS[i].text for i in DEMO_PROMPTS[:a.prompts]]
    width, height, length = (int(v) for v in a.size.lower().split("x"))
    base_api = wfl.ui_to_api(wf, object_info)
    ks_id, ks = next(iter(wfl.nodes_of(base_api, "KSampler").items()))
    steps = a.steps or ks["inputs"]["steps"]
    seed = ks["inputs"]["seed"] if a.seed is None else a.seed
    pos_id = ks["inputs"]["positive"][0]
    lat = next(iter(wfl.nodes_of(base_api, LATENT_NODE).values()))["inputs"]
    print(f"workflow: {Path(a.workflow).name} ({len(base_api)} nodes queued), model file "
          f"{unet} = {Path(a.model).name}")
    print(f"  replaced: {', '.join(f'{k} -> {v}' for k, v in STANDINS.items())} "
          f"(demo/teacache_demo_nodes); added: SaveLatent after the KSampler")
    print(f"  overrides: latent {lat['width']}x{lat['height']}x{lat['length']} -> "
          f"{width}x{height}x{length} (latent 16x{1 + (length - 1) // 4}x{height // 8}x"
          f"{width // 8}), steps {ks['inputs']['steps']} -> {steps}, seed "
          f"{ks['inputs']['seed']} -> {seed}, positive prompt "
          f"{base_api[pos_id]['inputs']['text'][:32] + '...'!r} -> a proxy prompt; kept: "
          f"{ks['inputs']['sampler_name']}/{ks['inputs']['scheduler']}, cfg "
          f"{ks['inputs']['cfg']}, shift "
          f"{next(iter(wfl.nodes_of(base_api, 'ModelSamplingSD3').values()))['inputs']['shift']}")
    for i, p in enumerate(prompts):
        print(f"  prompt {i}: {p!r}")
    print("  settings: no TeaCache (bypassed; TeaCache Report muted), "
          + ", ".join(f"TeaCache rel_l1_thresh {t:g}" for t in thresholds)
          + f" (workflow's: {wf_thresh:g})"
          + (f", and {max(thresholds):g} with skip_estimate extrapolate" if a.extrapolate else "")
          + f"; {a.repeats} repetition(s), interleaved")

    def api_prompt(ui, text):
        p = wfl.ui_to_api(ui, object_info)
        for node in p.values():
            node["class_type"] = STANDINS.get(node["class_type"], node["class_type"])
            if node["class_type"] == LATENT_NODE:
                node["inputs"].update(width=width, height=height, length=length)
        p[ks_id]["inputs"].update(steps=steps, seed=seed)
        p[pos_id]["inputs"]["text"] = text
        p["9001"] = {"class_type": "SaveLatent",
                     "inputs": {"samples": [ks_id, 0], "filename_prefix": "teacache_demo/latent"},
                     "_meta": {"title": "Save Latent (demo)"}}
        return p

    runs = {}

    def run_one(name, ui, i):
        prompt = api_prompt(ui, prompts[i])
        log_at = server.log_size()
        t = time.perf_counter()
        pid = server.queue(prompt)
        entry = server.wait(pid, timeout=600, poll=0.02)
        dt = time.perf_counter() - t
        status = entry["status"]
        if status.get("status_str") != "success":
            raise RuntimeError(f"{name}, prompt {i} failed: "
                               f"{json.dumps(status.get('messages'))[-3000:]}\n"
                               f"{server.log_tail(40)}")
        cached, _ = executed_nodes(entry)
        if ks_id in cached:
            raise RuntimeError(f"{name}, prompt {i}: the sampler's output came from "
                               "ComfyUI's cache; the timing would be meaningless")
        lines = [ln[ln.index("TeaCache: "):] for ln in server.log_since(log_at).splitlines()
                 if "TeaCache: " in ln]
        outs = entry["outputs"]
        r = runs.setdefault((name, i), {"times": []})
        r["times"].append(dt)
        r["log"] = lines[-1] if lines else None
        r["latent"] = server.output_file(outs["9001"]["latents"][0])
        r["video"] = [server.output_file(im) for nid, o in outs.items()
                      for im in o.get("images", []) if im["filename"].endswith(".webp")]
        r["report"] = [server.output_file(im) for nid, o in outs.items()
                       if int(nid) in after_report for im in o.get("images", [])]
        return dt

    print("\nwarm-up (each setting once, not timed) ...", flush=True)
    for name, _, ui in settings:
        run_one(name, ui, 0)
    for r in runs.values():
        r["times"].clear()
    t_runs = time.monotonic()
    print(f"timed runs ({a.repeats} x {len(prompts)} prompt(s) x {len(settings)} settings, "
          "interleaved), seconds:", flush=True)
    for rep in range(a.repeats):
        line = []
        for i in range(len(prompts)):
            for name, _, ui in settings:
                line.append(f"{run_one(name, ui, i):.2f}")
        print(f"  repetition {rep + 1}: " + " ".join(line), flush=True)
    print(f"  ({time.monotonic() - t_runs:.0f} s; order: for each prompt, "
          + ", ".join(name for name, _, _ in settings) + ")")

    rows = table(a, settings, prompts, runs, steps)
    write_outputs(out_dir, server, settings, prompts, runs, rows, dict(
        comfyui=version, workflow=Path(a.workflow).name, model=Path(a.model).name,
        latent=[16, 1 + (length - 1) // 4, height // 8, width // 8], steps=steps, seed=seed,
        sampler=ks["inputs"]["sampler_name"], scheduler=ks["inputs"]["scheduler"],
        cfg=ks["inputs"]["cfg"], prompts=prompts, repeats=a.repeats,
        server_threads=a.threads, cpu_count=os.cpu_count(),
        total_s=round(time.monotonic() - t0, 1)))
    return 0


def table(a, settings, prompts, runs, steps):
    from safetensors.torch import load_file
    latent_format = _wan_latent_format()

    def latent(name, i):
        x = load_file(str(runs[(name, i)]["latent"]))["latent_tensor"].float()
        return latent_format(x)

    base = "no TeaCache"
    base_t = statistics.median(t for i in range(len(prompts)) for t in runs[(base, i)]["times"])
    rows = []
    for name, thresh, _ in settings:
        times = [t for i in range(len(prompts)) for t in runs[(name, i)]["times"]]
        ps = [psnr(latent(name, i), latent(base, i)) for i in range(len(prompts))]
        skipped, blocks, est = [], [], []
        for i in range(len(prompts)):
            line = runs[(name, i)]["log"]
            m = SUMMARY_RE.search(line) if line else None
            if thresh is not None and m is None:
                raise RuntimeError(f"{name}: no TeaCache summary line in the server log")
            skipped.append(int(m.group(1)) if m else 0)
            blocks.append((int(m.group(3)), int(m.group(4))) if m else None)
            est.append(float(m.group(5)) if m else 1.0)
        if thresh is None and any(runs[(name, i)]["log"] for i in range(len(prompts))):
            raise RuntimeError("the bypassed run logged a TeaCache line: bypass did not work")
        med = statistics.median(times)
        rows.append({
            "setting": name, "threshold": thresh, "steps": steps,
            "steps_skipped_per_prompt": skipped,
            "steps_computed_per_prompt": [steps - s for s in skipped],
            "block_calls_per_prompt": blocks, "est_speedup_per_prompt": est,
            "times_s": [round(t, 3) for t in times], "median_s": round(med, 3),
            "speedup": round(base_t / med, 3),
            "psnr_db_per_prompt": [None if math.isinf(p) else round(p, 2) for p in ps],
            "log_lines": [runs[(name, i)]["log"] for i in range(len(prompts))]})
    w = max(9, 4 * len(prompts))
    print(f"\n{'setting':<22}{'computed':>{w}}{'skipped':>{w}}{'median time':>13}"
          f"{'speed-up':>10}{'(est.)':>8}{'PSNR dB':>9}{'worst':>7}")
    for r in rows:
        ps = [math.inf if p is None else p for p in r["psnr_db_per_prompt"]]
        print(f"{r['setting']:<22}{', '.join(map(str, r['steps_computed_per_prompt'])):>{w}}"
              f"{', '.join(map(str, r['steps_skipped_per_prompt'])):>{w}}"
              f"{r['median_s']:>11.2f} s{r['speedup']:>9.2f}x"
              f"{statistics.mean(r['est_speedup_per_prompt']):>7.2f}x"
              f"{_db(statistics.mean(ps)):>9}{_db(min(ps)):>7}")
    n = len(rows[0]["times_s"])
    print(f"\ncomputed / skipped: sampling steps per cond out of {steps}, for each prompt, from "
          f"TeaCache's log line; time: median of {n} runs, POST /prompt until /history has "
          f"the result; speed-up: against no TeaCache (est.: TeaCache's own estimate from "
          f"the share of model calls that ran the blocks); PSNR: final latent against the "
          f"uncached run (same seed), mean and worst over {len(prompts)} prompt(s).")
    return rows


def _db(p):
    return "inf" if math.isinf(p) else f"{p:.1f}"


def _demo_decoder():
    """demo/teacache_demo_nodes (the decoder the workflow's VAE Decode uses), imported here."""
    import importlib.util
    name = "teacache_demo_nodes_for_pictures"
    if name in sys.modules:
        return sys.modules[name]
    _wan_latent_format()                                  # ComfyUI importable
    spec = importlib.util.spec_from_file_location(name, DEMO_PACK / "__init__.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _font(size):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except TypeError:                                    # Pillow < 10.1
        return ImageFont.load_default()


BG, INK, DIM = (30, 30, 32), (235, 235, 235), (150, 150, 155)


def comparison_frames(settings, prompts, runs, rows):
    """The decoded videos of every setting and prompt, with a difference heat map under each
    cached one: {(name, i): (video frames [T, H, W, 3] uint8, heat frames or None)}."""
    import numpy as np
    from safetensors.torch import load_file
    dec = _demo_decoder()
    base = settings[0][0]
    out = {}
    for i in range(len(prompts)):
        ref = dec.model_space(load_file(str(runs[(base, i)]["latent"]))["latent_tensor"])
        for name, _, _ in settings:
            z = ref if name == base else dec.model_space(
                load_file(str(runs[(name, i)]["latent"]))["latent_tensor"])
            video = dec.to_video(dec.render_rgb(z))[0].numpy()
            heat = None if name == base else dec.to_video(dec.difference_heat(z, ref))[0].numpy()
            out[(name, i)] = ((video * 255).round().astype(np.uint8),
                              None if heat is None else (heat * 255).round().astype(np.uint8))
    return out


def _label(row, i):
    """[setting, its numbers for prompt i]."""
    if row["threshold"] is None:
        return [row["setting"], "the reference"]
    p = row["psnr_db_per_prompt"][i]
    db = "identical" if p is None else f"{p:.1f} dB"
    return [row["setting"], f"skipped {row['steps_skipped_per_prompt'][i]}/{row['steps']}, "
            f"PSNR {db}"]


def write_outputs(out_dir, server, settings, prompts, runs, rows, meta):
    from PIL import Image, ImageDraw
    names = [name for name, _, _ in settings]
    by_name = {r["setting"]: r for r in rows}
    written = []
    pics = comparison_frames(settings, prompts, runs, rows)
    n_frames, fh, fw = pics[(names[0], 0)][0].shape[:3]
    gain = _demo_decoder().DIFF_GAIN
    diff_note = (f"under each cached video: where it differs from no TeaCache (heat map, "
                 f"x{gain:g}; black = the same)")
    f_big, f_small = _font(13), _font(11)

    # animated: a column per setting, a row per prompt (its video, then its heat map)
    pad, head, lab = 6, 24, 32
    cell_w = max(fw, 170)
    grid_w = pad + len(names) * (cell_w + pad)
    row_h = lab + 2 * fh + pad + pad
    grid_h = head + len(prompts) * row_h + 18
    frames = []
    for k in range(n_frames):
        canvas = Image.new("RGB", (grid_w, grid_h), BG)
        d = ImageDraw.Draw(canvas)
        for j, name in enumerate(names):
            d.text((pad + j * (cell_w + pad), 4), name, fill=INK, font=f_big)
        for i, text in enumerate(prompts):
            y = head + i * row_h
            d.text((pad, y), f"prompt {i}: {text}", fill=INK, font=f_small)
            for j, name in enumerate(names):
                x = pad + j * (cell_w + pad)
                d.text((x, y + 16), _label(by_name[name], i)[1], fill=DIM, font=f_small)
                video, heat = pics[(name, i)]
                canvas.paste(Image.fromarray(video[k]), (x, y + lab))
                if heat is not None:
                    canvas.paste(Image.fromarray(heat[k]), (x, y + lab + fh + pad))
                else:
                    d.text((x + 4, y + lab + fh + pad + fh // 2 - 6), "(reference)",
                           fill=DIM, font=f_small)
        d.text((pad, grid_h - 16), diff_note + f"; frame {k + 1}/{n_frames}", fill=DIM,
               font=f_small)
        frames.append(canvas)
    webp = out_dir / "demo_compare.webp"
    frames[0].save(webp, save_all=True, append_images=frames[1:], duration=125, loop=0,
                   lossless=True)
    written.append(webp)

    # a still of prompt 0: every 4th frame, a row per setting, its heat map row under it
    pick = list(range(0, n_frames, 4))
    left, top = 190, 40
    heights = [fh + pad + (0 if by_name[n]["threshold"] is None else fh + pad) for n in names]
    strip = Image.new("RGB", (left + len(pick) * (fw + pad), top + sum(heights) + 20), BG)
    d = ImageDraw.Draw(strip)
    d.text((pad, 4), f"prompt 0: {prompts[0]}", fill=INK, font=f_big)
    for c, k in enumerate(pick):
        d.text((left + c * (fw + pad), 22), f"frame {k}", fill=DIM, font=f_small)
    y = top
    for name, h in zip(names, heights):
        video, heat = pics[(name, 0)]
        for li, text in enumerate(_label(by_name[name], 0)):
            d.text((pad, y + fh // 2 - 14 + li * 16), text, fill=INK if li == 0 else DIM,
                   font=f_big if li == 0 else f_small)
        for c, k in enumerate(pick):
            strip.paste(Image.fromarray(video[k]), (left + c * (fw + pad), y))
        if heat is not None:
            d.text((pad, y + fh + pad + fh // 2 - 6), f"difference (x{gain:g})", fill=DIM,
                   font=f_small)
            for c, k in enumerate(pick):
                strip.paste(Image.fromarray(heat[k]), (left + c * (fw + pad), y + fh + pad))
        y += h
    d.text((pad, y + 4), diff_note, fill=DIM, font=f_small)
    png = out_dir / "demo_compare.png"
    strip.save(png)
    written.append(png)
    for name, thresh, _ in settings:
        if thresh is None:
            continue
        src = runs[(name, 0)]["report"]
        if src:
            extra = "_extrapolate" if name.endswith("extrap.") else ""
            dst = out_dir / f"demo_teacache_report_{thresh:g}{extra}.png"
            shutil.copyfile(src[0], dst)
            written.append(dst)
    res = out_dir / "demo_results.json"
    res.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    written.append(res)
    log = out_dir / "demo_server.log"
    shutil.copyfile(server.log_path, log)
    written.append(log)
    print("\nwrote:\n" + "\n".join(f"  {p}" for p in written))
    print(f"(total {meta['total_s']:.0f} s)")


def _wan_latent_format():
    """ComfyUI's Wan 2.1 latent format, process_in: the model's own latent space."""
    from comfy_env import comfyui_path
    p = str(comfyui_path())
    if p not in sys.path:
        sys.path.insert(0, p)
    import comfy.latent_formats
    return comfy.latent_formats.Wan21().process_in


def _comfy_version(comfy: Path) -> str:
    f = comfy / "comfyui_version.py"
    for line in f.read_text().splitlines() if f.exists() else []:
        if line.startswith("__version__"):
            return line.split("=")[1].strip().strip("\"'")
    return "(unknown version)"


if __name__ == "__main__":
    sys.exit(main())
