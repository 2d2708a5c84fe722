"""Writes example_workflows/*.json: UI-format ComfyUI workflows (what the page saves and loads;
its template browser lists this folder), one per supported family, with TeaCache placed and
set as README.md recommends and a note explaining the settings.

    .venv/bin/python tests/e2e_make_workflows.py          # rewrite example_workflows/
    .venv/bin/python tests/e2e_make_workflows.py --check  # exit 1 if a file differs

The files are the product; this script only keeps them consistent. Widget values are written in
the order this script's NODE table gives; the e2e tests convert the files with the server's own
/object_info, so an order mistake here fails them.
"""
from __future__ import annotations

import json
import sys
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "example_workflows"
# the pack's registry id and version: on this pack's nodes the page reads properties "cnr_id"
# and "ver" to offer installing the pack when a workflow needs it and it is missing
_PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
CNR_ID, VERSION = _PROJECT["name"], _PROJECT["version"]
PACK_NODES = ("TeaCacheApply", "TeaCacheCalibrate", "TeaCacheReport")

# node type -> (socket inputs [(name, type)], outputs [(name, type)], widget names in order).
# A widget name ending in "!" is followed by the seed's "control after generate" value; LoadImage's
# "upload" is the image-upload button's value.
NODE = {
    "UNETLoader": ([], [("MODEL", "MODEL")], ["unet_name", "weight_dtype"]),
    "CheckpointLoaderSimple": ([], [("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")],
                               ["ckpt_name"]),
    "CLIPLoader": ([], [("CLIP", "CLIP")], ["clip_name", "type", "device"]),
    "DualCLIPLoader": ([], [("CLIP", "CLIP")], ["clip_name1", "clip_name2", "type", "device"]),
    "VAELoader": ([], [("VAE", "VAE")], ["vae_name"]),
    "CLIPVisionLoader": ([], [("CLIP_VISION", "CLIP_VISION")], ["clip_name"]),
    "LoadImage": ([], [("IMAGE", "IMAGE"), ("MASK", "MASK")], ["image", "upload"]),
    "CLIPVisionEncode": ([("clip_vision", "CLIP_VISION"), ("image", "IMAGE")],
                         [("CLIP_VISION_OUTPUT", "CLIP_VISION_OUTPUT")], ["crop"]),
    "CLIPTextEncode": ([("clip", "CLIP")], [("CONDITIONING", "CONDITIONING")], ["text"]),
    "TeaCacheApply": ([("model", "MODEL")], [("MODEL", "MODEL")],
                      ["rel_l1_thresh", "start_step", "end_step", "model_type", "cache_device",
                       "retention_mode", "max_consecutive_skips", "skip_estimate",
                       "target_speedup", "profile_store"]),
    "TeaCacheReport": ([("model", "MODEL"), ("latent", "LATENT")],
                       [("report", "IMAGE"), ("json", "STRING")], []),
    "ModelSamplingSD3": ([("model", "MODEL")], [("MODEL", "MODEL")], ["shift"]),
    "EmptyHunyuanLatentVideo": ([], [("LATENT", "LATENT")],
                                ["width", "height", "length", "batch_size"]),
    "WanImageToVideo": ([("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                         ("vae", "VAE"), ("clip_vision_output", "CLIP_VISION_OUTPUT"),
                         ("start_image", "IMAGE")],
                        [("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                         ("latent", "LATENT")], ["width", "height", "length", "batch_size"]),
    "Wan22ImageToVideoLatent": ([("vae", "VAE"), ("start_image", "IMAGE")],
                                [("LATENT", "LATENT")],
                                ["width", "height", "length", "batch_size"]),
    "KSampler": ([("model", "MODEL"), ("positive", "CONDITIONING"),
                  ("negative", "CONDITIONING"), ("latent_image", "LATENT")],
                 [("LATENT", "LATENT")],
                 ["seed!", "steps", "cfg", "sampler_name", "scheduler", "denoise"]),
    "KSamplerAdvanced": ([("model", "MODEL"), ("positive", "CONDITIONING"),
                          ("negative", "CONDITIONING"), ("latent_image", "LATENT")],
                         [("LATENT", "LATENT")],
                         ["add_noise", "noise_seed!", "steps", "cfg", "sampler_name",
                          "scheduler", "start_at_step", "end_at_step",
                          "return_with_leftover_noise"]),
    "VAEDecode": ([("samples", "LATENT"), ("vae", "VAE")], [("IMAGE", "IMAGE")], []),
    "VAEDecodeTiled": ([("samples", "LATENT"), ("vae", "VAE")], [("IMAGE", "IMAGE")],
                       ["tile_size", "overlap", "temporal_size", "temporal_overlap"]),
    "SaveAnimatedWEBP": ([("images", "IMAGE")], [],
                         ["filename_prefix", "fps", "lossless", "quality", "method"]),
    "PreviewImage": ([("images", "IMAGE")], [], []),
    "FluxGuidance": ([("conditioning", "CONDITIONING")], [("CONDITIONING", "CONDITIONING")],
                     ["guidance"]),
    "BasicGuider": ([("model", "MODEL"), ("conditioning", "CONDITIONING")],
                    [("GUIDER", "GUIDER")], []),
    "BasicScheduler": ([("model", "MODEL")], [("SIGMAS", "SIGMAS")],
                       ["scheduler", "steps", "denoise"]),
    "KSamplerSelect": ([], [("SAMPLER", "SAMPLER")], ["sampler_name"]),
    "RandomNoise": ([], [("NOISE", "NOISE")], ["noise_seed!"]),
    "SamplerCustomAdvanced": ([("noise", "NOISE"), ("guider", "GUIDER"), ("sampler", "SAMPLER"),
                               ("sigmas", "SIGMAS"), ("latent_image", "LATENT")],
                              [("output", "LATENT"), ("denoised_output", "LATENT")], []),
    "SamplerCustom": ([("model", "MODEL"), ("positive", "CONDITIONING"),
                       ("negative", "CONDITIONING"), ("sampler", "SAMPLER"),
                       ("sigmas", "SIGMAS"), ("latent_image", "LATENT")],
                      [("output", "LATENT"), ("denoised_output", "LATENT")],
                      ["add_noise", "noise_seed!", "cfg"]),
    "LTXVConditioning": ([("positive", "CONDITIONING"), ("negative", "CONDITIONING")],
                         [("positive", "CONDITIONING"), ("negative", "CONDITIONING")],
                         ["frame_rate"]),
    "EmptyLTXVLatentVideo": ([], [("LATENT", "LATENT")],
                             ["width", "height", "length", "batch_size"]),
    "LTXVScheduler": ([("latent", "LATENT")], [("SIGMAS", "SIGMAS")],
                      ["steps", "max_shift", "base_shift", "stretch", "terminal"]),
    "QuadrupleCLIPLoader": ([], [("CLIP", "CLIP")],
                            ["clip_name1", "clip_name2", "clip_name3", "clip_name4"]),
    "ConditioningZeroOut": ([("conditioning", "CONDITIONING")],
                            [("CONDITIONING", "CONDITIONING")], []),
    "ModelSamplingAuraFlow": ([("model", "MODEL")], [("MODEL", "MODEL")], ["shift"]),
    "EmptySD3LatentImage": ([], [("LATENT", "LATENT")], ["width", "height", "batch_size"]),
    "EmptyMochiLatentVideo": ([], [("LATENT", "LATENT")],
                              ["width", "height", "length", "batch_size"]),
    "SaveImage": ([("images", "IMAGE")], [], ["filename_prefix"]),
    # newest ComfyUI only (Kandinsky 5, CogVideoX)
    "Kandinsky5ImageToVideo": ([("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                                ("vae", "VAE"), ("start_image", "IMAGE")],
                               [("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                                ("latent", "LATENT"), ("cond_latent", "LATENT")],
                               ["width", "height", "length", "batch_size"]),
    "CFGGuider": ([("model", "MODEL"), ("positive", "CONDITIONING"),
                   ("negative", "CONDITIONING")], [("GUIDER", "GUIDER")], ["cfg"]),
    "VOIDSampler": ([], [("SAMPLER", "SAMPLER")], []),
    "MarkdownNote": ([], [], ["text"]),
}
TEACACHE_COLOR = ("#232", "#353")       # ComfyUI's "green" node colour
NOTE_COLOR = ("#432", "#653")           # ComfyUI's "brown"

HF_WAN21 = "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files"
HF_WAN22 = "https://huggingface.co/Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files"
HF_HY = "https://huggingface.co/Comfy-Org/HunyuanVideo_repackaged/resolve/main/split_files"
HF_FLUX_TE = "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/main"
HF_LTXV = "https://huggingface.co/Lightricks/LTX-Video/resolve/main"
HF_FLUX = "https://huggingface.co/black-forest-labs/FLUX.1-dev/resolve/main"
HF_MOCHI = "https://huggingface.co/Comfy-Org/mochi_preview_repackaged/resolve/main/split_files"
HF_QWEN = "https://huggingface.co/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files"
HF_HIDREAM = "https://huggingface.co/Comfy-Org/HiDream-I1_ComfyUI/resolve/main/split_files"
HF_COSMOS2 = "https://huggingface.co/Comfy-Org/Cosmos_Predict2_repackaged/resolve/main"
HF_COSMOS_TE = ("https://huggingface.co/comfyanonymous/cosmos_1.0_text_encoder_and_VAE_ComfyUI/"
                "resolve/main/text_encoders")
HF_ZIMAGE = "https://huggingface.co/Comfy-Org/z_image_turbo/resolve/main/split_files"
HF_HY15 = "https://huggingface.co/Comfy-Org/HunyuanVideo_1.5_repackaged/resolve/main/split_files"
HF_K5_T2V = "https://huggingface.co/kandinskylab/Kandinsky-5.0-T2V-Lite-sft-5s/resolve/main/model"
HF_VOID = "https://huggingface.co/Comfy-Org/void-model/resolve/main"

NEG_WAN = ("色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
           "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
           "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走")


def model_ref(name, url, directory):
    return {"name": name, "url": url, "directory": directory}


@dataclass
class Node:
    id: int
    type: str
    widgets: dict
    pos: tuple
    size: tuple
    title: str | None = None
    color: tuple | None = None
    models: list | None = None
    in_links: dict = field(default_factory=dict)     # input name -> link id
    out_links: dict = field(default_factory=dict)    # output slot -> [link ids]


class Graph:
    def __init__(self, name: str):
        self.name = name
        self.nodes: list[Node] = []
        self.links: list[list] = []

    def add(self, type_, pos, size=(315, 110), title=None, color=None, models=None, **widgets):
        _, _, names = NODE[type_]
        clean = [n.rstrip("!") for n in names if n != "upload"]
        if set(widgets) != set(clean):
            raise ValueError(f"{type_}: widgets {sorted(widgets)} != {sorted(clean)}")
        n = Node(len(self.nodes) + 1, type_, widgets, pos, size, title, color, models)
        self.nodes.append(n)
        return n

    def link(self, src: Node, out, dst: Node, input_name: str):
        outs = NODE[src.type][1]
        slot = out if isinstance(out, int) else [o[0] for o in outs].index(out)
        ins = dict(NODE[dst.type][0])
        if ins[input_name] != outs[slot][1]:
            raise ValueError(f"{src.type}.{outs[slot][0]} -> {dst.type}.{input_name}: type")
        lid = len(self.links) + 1
        self.links.append([lid, src.id, slot, dst.id, list(ins).index(input_name),
                           outs[slot][1]])
        dst.in_links[input_name] = lid
        src.out_links.setdefault(slot, []).append(lid)
        return lid

    def to_json(self) -> dict:
        order = self._execution_order()
        nodes = []
        for n in self.nodes:
            ins, outs, names = NODE[n.type]
            values = []
            for w in names:
                if w == "upload":
                    values.append("image")
                    continue
                values.append(n.widgets[w.rstrip("!")])
                if w.endswith("!"):
                    values.append("fixed")
            d = {"id": n.id, "type": n.type, "pos": list(n.pos), "size": list(n.size),
                 "flags": {}, "order": order[n.id], "mode": 0,
                 "inputs": [{"name": name, "type": t, "link": n.in_links.get(name)}
                            for name, t in ins],
                 "outputs": [{"name": name, "type": t, "links": n.out_links.get(i, []),
                              "slot_index": i} for i, (name, t) in enumerate(outs)],
                 "properties": {"Node name for S&R": n.type}}
            if n.type in PACK_NODES:
                d["properties"].update(cnr_id=CNR_ID, ver=VERSION)
            if not d["inputs"]:
                del d["inputs"]
            if n.models:
                d["properties"]["models"] = n.models
            if names:
                d["widgets_values"] = values
            if n.title:
                d["title"] = n.title
            if n.color:
                d["color"], d["bgcolor"] = n.color
            nodes.append(d)
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "comfyui-teacache/" + self.name)),
            "revision": 0, "last_node_id": len(self.nodes), "last_link_id": len(self.links),
            "nodes": nodes, "links": self.links, "groups": [], "config": {},
            "extra": {"ds": {"scale": 0.75, "offset": self._view_offset()}}, "version": 0.4,
        }

    def _view_offset(self):
        """Where the page opens the canvas: the top-left node just inside the window."""
        return [80 - min(n.pos[0] for n in self.nodes), 160 - min(n.pos[1] for n in self.nodes)]

    def _execution_order(self):
        deps = {n.id: set() for n in self.nodes}
        for _, src, _, dst, _, _ in self.links:
            deps[dst].add(src)
        order, done = {}, set()
        while len(done) < len(self.nodes):
            ready = sorted(i for i in deps if i not in done and deps[i] <= done)
            for i in ready:
                order[i] = len(order)
                done.add(i)
        return order


# TeaCache is drawn taller than its widgets, reaching up: after a run the page shows the run's
# summary under the widgets (the layouts give the position its widgets used to start at)
TC_STATUS_H = 84


def teacache(g, pos, title=None, **settings):
    """TeaCacheApply; no title: the page shows its display name, TeaCache (native DiT)."""
    return g.add("TeaCacheApply", (pos[0], pos[1] - TC_STATUS_H), size=(340, 206 + TC_STATUS_H),
                 title=title, color=TEACACHE_COLOR, **settings)


def tc_settings(thresh, model_type="auto", retention=False, start=0, end=-1, max_skips=0,
                cache_device="model_device", skip_estimate="reuse", target_speedup=0.0,
                profile_store=True):
    return dict(rel_l1_thresh=thresh, start_step=start, end_step=end, model_type=model_type,
                cache_device=cache_device, retention_mode=retention,
                max_consecutive_skips=max_skips, skip_estimate=skip_estimate,
                target_speedup=target_speedup, profile_store=profile_store)


def note(g, pos, text, size=(460, 560)):
    return g.add("MarkdownNote", pos, size=size, title="TeaCache settings", color=NOTE_COLOR,
                 text=text.strip() + "\n")


COMMON_NOTE = """
**Settings**
- `rel_l1_thresh`: skip a step while the accumulated (rescaled) change of the first block's
  input stays below it. 0 = never skip (output identical to no TeaCache); higher = faster and
  less faithful.
- `start_step` / `end_step`: steps before `start_step` and from `end_step` on (-1 = none) are
  always computed. The first step always is, and the last one too (except in retention mode).
- `model_type`: `auto` detects the model and picks its published coefficients, or
  `uncalibrated` where none exist. A preset for another model is an error that says what was
  detected.
- `cache_device`: `cpu` keeps the cached residual in RAM (saves VRAM, a little slower).
- `retention_mode`: Wan's official `use_ret_steps` (first 5 steps computed, `_ret`
  coefficients): better motion at the same speed.
- `max_consecutive_skips`: never skip more than this many steps in a row (0 = no cap).
- `skip_estimate`: `reuse` (published TeaCache) adds the residual of the last computed step on
  a skipped step; `extrapolate` continues the trend of the last two computed steps: same skips,
  closer to the uncached result (BENCHMARKS.md).

**Check it worked**: after each run the console prints one line, e.g.
`TeaCache: <model> | coefficients ... | thresh ... | skipped 12/30 model calls per cond ...
(est. 1.8x)`. Start ComfyUI with `--verbose DEBUG` to see every step's decision.
Same seed, TeaCache bypassed (Ctrl+B): the output without caching, to compare.
"""


def models_note(*refs):
    rows = "\n".join(f"- `{r['directory']}/` [{r['name']}]({r['url']})" for r in refs)
    return f"**Model files** (in `ComfyUI/models/`)\n{rows}\n"


# ---- the workflows ------------------------------------------------------------------------------
def wan_text(g, clip_ref, pos_text, x=20, y=420):
    clip = g.add("CLIPLoader", (x, y), size=(380, 110), models=[clip_ref],
                 clip_name=clip_ref["name"], type="wan", device="default")
    pos = g.add("CLIPTextEncode", (x + 430, y - 160), size=(420, 170),
                title="CLIP Text Encode (Positive Prompt)", text=pos_text)
    neg = g.add("CLIPTextEncode", (x + 430, y + 60), size=(420, 170),
                title="CLIP Text Encode (Negative Prompt)", text=NEG_WAN)
    g.link(clip, 0, pos, "clip")
    g.link(clip, 0, neg, "clip")
    return pos, neg


UMT5 = model_ref("umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                 f"{HF_WAN21}/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                 "text_encoders")
WAN21_VAE = model_ref("wan_2.1_vae.safetensors", f"{HF_WAN21}/vae/wan_2.1_vae.safetensors", "vae")


def wan21_t2v():
    g = Graph("wan2.1_t2v_1.3B_teacache")
    unet_ref = model_ref("wan2.1_t2v_1.3B_fp16.safetensors",
                         f"{HF_WAN21}/diffusion_models/wan2.1_t2v_1.3B_fp16.safetensors",
                         "diffusion_models")
    settings = tc_settings(0.08)
    unet = g.add("UNETLoader", (20, 60), size=(380, 90), models=[unet_ref],
                 unet_name=unet_ref["name"], weight_dtype="default")
    ms = g.add("ModelSamplingSD3", (450, 60), size=(260, 60), shift=8)
    tc = teacache(g, (760, -40), **settings)
    pos, neg = wan_text(g, UMT5, "a fox moving quickly in a beautiful winter scenery nature "
                        "trees mountains daytime tracking camera", y=420)
    lat = g.add("EmptyHunyuanLatentVideo", (450, 700), size=(315, 130), width=832,
                height=480, length=33, batch_size=1)
    ks = g.add("KSampler", (1150, 60), size=(315, 262), seed=42, steps=30, cfg=6,
               sampler_name="uni_pc", scheduler="simple", denoise=1)
    vae = g.add("VAELoader", (840, 700), size=(315, 60), models=[WAN21_VAE],
                vae_name=WAN21_VAE["name"])
    dec = g.add("VAEDecode", (1500, 60), size=(210, 50))
    save = g.add("SaveAnimatedWEBP", (1750, 60), size=(500, 520),
                 filename_prefix="teacache/wan2.1_t2v", fps=16, lossless=False, quality=90,
                 method="default")
    rep = g.add("TeaCacheReport", (1150, 420), size=(315, 50), color=TEACACHE_COLOR)
    prev = g.add("PreviewImage", (1500, 420), size=(230, 260), title="TeaCache report")
    g.link(unet, 0, ms, "model")
    g.link(ms, 0, tc, "model")
    g.link(tc, 0, ks, "model")
    g.link(pos, 0, ks, "positive")
    g.link(neg, 0, ks, "negative")
    g.link(lat, 0, ks, "latent_image")
    g.link(ks, 0, dec, "samples")
    g.link(vae, 0, dec, "vae")
    g.link(dec, 0, save, "images")
    g.link(tc, 0, rep, "model")
    g.link(ks, 0, rep, "latent")
    g.link(rep, "report", prev, "images")
    note(g, (-520, -40), """
## TeaCache on Wan 2.1 T2V 1.3B

**TeaCache** goes last in the model chain, right before the sampler (after LoRAs and
*ModelSamplingSD3*). `auto` finds the official `wan2.1_t2v_1.3B` coefficients. Recommended `rel_l1_thresh`: **0.05-0.08** (0.08 here);
with `retention_mode`: 0.05-0.10. The 14B model: 0.14-0.2.

**TeaCache Report** draws which steps were computed or skipped (connect the sampler's LATENT
and the model the sampler used). With TeaCache bypassed (Ctrl+B) to compare, it says so.
""" + COMMON_NOTE + models_note(unet_ref, UMT5, WAN21_VAE))
    return g, {tc.id: settings}


def wan21_i2v():
    g = Graph("wan2.1_i2v_480p_teacache")
    unet_ref = model_ref("wan2.1_i2v_480p_14B_fp16.safetensors",
                         f"{HF_WAN21}/diffusion_models/wan2.1_i2v_480p_14B_fp16.safetensors",
                         "diffusion_models")
    cv_ref = model_ref("clip_vision_h.safetensors",
                       f"{HF_WAN21}/clip_vision/clip_vision_h.safetensors", "clip_vision")
    settings = tc_settings(0.25, retention=True)
    unet = g.add("UNETLoader", (20, 60), size=(380, 90), models=[unet_ref],
                 unet_name=unet_ref["name"], weight_dtype="default")
    ms = g.add("ModelSamplingSD3", (450, 60), size=(260, 60), shift=8)
    tc = teacache(g, (760, -40), **settings)
    pos, neg = wan_text(g, UMT5, "a cute anime girl with massive fennec ears and a big fluffy "
                        "tail wearing a maid outfit turning around", y=420)
    vae = g.add("VAELoader", (20, 700), size=(380, 60), models=[WAN21_VAE],
                vae_name=WAN21_VAE["name"])
    cvl = g.add("CLIPVisionLoader", (20, 800), size=(380, 60), models=[cv_ref],
                clip_name=cv_ref["name"])
    img = g.add("LoadImage", (20, 900), size=(315, 320), image="example.png")
    cve = g.add("CLIPVisionEncode", (450, 800), size=(290, 80), crop="none")
    i2v = g.add("WanImageToVideo", (900, 420), size=(340, 210), width=512, height=512,
                length=33, batch_size=1)
    ks = g.add("KSampler", (1300, 60), size=(315, 262), seed=42, steps=20, cfg=6,
               sampler_name="uni_pc", scheduler="simple", denoise=1)
    dec = g.add("VAEDecode", (1650, 60), size=(210, 50))
    save = g.add("SaveAnimatedWEBP", (1900, 60), size=(500, 520),
                 filename_prefix="teacache/wan2.1_i2v", fps=16, lossless=False, quality=90,
                 method="default")
    g.link(unet, 0, ms, "model")
    g.link(ms, 0, tc, "model")
    g.link(tc, 0, ks, "model")
    g.link(pos, 0, i2v, "positive")
    g.link(neg, 0, i2v, "negative")
    g.link(vae, 0, i2v, "vae")
    g.link(cvl, 0, cve, "clip_vision")
    g.link(img, "IMAGE", cve, "image")
    g.link(cve, 0, i2v, "clip_vision_output")
    g.link(img, "IMAGE", i2v, "start_image")
    g.link(i2v, "positive", ks, "positive")
    g.link(i2v, "negative", ks, "negative")
    g.link(i2v, "latent", ks, "latent_image")
    g.link(ks, 0, dec, "samples")
    g.link(vae, 0, dec, "vae")
    g.link(dec, 0, save, "images")
    note(g, (-520, -40), """
## TeaCache on Wan 2.1 I2V 14B (480p)

`auto` picks the official I2V coefficients by resolution: `wan2.1_i2v_480p_14B` up to
480p-sized latents, `..._720p_14B` above. Here `retention_mode` is on (the `_ret`
coefficients, first 5 steps always computed) with `rel_l1_thresh` **0.25**; recommended
0.2-0.3 with retention, 0.13-0.26 (480p) / 0.18-0.3 (720p) without.
""" + COMMON_NOTE + models_note(unet_ref, UMT5, cv_ref, WAN21_VAE))
    return g, {tc.id: settings}


def wan22_a14b():
    g = Graph("wan2.2_a14b_t2v_teacache")
    hi_ref = model_ref("wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors",
                       f"{HF_WAN22}/diffusion_models/wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors",
                       "diffusion_models")
    lo_ref = model_ref("wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors",
                       f"{HF_WAN22}/diffusion_models/wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors",
                       "diffusion_models")
    vae_ref = model_ref("wan_2.1_vae.safetensors", f"{HF_WAN22}/vae/wan_2.1_vae.safetensors",
                        "vae")
    s_hi, s_lo = tc_settings(0.15), tc_settings(0.15)
    hi = g.add("UNETLoader", (20, -80), size=(420, 90), models=[hi_ref],
               unet_name=hi_ref["name"], weight_dtype="default",
               title="Load Diffusion Model (high noise)")
    lo = g.add("UNETLoader", (20, 120), size=(420, 90), models=[lo_ref],
               unet_name=lo_ref["name"], weight_dtype="default",
               title="Load Diffusion Model (low noise)")
    ms_hi = g.add("ModelSamplingSD3", (480, -80), size=(260, 60), shift=8)
    ms_lo = g.add("ModelSamplingSD3", (480, 120), size=(260, 60), shift=8)
    tc_hi = teacache(g, (780, -300 - TC_STATUS_H), title="TeaCache (native DiT), high noise",
                     **s_hi)
    tc_lo = teacache(g, (780, -40), title="TeaCache (native DiT), low noise", **s_lo)
    pos, neg = wan_text(g, UMT5, "Beautiful young European woman with honey blonde hair "
                        "gracefully turning her head back over shoulder, gentle smile, bright "
                        "eyes looking at camera. Hair flowing in slow motion as she turns. Soft "
                        "natural lighting, clean background, cinematic portrait.", y=420)
    lat = g.add("EmptyHunyuanLatentVideo", (450, 700), size=(315, 130), width=640, height=640,
                length=81, batch_size=1)
    ks_hi = g.add("KSamplerAdvanced", (1160, -300), size=(315, 334),
                  title="High noise: steps 0-10", add_noise="enable",
                  noise_seed=42, steps=20, cfg=3.5, sampler_name="euler", scheduler="simple",
                  start_at_step=0, end_at_step=10, return_with_leftover_noise="enable")
    ks_lo = g.add("KSamplerAdvanced", (1520, -300), size=(315, 334),
                  title="Low noise: steps 10-20", add_noise="disable",
                  noise_seed=0, steps=20, cfg=3.5, sampler_name="euler", scheduler="simple",
                  start_at_step=10, end_at_step=10000, return_with_leftover_noise="disable")
    vae = g.add("VAELoader", (840, 700), size=(315, 60), models=[vae_ref],
                vae_name=vae_ref["name"])
    dec = g.add("VAEDecode", (1880, -300), size=(210, 50))
    save = g.add("SaveAnimatedWEBP", (1880, -180), size=(500, 560),
                 filename_prefix="teacache/wan2.2_a14b_t2v", fps=16, lossless=False,
                 quality=90, method="default")
    g.link(hi, 0, ms_hi, "model")
    g.link(lo, 0, ms_lo, "model")
    g.link(ms_hi, 0, tc_hi, "model")
    g.link(ms_lo, 0, tc_lo, "model")
    g.link(tc_hi, 0, ks_hi, "model")
    g.link(tc_lo, 0, ks_lo, "model")
    for ks in (ks_hi, ks_lo):
        g.link(pos, 0, ks, "positive")
        g.link(neg, 0, ks, "negative")
    g.link(lat, 0, ks_hi, "latent_image")
    g.link(ks_hi, 0, ks_lo, "latent_image")
    g.link(ks_lo, 0, dec, "samples")
    g.link(vae, 0, dec, "vae")
    g.link(dec, 0, save, "images")
    note(g, (-520, -300), """
## TeaCache on Wan 2.2 A14B T2V (two models)

Wan 2.2 A14B samples the first steps with the **high noise** model and the rest with the
**low noise** model: one **TeaCache** per model, each before its own sampler. Each sampler
counts its steps from 0, so each TeaCache computes its sampler's first and last step.
Both models have Wan 2.1 14B's architecture: `auto` picks `wan2.1_t2v_14B`
(recommended `rel_l1_thresh` **0.14-0.2**; 0.15 here). Lower the high-noise threshold if
motion suffers.
""" + COMMON_NOTE + models_note(hi_ref, lo_ref, UMT5, vae_ref), size=(460, 600))
    return g, {tc_hi.id: s_hi, tc_lo.id: s_lo}


def wan22_ti2v():
    g = Graph("wan2.2_ti2v_5B_teacache")
    unet_ref = model_ref("wan2.2_ti2v_5B_fp16.safetensors",
                         f"{HF_WAN22}/diffusion_models/wan2.2_ti2v_5B_fp16.safetensors",
                         "diffusion_models")
    vae_ref = model_ref("wan2.2_vae.safetensors", f"{HF_WAN22}/vae/wan2.2_vae.safetensors", "vae")
    settings = tc_settings(0.1)
    unet = g.add("UNETLoader", (20, 60), size=(380, 90), models=[unet_ref],
                 unet_name=unet_ref["name"], weight_dtype="default")
    ms = g.add("ModelSamplingSD3", (450, 60), size=(260, 60), shift=8)
    tc = teacache(g, (760, -40), **settings)
    pos, neg = wan_text(g, UMT5, "Low contrast. In a retro 1970s-style subway station, a street "
                        "musician plays in dim colors and rough textures. He wears an old "
                        "jacket, playing guitar with focus. Commuters hurry by, and a small "
                        "crowd gathers to listen. The camera slowly moves right, capturing the "
                        "blend of music and city noise, with old subway signs and mottled walls "
                        "in the background.", y=420)
    vae = g.add("VAELoader", (20, 700), size=(380, 60), models=[vae_ref], vae_name=vae_ref["name"])
    img = g.add("LoadImage", (20, 800), size=(315, 320), image="example.png")
    lat = g.add("Wan22ImageToVideoLatent", (450, 700), size=(315, 170), width=1280, height=704,
                length=121, batch_size=1)
    ks = g.add("KSampler", (1150, 60), size=(315, 262), seed=42, steps=20, cfg=5,
               sampler_name="uni_pc", scheduler="simple", denoise=1)
    dec = g.add("VAEDecode", (1500, 60), size=(210, 50))
    save = g.add("SaveAnimatedWEBP", (1750, 60), size=(500, 520),
                 filename_prefix="teacache/wan2.2_ti2v_5B", fps=24, lossless=False, quality=90,
                 method="default")
    g.link(unet, 0, ms, "model")
    g.link(ms, 0, tc, "model")
    g.link(tc, 0, ks, "model")
    g.link(pos, 0, ks, "positive")
    g.link(neg, 0, ks, "negative")
    g.link(vae, 0, lat, "vae")
    g.link(img, "IMAGE", lat, "start_image")
    g.link(lat, 0, ks, "latent_image")
    g.link(ks, 0, dec, "samples")
    g.link(vae, 0, dec, "vae")
    g.link(dec, 0, save, "images")
    note(g, (-520, -40), """
## TeaCache on Wan 2.2 TI2V 5B

No coefficients are published for this model: `auto` uses `uncalibrated` (the raw relative
change of the first block's input; the paper shows it is nearly as good). Start with
`rel_l1_thresh` **0.05-0.15** (0.1 here) and compare against a run with TeaCache bypassed.
Image-to-video frames carry their own timesteps (the start frame is kept): TeaCache handles
that. For text-to-video, delete the link from *Load Image* to `start_image`.

Your own coefficients: **TeaCache Calibrate** records a few runs, then pick
`calib:<name>` as `model_type`.
""" + COMMON_NOTE + models_note(unet_ref, UMT5, vae_ref))
    return g, {tc.id: settings}


def hunyuan_video():
    g = Graph("hunyuan_video_t2v_teacache")
    unet_ref = model_ref("hunyuan_video_t2v_720p_bf16.safetensors",
                         f"{HF_HY}/diffusion_models/hunyuan_video_t2v_720p_bf16.safetensors",
                         "diffusion_models")
    clip_l = model_ref("clip_l.safetensors", f"{HF_FLUX_TE}/clip_l.safetensors", "text_encoders")
    llava = model_ref("llava_llama3_fp8_scaled.safetensors",
                      f"{HF_HY}/text_encoders/llava_llama3_fp8_scaled.safetensors",
                      "text_encoders")
    vae_ref = model_ref("hunyuan_video_vae_bf16.safetensors",
                        f"{HF_HY}/vae/hunyuan_video_vae_bf16.safetensors", "vae")
    settings = tc_settings(0.15)
    unet = g.add("UNETLoader", (20, 60), size=(380, 90), models=[unet_ref],
                 unet_name=unet_ref["name"], weight_dtype="default")
    ms = g.add("ModelSamplingSD3", (450, 60), size=(260, 60), shift=7)
    tc = teacache(g, (760, -40), **settings)
    clip = g.add("DualCLIPLoader", (20, 420), size=(380, 130), models=[clip_l, llava],
                 clip_name1=clip_l["name"], clip_name2=llava["name"], type="hunyuan_video",
                 device="default")
    pos = g.add("CLIPTextEncode", (450, 300), size=(420, 170),
                title="CLIP Text Encode (Positive Prompt)",
                text="anime style anime girl with massive fennec ears and one big fluffy tail, "
                     "she has blonde hair long hair blue eyes wearing a pink sweater and a long "
                     "blue skirt walking in a beautiful outdoor scenery with snow mountains in "
                     "the background")
    fg = g.add("FluxGuidance", (900, 300), size=(315, 60), guidance=6)
    guider = g.add("BasicGuider", (1250, 200), size=(220, 50))
    sched = g.add("BasicScheduler", (1250, 300), size=(315, 110), scheduler="simple", steps=20,
                  denoise=1)
    sampler = g.add("KSamplerSelect", (1250, 450), size=(315, 60), sampler_name="euler")
    noise = g.add("RandomNoise", (1250, 550), size=(315, 82), noise_seed=42)
    lat = g.add("EmptyHunyuanLatentVideo", (900, 650), size=(315, 130), width=848, height=480,
                length=73, batch_size=1)
    sca = g.add("SamplerCustomAdvanced", (1600, 60), size=(270, 330))
    vae = g.add("VAELoader", (1250, 700), size=(380, 60), models=[vae_ref],
                vae_name=vae_ref["name"])
    dec = g.add("VAEDecodeTiled", (1900, 60), size=(315, 150), tile_size=256, overlap=64,
                temporal_size=64, temporal_overlap=8)
    save = g.add("SaveAnimatedWEBP", (2250, 60), size=(500, 420),
                 filename_prefix="teacache/hunyuan_video", fps=24, lossless=False, quality=90,
                 method="default")
    g.link(unet, 0, ms, "model")
    g.link(ms, 0, tc, "model")
    g.link(tc, 0, guider, "model")
    g.link(tc, 0, sched, "model")
    g.link(clip, 0, pos, "clip")
    g.link(pos, 0, fg, "conditioning")
    g.link(fg, 0, guider, "conditioning")
    g.link(noise, 0, sca, "noise")
    g.link(guider, 0, sca, "guider")
    g.link(sampler, 0, sca, "sampler")
    g.link(sched, 0, sca, "sigmas")
    g.link(lat, 0, sca, "latent_image")
    g.link(sca, "output", dec, "samples")
    g.link(vae, 0, dec, "vae")
    g.link(dec, 0, save, "images")
    note(g, (-520, -40), """
## TeaCache on HunyuanVideo (T2V 720p)

`auto` picks the official `hunyuan_video` coefficients for HunyuanVideo 1.0 T2V
(`uncalibrated` for the I2V and 1.5 models). Recommended `rel_l1_thresh`: **0.1-0.15**
(0.15 here). HunyuanVideo uses embedded guidance (one model call per step, no CFG).
""" + COMMON_NOTE + models_note(unet_ref, clip_l, llava, vae_ref))
    return g, {tc.id: settings}


def ltx_video():
    g = Graph("ltx_video_t2v_teacache")
    ckpt_ref = model_ref("ltx-video-2b-v0.9.1.safetensors",
                         f"{HF_LTXV}/ltx-video-2b-v0.9.1.safetensors", "checkpoints")
    t5 = model_ref("t5xxl_fp16.safetensors", f"{HF_FLUX_TE}/t5xxl_fp16.safetensors",
                   "text_encoders")
    settings = tc_settings(0.05)
    ckpt = g.add("CheckpointLoaderSimple", (20, 60), size=(380, 100), models=[ckpt_ref],
                 ckpt_name=ckpt_ref["name"])
    tc = teacache(g, (450, -40), **settings)
    clip = g.add("CLIPLoader", (20, 420), size=(380, 110), models=[t5], clip_name=t5["name"],
                 type="ltxv", device="default")
    pos = g.add("CLIPTextEncode", (450, 260), size=(420, 190),
                title="CLIP Text Encode (Positive Prompt)",
                text="A woman with long brown hair and light skin smiles at another woman with "
                     "long blonde hair. The woman with brown hair wears a black jacket and has "
                     "a small, barely noticeable mole on her right cheek. The camera angle is a "
                     "close-up, focused on the woman with brown hair's face. The lighting is "
                     "warm and natural, likely from the setting sun, casting a soft glow on the "
                     "scene. The scene appears to be real-life footage.")
    neg = g.add("CLIPTextEncode", (450, 500), size=(420, 150),
                title="CLIP Text Encode (Negative Prompt)",
                text="low quality, worst quality, deformed, distorted, disfigured, motion "
                     "smear, motion artifacts, fused fingers, bad anatomy, weird hand, ugly")
    cond = g.add("LTXVConditioning", (900, 300), size=(250, 80), frame_rate=25)
    lat = g.add("EmptyLTXVLatentVideo", (450, 700), size=(315, 130), width=768, height=512,
                length=97, batch_size=1)
    sched = g.add("LTXVScheduler", (900, 500), size=(315, 160), steps=30, max_shift=2.05,
                  base_shift=0.95, stretch=True, terminal=0.1)
    sampler = g.add("KSamplerSelect", (900, 700), size=(315, 60), sampler_name="euler")
    sc = g.add("SamplerCustom", (1250, 60), size=(315, 440), add_noise=True, noise_seed=42,
               cfg=3)
    dec = g.add("VAEDecode", (1600, 60), size=(210, 50))
    save = g.add("SaveAnimatedWEBP", (1850, 60), size=(500, 420),
                 filename_prefix="teacache/ltx_video", fps=24, lossless=False, quality=90,
                 method="default")
    g.link(ckpt, "MODEL", tc, "model")
    g.link(tc, 0, sc, "model")
    g.link(clip, 0, pos, "clip")
    g.link(clip, 0, neg, "clip")
    g.link(pos, 0, cond, "positive")
    g.link(neg, 0, cond, "negative")
    g.link(cond, "positive", sc, "positive")
    g.link(cond, "negative", sc, "negative")
    g.link(sampler, 0, sc, "sampler")
    g.link(lat, 0, sched, "latent")
    g.link(sched, 0, sc, "sigmas")
    g.link(lat, 0, sc, "latent_image")
    g.link(sc, "output", dec, "samples")
    g.link(ckpt, "VAE", dec, "vae")
    g.link(dec, 0, save, "images")
    note(g, (-520, -40), """
## TeaCache on LTX-Video 2B

`auto` picks the official `ltxv` coefficients (fitted on LTX-Video 0.9.1; the later 2B 0.9.x
checkpoints share its architecture). Recommended `rel_l1_thresh`: **0.03-0.05** (0.05 here).
Use long, descriptive prompts with this model.
""" + COMMON_NOTE + models_note(ckpt_ref, t5))
    return g, {tc.id: settings}


def ksampler_chain(g, loader, sampling, tc_settings_, pos, neg, latent, vae, save, ks_kw,
                   tc_pos=(760, -40), ks_pos=(1150, 60)):
    """loader -> (model sampling) -> TeaCache -> KSampler -> VAE Decode -> save."""
    tc = teacache(g, tc_pos, **tc_settings_)
    ks = g.add("KSampler", ks_pos, size=(315, 262), **ks_kw)
    if sampling is not None:
        g.link(loader, 0, sampling, "model")
        g.link(sampling, 0, tc, "model")
    else:
        g.link(loader, 0, tc, "model")
    g.link(tc, 0, ks, "model")
    g.link(pos, 0, ks, "positive")
    g.link(neg, 0, ks, "negative")
    g.link(latent, 0, ks, "latent_image")
    dec = g.add("VAEDecode", (ks_pos[0] + 350, ks_pos[1]), size=(210, 50))
    g.link(ks, 0, dec, "samples")
    g.link(vae, 0, dec, "vae")
    g.link(dec, 0, save, "images")
    return tc


def flux_dev():
    g = Graph("flux1_dev_teacache")
    unet_ref = model_ref("flux1-dev.safetensors", f"{HF_FLUX}/flux1-dev.safetensors",
                         "diffusion_models")
    clip_l = model_ref("clip_l.safetensors", f"{HF_FLUX_TE}/clip_l.safetensors", "text_encoders")
    t5 = model_ref("t5xxl_fp16.safetensors", f"{HF_FLUX_TE}/t5xxl_fp16.safetensors",
                   "text_encoders")
    vae_ref = model_ref("ae.safetensors", f"{HF_FLUX}/ae.safetensors", "vae")
    settings = tc_settings(0.4)
    unet = g.add("UNETLoader", (20, 60), size=(380, 90), models=[unet_ref],
                 unet_name=unet_ref["name"], weight_dtype="default")
    clip = g.add("DualCLIPLoader", (20, 420), size=(380, 130), models=[clip_l, t5],
                 clip_name1=clip_l["name"], clip_name2=t5["name"], type="flux",
                 device="default")
    pos = g.add("CLIPTextEncode", (450, 300), size=(420, 170),
                title="CLIP Text Encode (Positive Prompt)",
                text="cute anime girl with massive fluffy fennec ears and a big fluffy tail "
                     "blonde messy long hair blue eyes wearing a maid outfit with a long black "
                     "gold leaf pattern dress and a white apron, in a beautiful forest at dawn")
    fg = g.add("FluxGuidance", (900, 300), size=(315, 60), guidance=3.5)
    neg = g.add("ConditioningZeroOut", (900, 420), size=(240, 30),
                title="Negative (unused at cfg 1)")
    lat = g.add("EmptySD3LatentImage", (450, 560), size=(315, 110), width=1024, height=1024,
                batch_size=1)
    vae = g.add("VAELoader", (20, 620), size=(380, 60), models=[vae_ref],
                vae_name=vae_ref["name"])
    save = g.add("SaveImage", (1850, 60), size=(500, 540), filename_prefix="teacache/flux1_dev")
    g.link(clip, 0, pos, "clip")
    g.link(pos, 0, fg, "conditioning")
    g.link(pos, 0, neg, "conditioning")
    tc = ksampler_chain(g, unet, None, settings, fg, neg, lat, vae, save,
                        dict(seed=42, steps=20, cfg=1, sampler_name="euler", scheduler="simple",
                             denoise=1), tc_pos=(450, -40), ks_pos=(1250, 60))
    note(g, (-520, -40), """
## TeaCache on FLUX.1 [dev]

`auto` picks the official `flux` coefficients. Recommended `rel_l1_thresh`: **0.25-0.6**
(0.4 here; the official TeaCache4FLUX reports about 1.5x at 0.25 and 2x at 0.6).
FLUX.1 [dev] runs one model call per step (guidance is embedded, cfg 1).
""" + COMMON_NOTE + models_note(unet_ref, clip_l, t5, vae_ref))
    return g, {tc.id: settings}


def mochi():
    g = Graph("mochi_t2v_teacache")
    unet_ref = model_ref("mochi_preview_bf16.safetensors",
                         f"{HF_MOCHI}/diffusion_models/mochi_preview_bf16.safetensors",
                         "diffusion_models")
    t5 = model_ref("t5xxl_fp16.safetensors", f"{HF_FLUX_TE}/t5xxl_fp16.safetensors",
                   "text_encoders")
    vae_ref = model_ref("mochi_vae.safetensors", f"{HF_MOCHI}/vae/mochi_vae.safetensors", "vae")
    settings = tc_settings(0.09)
    unet = g.add("UNETLoader", (20, 60), size=(380, 90), models=[unet_ref],
                 unet_name=unet_ref["name"], weight_dtype="default")
    clip = g.add("CLIPLoader", (20, 420), size=(380, 110), models=[t5], clip_name=t5["name"],
                 type="mochi", device="default")
    pos = g.add("CLIPTextEncode", (450, 260), size=(420, 170),
                title="CLIP Text Encode (Positive Prompt)",
                text="a fox moving quickly in a beautiful winter scenery nature trees sunset "
                     "tracking camera")
    neg = g.add("CLIPTextEncode", (450, 480), size=(420, 120),
                title="CLIP Text Encode (Negative Prompt)", text="")
    lat = g.add("EmptyMochiLatentVideo", (450, 660), size=(315, 130), width=848, height=480,
                length=37, batch_size=1)
    vae = g.add("VAELoader", (20, 620), size=(380, 60), models=[vae_ref],
                vae_name=vae_ref["name"])
    save = g.add("SaveAnimatedWEBP", (1850, 60), size=(500, 420),
                 filename_prefix="teacache/mochi", fps=24, lossless=False, quality=90,
                 method="default")
    g.link(clip, 0, pos, "clip")
    g.link(clip, 0, neg, "clip")
    tc = ksampler_chain(g, unet, None, settings, pos, neg, lat, vae, save,
                        dict(seed=42, steps=30, cfg=4.5, sampler_name="euler",
                             scheduler="simple", denoise=1), tc_pos=(450, -40))
    note(g, (-520, -40), """
## TeaCache on Mochi 1 preview

`auto` picks the official `mochi` coefficients. Recommended `rel_l1_thresh`:
**0.06-0.09** (0.09 here).
""" + COMMON_NOTE + models_note(unet_ref, t5, vae_ref))
    return g, {tc.id: settings}


def qwen_image():
    g = Graph("qwen_image_teacache")
    unet_ref = model_ref("qwen_image_fp8_e4m3fn.safetensors",
                         f"{HF_QWEN}/diffusion_models/qwen_image_fp8_e4m3fn.safetensors",
                         "diffusion_models")
    te = model_ref("qwen_2.5_vl_7b_fp8_scaled.safetensors",
                   f"{HF_QWEN}/text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors",
                   "text_encoders")
    vae_ref = model_ref("qwen_image_vae.safetensors", f"{HF_QWEN}/vae/qwen_image_vae.safetensors",
                        "vae")
    settings = tc_settings(0.1)
    unet = g.add("UNETLoader", (20, 60), size=(380, 90), models=[unet_ref],
                 unet_name=unet_ref["name"], weight_dtype="default")
    ms = g.add("ModelSamplingAuraFlow", (450, 60), size=(260, 60), shift=3.1)
    clip = g.add("CLIPLoader", (20, 420), size=(380, 110), models=[te], clip_name=te["name"],
                 type="qwen_image", device="default")
    pos = g.add("CLIPTextEncode", (450, 260), size=(420, 170),
                title="CLIP Text Encode (Positive Prompt)",
                text="A vibrant, warm neon-lit street scene in Hong Kong at the afternoon, with "
                     "a mix of colorful Chinese and English signs glowing brightly.")
    neg = g.add("CLIPTextEncode", (450, 480), size=(420, 120),
                title="CLIP Text Encode (Negative Prompt)", text="")
    lat = g.add("EmptySD3LatentImage", (450, 660), size=(315, 110), width=1328, height=1328,
                batch_size=1)
    vae = g.add("VAELoader", (20, 620), size=(380, 60), models=[vae_ref],
                vae_name=vae_ref["name"])
    save = g.add("SaveImage", (1850, 60), size=(500, 540), filename_prefix="teacache/qwen_image")
    g.link(clip, 0, pos, "clip")
    g.link(clip, 0, neg, "clip")
    tc = ksampler_chain(g, unet, ms, settings, pos, neg, lat, vae, save,
                        dict(seed=42, steps=20, cfg=2.5, sampler_name="euler",
                             scheduler="simple", denoise=1))
    note(g, (-520, -40), """
## TeaCache on Qwen-Image

No coefficients are published for Qwen-Image: `auto` uses `uncalibrated`. Start with
`rel_l1_thresh` **0.05-0.15** (0.1 here) and compare with TeaCache bypassed, or make your own
coefficients with **TeaCache Calibrate** and pick `calib:<name>`.
""" + COMMON_NOTE + models_note(unet_ref, te, vae_ref))
    return g, {tc.id: settings}


def hidream():
    g = Graph("hidream_i1_full_teacache")
    unet_ref = model_ref("hidream_i1_full_fp8.safetensors",
                         f"{HF_HIDREAM}/diffusion_models/hidream_i1_full_fp8.safetensors",
                         "diffusion_models")
    tes = [model_ref(n, f"{HF_HIDREAM}/text_encoders/{n}", "text_encoders") for n in (
        "clip_l_hidream.safetensors", "clip_g_hidream.safetensors",
        "t5xxl_fp8_e4m3fn_scaled.safetensors", "llama_3.1_8b_instruct_fp8_scaled.safetensors")]
    vae_ref = model_ref("ae.safetensors", f"{HF_HIDREAM}/vae/ae.safetensors", "vae")
    settings = tc_settings(0.25)
    unet = g.add("UNETLoader", (20, 60), size=(380, 90), models=[unet_ref],
                 unet_name=unet_ref["name"], weight_dtype="default")
    ms = g.add("ModelSamplingSD3", (450, 60), size=(260, 60), shift=3)
    clip = g.add("QuadrupleCLIPLoader", (20, 420), size=(380, 160), models=tes,
                 **{f"clip_name{i + 1}": t["name"] for i, t in enumerate(tes)})
    pos = g.add("CLIPTextEncode", (450, 260), size=(420, 170),
                title="CLIP Text Encode (Positive Prompt)",
                text="A lo-fi, grungy wide shot of a ragged large red tree leaning slightly to "
                     "one side, Polaroid aesthetic, alone in a desolate landscape")
    neg = g.add("CLIPTextEncode", (450, 480), size=(420, 120),
                title="CLIP Text Encode (Negative Prompt)", text="bad ugly jpeg artifacts")
    lat = g.add("EmptySD3LatentImage", (450, 660), size=(315, 110), width=1024, height=1024,
                batch_size=1)
    vae = g.add("VAELoader", (20, 660), size=(380, 60), models=[vae_ref],
                vae_name=vae_ref["name"])
    save = g.add("SaveImage", (1850, 60), size=(500, 540),
                 filename_prefix="teacache/hidream_i1_full")
    g.link(clip, 0, pos, "clip")
    g.link(clip, 0, neg, "clip")
    tc = ksampler_chain(g, unet, ms, settings, pos, neg, lat, vae, save,
                        dict(seed=42, steps=50, cfg=5, sampler_name="uni_pc",
                             scheduler="simple", denoise=1))
    note(g, (-520, -40), """
## TeaCache on HiDream-I1 Full

`auto` picks the official `hidream_i1_full` coefficients (on the timestep embedding).
Recommended `rel_l1_thresh`: **0.17-0.3** (0.25 here). HiDream-I1 Dev / Fast have their own
presets (`hidream_i1_dev`, `hidream_i1_fast`).
""" + COMMON_NOTE + models_note(unet_ref, *tes, vae_ref))
    return g, {tc.id: settings}


def cosmos_predict2_t2i():
    """ComfyUI's official Cosmos Predict2 2B text-to-image graph (Comfy-Org workflow template
    image_cosmos_predict2_2B_t2i: UNETLoader, CLIPLoader type cosmos with oldt5_xxl, Wan 2.1
    VAE, EmptySD3LatentImage 1024x1024, KSampler euler/karras 35 steps cfg 4), TeaCache added."""
    g = Graph("cosmos_predict2_2B_t2i_teacache")
    unet_ref = model_ref("cosmos_predict2_2B_t2i.safetensors",
                         f"{HF_COSMOS2}/cosmos_predict2_2B_t2i.safetensors", "diffusion_models")
    t5 = model_ref("oldt5_xxl_fp8_e4m3fn_scaled.safetensors",
                   f"{HF_COSMOS_TE}/oldt5_xxl_fp8_e4m3fn_scaled.safetensors", "text_encoders")
    settings = tc_settings(0.1)
    unet = g.add("UNETLoader", (20, 60), size=(380, 90), models=[unet_ref],
                 unet_name=unet_ref["name"], weight_dtype="default")
    clip = g.add("CLIPLoader", (20, 420), size=(380, 110), models=[t5], clip_name=t5["name"],
                 type="cosmos", device="default")
    pos = g.add("CLIPTextEncode", (450, 260), size=(420, 170),
                title="CLIP Text Encode (Positive Prompt)",
                text="On a rainy night, a girl holds an umbrella and looks at the camera. The "
                     "rain keeps falling.")
    neg = g.add("CLIPTextEncode", (450, 480), size=(420, 120),
                title="CLIP Text Encode (Negative Prompt)", text="")
    lat = g.add("EmptySD3LatentImage", (450, 660), size=(315, 110), width=1024, height=1024,
                batch_size=1)
    vae = g.add("VAELoader", (20, 620), size=(380, 60), models=[WAN21_VAE],
                vae_name=WAN21_VAE["name"])
    save = g.add("SaveImage", (1850, 60), size=(500, 540),
                 filename_prefix="teacache/cosmos_predict2")
    g.link(clip, 0, pos, "clip")
    g.link(clip, 0, neg, "clip")
    tc = ksampler_chain(g, unet, None, settings, pos, neg, lat, vae, save,
                        dict(seed=42, steps=35, cfg=4, sampler_name="euler",
                             scheduler="karras", denoise=1), tc_pos=(450, -40))
    note(g, (-520, -40), """
## TeaCache on Cosmos Predict2 2B (text to image)

No coefficients are published for Cosmos Predict2: `auto` uses `uncalibrated`. Start with
`rel_l1_thresh` **0.05-0.15** (0.1 here) and compare with TeaCache bypassed, or make your own
coefficients with **TeaCache Calibrate** and pick `calib:<name>`. The 14B model
(`cosmos_predict2_14B_t2i.safetensors`) takes the same settings.
""" + COMMON_NOTE + models_note(unet_ref, t5, WAN21_VAE))
    return g, {tc.id: settings}


def z_image_turbo():
    """ComfyUI's official Z-Image-Turbo text-to-image graph (Comfy-Org workflow template
    image_z_image_turbo, unpacked from its subgraph: UNETLoader, ModelSamplingAuraFlow shift 3,
    CLIPLoader type lumina2 with qwen_3_4b, ConditioningZeroOut as the negative, Flux VAE,
    EmptySD3LatentImage 1024x1024, KSampler res_multistep/simple 8 steps cfg 1), TeaCache
    added."""
    g = Graph("z_image_turbo_teacache")
    unet_ref = model_ref("z_image_turbo_bf16.safetensors",
                         f"{HF_ZIMAGE}/diffusion_models/z_image_turbo_bf16.safetensors",
                         "diffusion_models")
    te = model_ref("qwen_3_4b.safetensors", f"{HF_ZIMAGE}/text_encoders/qwen_3_4b.safetensors",
                   "text_encoders")
    vae_ref = model_ref("ae.safetensors", f"{HF_ZIMAGE}/vae/ae.safetensors", "vae")
    settings = tc_settings(0.05)
    unet = g.add("UNETLoader", (20, 60), size=(380, 90), models=[unet_ref],
                 unet_name=unet_ref["name"], weight_dtype="default")
    ms = g.add("ModelSamplingAuraFlow", (450, 60), size=(260, 60), shift=3)
    clip = g.add("CLIPLoader", (20, 420), size=(380, 110), models=[te], clip_name=te["name"],
                 type="lumina2", device="default")
    pos = g.add("CLIPTextEncode", (450, 300), size=(420, 170),
                title="CLIP Text Encode (Positive Prompt)",
                text="Latina female with thick wavy hair, harbor boats and pastel houses behind. "
                     "Breezy seaside light, warm tones, cinematic close-up.")
    neg = g.add("ConditioningZeroOut", (900, 420), size=(240, 30),
                title="Negative (unused at cfg 1)")
    lat = g.add("EmptySD3LatentImage", (450, 560), size=(315, 110), width=1024, height=1024,
                batch_size=1)
    vae = g.add("VAELoader", (20, 620), size=(380, 60), models=[vae_ref],
                vae_name=vae_ref["name"])
    save = g.add("SaveImage", (1850, 60), size=(500, 540), filename_prefix="teacache/z_image")
    g.link(clip, 0, pos, "clip")
    g.link(pos, 0, neg, "conditioning")
    tc = ksampler_chain(g, unet, ms, settings, pos, neg, lat, vae, save,
                        dict(seed=42, steps=8, cfg=1, sampler_name="res_multistep",
                             scheduler="simple", denoise=1))
    note(g, (-520, -40), """
## TeaCache on Z-Image-Turbo

No coefficients are published for Z-Image: `auto` uses `uncalibrated`. Recommended
`rel_l1_thresh`: **0.05-0.15**; Turbo samples only 8 steps, each skip is an eighth of the
trajectory, so start at the low end (0.05 here) and compare with TeaCache bypassed. With the
non-distilled Z-Image (more steps) higher values pay off more. Lumina Image 2.0 (the same
architecture) has published coefficients: `auto` picks `lumina2` (try 0.38).
""" + COMMON_NOTE + models_note(unet_ref, te, vae_ref))
    return g, {tc.id: settings}


def kandinsky5_t2v():
    """ComfyUI's official Kandinsky 5 Video Lite text-to-video graph (Comfy-Org workflow
    template video_kandinsky5_t2v, unpacked from its subgraph: UNETLoader with
    kandinsky5lite_t2v_sft_5s, ModelSamplingSD3 shift 5, DualCLIPLoader type kandinsky5 with
    qwen_2.5_vl_7b and clip_l, HunyuanVideo VAE, Kandinsky5ImageToVideo 768x512x121 without a
    start image, KSampler euler_ancestral/beta 50 steps cfg 5), TeaCache added; saved as an
    animated WEBP (the template's CreateVideo + SaveVideo write an mp4)."""
    g = Graph("kandinsky5_lite_t2v_teacache")
    unet_ref = model_ref("kandinsky5lite_t2v_sft_5s.safetensors",
                         f"{HF_K5_T2V}/kandinsky5lite_t2v_sft_5s.safetensors", "diffusion_models")
    qwen = model_ref("qwen_2.5_vl_7b_fp8_scaled.safetensors",
                     f"{HF_HY15}/text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors",
                     "text_encoders")
    clip_l = model_ref("clip_l.safetensors", f"{HF_FLUX_TE}/clip_l.safetensors", "text_encoders")
    vae_ref = model_ref("hunyuan_video_vae_bf16.safetensors",
                        f"{HF_HY}/vae/hunyuan_video_vae_bf16.safetensors", "vae")
    settings = tc_settings(0.1, target_speedup=2.0)
    unet = g.add("UNETLoader", (20, 60), size=(380, 90), models=[unet_ref],
                 unet_name=unet_ref["name"], weight_dtype="default")
    ms = g.add("ModelSamplingSD3", (450, 60), size=(260, 60), shift=5)
    tc = teacache(g, (760, -40), **settings)
    clip = g.add("DualCLIPLoader", (20, 420), size=(380, 130), models=[qwen, clip_l],
                 clip_name1=qwen["name"], clip_name2=clip_l["name"], type="kandinsky5",
                 device="default")
    pos = g.add("CLIPTextEncode", (450, 260), size=(420, 170),
                title="CLIP Text Encode (Positive Prompt)",
                text="Rim light, soft light, medium close-up, dusk, warm tones. A woman with "
                     "fluffy brown curly hair stands in front of a magnificent stained glass "
                     "window in a flowing white dress, the colourful light of the setting sun "
                     "on her face; she talks to someone off-camera.")
    neg = g.add("CLIPTextEncode", (450, 480), size=(420, 120),
                title="CLIP Text Encode (Negative Prompt)", text="")
    vae = g.add("VAELoader", (20, 620), size=(380, 60), models=[vae_ref],
                vae_name=vae_ref["name"])
    i2v = g.add("Kandinsky5ImageToVideo", (900, 420), size=(340, 230), width=768, height=512,
                length=121, batch_size=1)
    ks = g.add("KSampler", (1300, 60), size=(315, 262), seed=42, steps=50, cfg=5,
               sampler_name="euler_ancestral", scheduler="beta", denoise=1)
    dec = g.add("VAEDecode", (1650, 60), size=(210, 50))
    save = g.add("SaveAnimatedWEBP", (1900, 60), size=(500, 420),
                 filename_prefix="teacache/kandinsky5_t2v", fps=24, lossless=False, quality=90,
                 method="default")
    g.link(unet, 0, ms, "model")
    g.link(ms, 0, tc, "model")
    g.link(tc, 0, ks, "model")
    g.link(clip, 0, pos, "clip")
    g.link(clip, 0, neg, "clip")
    g.link(pos, 0, i2v, "positive")
    g.link(neg, 0, i2v, "negative")
    g.link(vae, 0, i2v, "vae")
    g.link(i2v, "positive", ks, "positive")
    g.link(i2v, "negative", ks, "negative")
    g.link(i2v, "latent", ks, "latent_image")
    g.link(ks, 0, dec, "samples")
    g.link(vae, 0, dec, "vae")
    g.link(dec, 0, save, "images")
    note(g, (-520, -40), """
## TeaCache on Kandinsky 5 Video Lite (text to video)

Newest ComfyUI only. No coefficients are published for Kandinsky 5: `auto` uses
`uncalibrated`. Instead of guessing a threshold, **`target_speedup` 2** asks for half of the
model calls per cond, skipped where the input changes least; `rel_l1_thresh` is then ignored.
The console line gives the realised speed-up and the **equivalent threshold**: put it in
`rel_l1_thresh` and set `target_speedup` to 0 to keep a fixed threshold for this model and
schedule. Try 1.5-3; compare with TeaCache bypassed. The image-to-video model
(`kandinsky5lite_i2v_5s`), Video Pro and Image Lite take the same settings.
""" + COMMON_NOTE + models_note(unet_ref, qwen, clip_l, vae_ref), size=(460, 620))
    return g, {tc.id: settings}


COGVIDEOX_5B = "cogvideox_5b_t2v_bf16.safetensors"


def cogvideox_5b_t2v():
    """CogVideoX-5B text to video with ComfyUI's own nodes. ComfyUI has no CogVideoX
    text-to-video template; its one CogVideoX graph (Comfy-Org template
    utility_void_video_inpainting) loads the model with UNETLoader, the text encoder with
    CLIPLoader type cogvideox (t5xxl_fp16), the VAE cogvideox_vae, and samples with RandomNoise,
    CFGGuider cfg 6, BasicScheduler simple, VOIDSampler (ComfyUI's DDIM for this v-prediction
    DDPM model; KSampler's noise scaling does not match its training, see comfy_extras/
    nodes_void.py) and SamplerCustomAdvanced. This graph is that chain minus the VOID
    inpainting conditioning, at CogVideoX-5B's own settings (720x480, 49 frames at 8 fps,
    50 steps, cfg 6), TeaCache added. The diffusion model has no `models` entry: no
    ComfyUI-format CogVideoX-5B is published (see the note)."""
    g = Graph("cogvideox_5b_t2v_teacache")
    t5 = model_ref("t5xxl_fp16.safetensors", f"{HF_FLUX_TE}/t5xxl_fp16.safetensors",
                   "text_encoders")
    vae_ref = model_ref("cogvideox_vae.safetensors", f"{HF_VOID}/vae/cogvideox_vae.safetensors",
                        "vae")
    settings = tc_settings(0.2)
    unet = g.add("UNETLoader", (20, 60), size=(380, 90), unet_name=COGVIDEOX_5B,
                 weight_dtype="default")
    tc = teacache(g, (450, -40), **settings)
    clip = g.add("CLIPLoader", (20, 420), size=(380, 110), models=[t5], clip_name=t5["name"],
                 type="cogvideox", device="default")
    pos = g.add("CLIPTextEncode", (450, 300), size=(420, 170),
                title="CLIP Text Encode (Positive Prompt)",
                text="A panda in a small red jacket sits on a wooden stool in a serene bamboo "
                     "forest and strums a tiny acoustic guitar; sunlight filters through the "
                     "tall bamboo, other pandas watch curiously. Cinematic, gentle camera "
                     "movement.")
    neg = g.add("CLIPTextEncode", (450, 520), size=(420, 120),
                title="CLIP Text Encode (Negative Prompt)", text="")
    lat = g.add("EmptyHunyuanLatentVideo", (450, 700), size=(315, 130), width=720, height=480,
                length=49, batch_size=1)
    guider = g.add("CFGGuider", (900, 200), size=(270, 100), cfg=6)
    sched = g.add("BasicScheduler", (900, 340), size=(315, 110), scheduler="simple", steps=50,
                  denoise=1)
    sampler = g.add("VOIDSampler", (900, 490), size=(270, 30),
                    title="VOID Sampler (ComfyUI's CogVideoX DDIM)")
    noise = g.add("RandomNoise", (900, 570), size=(315, 82), noise_seed=42)
    vae = g.add("VAELoader", (900, 720), size=(380, 60), models=[vae_ref],
                vae_name=vae_ref["name"])
    sca = g.add("SamplerCustomAdvanced", (1250, 60), size=(270, 330))
    dec = g.add("VAEDecode", (1550, 60), size=(210, 50))
    save = g.add("SaveAnimatedWEBP", (1800, 60), size=(500, 420),
                 filename_prefix="teacache/cogvideox_5b", fps=8, lossless=False, quality=90,
                 method="default")
    g.link(unet, 0, tc, "model")
    g.link(tc, 0, guider, "model")
    g.link(tc, 0, sched, "model")
    g.link(clip, 0, pos, "clip")
    g.link(clip, 0, neg, "clip")
    g.link(pos, 0, guider, "positive")
    g.link(neg, 0, guider, "negative")
    g.link(noise, 0, sca, "noise")
    g.link(guider, 0, sca, "guider")
    g.link(sampler, 0, sca, "sampler")
    g.link(sched, 0, sca, "sigmas")
    g.link(lat, 0, sca, "latent_image")
    g.link(sca, "output", dec, "samples")
    g.link(vae, 0, dec, "vae")
    g.link(dec, 0, save, "images")
    note(g, (-520, -40), f"""
## TeaCache on CogVideoX-5B (text to video)

Newest ComfyUI only. `auto` picks the official `cogvideox_5B` coefficients (TeaCache4CogVideoX,
fitted on the timestep embedding). Recommended `rel_l1_thresh`: **0.1-0.2** (0.2 here).
CogVideoX-2B, 5B-I2V, 1.5-5B and 1.5-5B-I2V have their own presets (`auto` picks them);
CogVideoX-Fun / VOID inpainting models run `uncalibrated` (0.05-0.15).

**Sampling**: CogVideoX is a DDPM model (v-prediction, zero-terminal SNR), not flow matching.
As in ComfyUI's own CogVideoX workflow (VOID), it samples with ComfyUI's DDIM, the
*VOID Sampler* node, through *SamplerCustomAdvanced*: KSampler's noise scaling does not
match how CogVideoX was trained.

**Diffusion model**: ComfyUI reads CogVideoX only in its own weight layout (no conversion
from diffusers), and we know of no ComfyUI-format CogVideoX-5B download (Comfy-Org publishes
only the VOID models). Convert the transformer of
[THUDM/CogVideoX-5b](https://huggingface.co/THUDM/CogVideoX-5b) (diffusers) to ComfyUI's
layout and save it as `diffusion_models/{COGVIDEOX_5B}`; the single files made for the
CogVideoXWrapper custom nodes keep the diffusers names and do not load with this loader.
""" + COMMON_NOTE + models_note(t5, vae_ref), size=(460, 720))
    return g, {tc.id: settings}


# file stem -> (builder, family adapter it needs)
WORKFLOWS = {
    "wan2.1_t2v_1.3B_teacache": (wan21_t2v, "wan"),
    "wan2.1_i2v_480p_teacache": (wan21_i2v, "wan"),
    "wan2.2_a14b_t2v_teacache": (wan22_a14b, "wan"),
    "wan2.2_ti2v_5B_teacache": (wan22_ti2v, "wan"),
    "hunyuan_video_t2v_teacache": (hunyuan_video, "hunyuan_video"),
    "ltx_video_t2v_teacache": (ltx_video, "ltxv"),
    "flux1_dev_teacache": (flux_dev, "flux"),
    "mochi_t2v_teacache": (mochi, "mochi"),
    "qwen_image_teacache": (qwen_image, "qwen_image"),
    "hidream_i1_full_teacache": (hidream, "hidream"),
    "cosmos_predict2_2B_t2i_teacache": (cosmos_predict2_t2i, "cosmos"),
    "z_image_turbo_teacache": (z_image_turbo, "lumina2"),
    "kandinsky5_lite_t2v_teacache": (kandinsky5_t2v, "kandinsky5"),
    "cogvideox_5b_t2v_teacache": (cogvideox_5b_t2v, "cogvideo"),
}
# workflows whose nodes exist only in the newest ComfyUI: stem -> why. The e2e and browser
# tests skip them, with this reason, on a ComfyUI that lacks one of their node types (any other
# workflow missing a node fails)
NEWEST_ONLY = {
    "kandinsky5_lite_t2v_teacache": "Kandinsky 5 exists in the newest ComfyUI only",
    "cogvideox_5b_t2v_teacache": "CogVideoX exists in the newest ComfyUI only",
}


def build(stem):
    g, settings = WORKFLOWS[stem][0]()
    return g.to_json(), settings


def dumps(wf) -> str:
    return json.dumps(wf, indent=2, ensure_ascii=False) + "\n"


def thumbnails(shots: Path):
    """example_workflows/<name>.jpg (the template browser's thumbnail) from the browser test's
    <name>.thumb.png screenshots."""
    from PIL import Image
    for stem in WORKFLOWS:
        src = shots / f"{stem}.thumb.png"
        if not src.exists():
            print("no screenshot", src)
            continue
        with Image.open(src) as im:
            im.convert("RGB").resize((384, 384), Image.LANCZOS).save(
                OUT / f"{stem}.jpg", quality=85, optimize=True)
        print("wrote", (OUT / f"{stem}.jpg").relative_to(ROOT))


def main(argv):
    if "--thumbnails" in argv:
        thumbnails(Path(argv[argv.index("--thumbnails") + 1]))
        return 0
    check = "--check" in argv
    bad = []
    OUT.mkdir(exist_ok=True)
    for stem in WORKFLOWS:
        text = dumps(build(stem)[0])
        path = OUT / f"{stem}.json"
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                bad.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print("wrote", path.relative_to(ROOT))
    if bad:
        print("out of date (run tests/e2e_make_workflows.py):", ", ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
