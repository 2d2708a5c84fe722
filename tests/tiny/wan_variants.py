"""Tiny Wan variants for the shared harness: Wan 2.2 Animate, Wan Animate 2, WanDancer, SCAIL,
SCAIL 2, FlowRVS, Wan 2.2 S2V and HuMo.

Each is ComfyUI's own diffusion-model class (comfy/ldm/wan), every parameter seeded, saved with
safetensors and loaded back through comfy.sd.load_diffusion_model, so that ComfyUI's detection
picks the model_base class from the state-dict keys (Animate: face_adapter, S2V:
casual_audio_encoder, HuMo: audio_proj, SCAIL: patch_embedding_pose, SCAIL 2:
patch_embedding_mask, WanDancer: patch_embedding_global) or, where the weights have the plain Wan
layout (Animate 2, FlowRVS), from the checkpoint's config metadata, as ComfyUI's repackaged
checkpoints carry it.

The conds are what the variant's conditioning node hands the sampler (WanAnimateToVideo,
WanAnimate2ToVideo, WanDancerVideo + WanDancerEncodeAudio, WanSCAILToVideo, WanSoundImageToVideo,
WanHuMoImageToVideo), tiny and seeded: latents where the node would VAE-encode an image or video,
seeded features where it would run an audio encoder.

Block layout: 128 wide (one head), 8x8 latents (16 tokens a frame). Variants that add something
between blocks get enough blocks for it to land between the gated blocks: S2V and WanDancer
inject audio/music after blocks 0 and 4 (5 blocks: between the first and the last, and after the
last), Animate adds its face features after block 0 (5 blocks: one face adapter).
"""
from __future__ import annotations

import json

import torch
from safetensors.torch import save_file

import tiny_models as tm
from tiny.dit_loader import init
from tiny.wan import ClipOut

DIM = 128
H = W = 8                        # latent size: 4x4 patches a frame


def _kw(in_dim=16, num_layers=2):
    """The constructor arguments ComfyUI's Wan detection gives every variant, at tiny size."""
    import comfy.ops
    return dict(patch_size=(1, 2, 2), text_len=512, in_dim=in_dim, dim=DIM, ffn_dim=2 * DIM,
                freq_dim=256, text_dim=4096, out_dim=16, num_heads=DIM // 128,
                num_layers=num_layers, window_size=(-1, -1), qk_norm=True, cross_attn_norm=True,
                eps=1e-6, operations=comfy.ops.disable_weight_init, dtype=torch.float32,
                device="cpu")


def _save_load(model, path, seed, model_type=None, prepare=None):
    """Seed every parameter (then `prepare(model)`), save (with the config metadata ComfyUI's
    detection reads when `model_type` is given) and load back through ComfyUI's loader."""
    init(model, seed)
    if prepare is not None:
        with torch.no_grad():
            prepare(model)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    meta = {"config": json.dumps({"transformer": {"model_type": model_type}})} if model_type \
        else None
    save_file(sd, str(path), metadata=meta)
    del model, sd
    return tm.load(path)


def _randn(*shape, seed, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def _with(conds, **values):
    """conditioning_set_values: the same values on every entry."""
    return [[c[0], {**c[1], **values}] for c in conds]


def _latent(frames):
    return {"samples": torch.zeros(1, 16, frames, H, W)}


class _MethodCalls:
    """Stands for a block in a family's `counted` list where the model calls a block method
    other than forward (Animate 2's blocks run `forward_gen` for the generation stream and
    `forward_pose` for the pose branch, never `__call__`): register_forward_pre_hook counts the
    calls of that one method, the handle's remove() restores it."""

    def __init__(self, module, method):
        self.module, self.method = module, method

    def register_forward_pre_hook(self, hook):
        module, name = self.module, self.method
        original = getattr(module, name)

        def counted(*a, **kw):
            hook(module, a)
            return original(*a, **kw)
        module.__dict__[name] = counted

        class Handle:
            @staticmethod
            def remove():
                module.__dict__.pop(name, None)
        return Handle()


# ---- Wan 2.2 Animate (AnimateWanModel, WAN22_Animate) ---------------------------------------
ANIMATE_FRAMES = 1               # generated latent frames (one face frame); +1 reference frame in front


def _motion_stand_in(seed):
    """A cheap stand-in for the face motion encoder (see build_animate): 512 features per face
    frame, a fixed seeded projection of its 4x4-pooled pixels."""
    proj = _randn(48, 512, seed=seed, scale=0.1)

    def get_motion(img):
        pooled = torch.nn.functional.adaptive_avg_pool2d(img, 4).flatten(1)
        return pooled @ proj.to(device=img.device, dtype=img.dtype)
    return get_motion


def build_animate(model_dir):
    """Wan 2.2 Animate: I2V blocks (36 input channels), pose latents added to the patch
    embedding, face features added to the stream after every fifth block (5 blocks: one face
    adapter, after block 0, between the gated blocks).

    The face motion encoder is a fixed-size StyleGAN encoder on 512x512 face frames (~13 s per
    model call on one CPU thread): after loading, its get_motion is replaced on this test's
    instance by a cheap seeded projection, so that the face encoder and the face adapter, the
    parts that act on the block stream, still run on every call."""
    import comfy.ldm.wan.model_animate as animate
    m = animate.AnimateWanModel(model_type="animate", **_kw(in_dim=36, num_layers=5))
    patcher = _save_load(m, model_dir / "family_wan22_animate.safetensors", seed=21)
    dm = patcher.get_model_object("diffusion_model")
    dm.motion_encoder.get_motion = _motion_stand_in(22)
    return patcher


def inputs_animate():
    """WanAnimateToVideo with a reference image, pose video, face video and CLIP vision: the
    latent has the reference frame in front (trim_latent 1)."""
    frames = ANIMATE_FRAMES + 1
    pos, neg = tm.wan_conds()
    concat = _randn(1, 16, frames, H, W, seed=31)
    mask = torch.ones(1, 4, frames, H, W)
    mask[:, :, :1] = 0.0                     # the reference frame is known
    face = _randn(1, 3, ANIMATE_FRAMES * 4 - 3, 512, 512, seed=32).clamp(-1, 1)
    common = dict(concat_latent_image=concat, concat_mask=mask, clip_vision_output=ClipOut(),
                  pose_video_latent=_randn(1, 16, ANIMATE_FRAMES, H, W, seed=33))
    pos = _with(pos, face_video_pixels=face, **common)
    neg = _with(neg, face_video_pixels=face * 0.0 - 1.0, **common)
    return _latent(frames), pos, neg


# ---- Wan Animate 2 (WanAnimate2Model, WAN_Animate2) -----------------------------------------
ANIMATE2_FRAMES = 2


def build_animate2(model_dir):
    """Wan Animate 2: Wan 2.1 I2V weights (plain I2V keys: detected from the config metadata),
    with a pose branch that runs each block's pose half (`forward_pose`) beside the generation
    half (`forward_gen`) and feeds it K/V."""
    import comfy.ldm.wan.model_animate2 as animate2
    m = animate2.WanAnimate2Model(model_type="animate2", **_kw(in_dim=36, num_layers=2))
    return _save_load(m, model_dir / "family_wan_animate2.safetensors", seed=23,
                      model_type="animate2")


def counted_animate2(dm):
    """The generation stream's block executions (what TeaCache gates). The pose branch calls
    every block's forward_pose on every model call, also on skipped steps: its state has to
    reach the next block."""
    return [_MethodCalls(b, "forward_gen") for b in dm.blocks]


def inputs_animate2():
    """WanAnimate2ToVideo with a reference image, pose video and CLIP vision: reference slot in
    front, the pose prompt and CLIP default to the positive ones (also on the negative)."""
    frames = ANIMATE2_FRAMES + 1
    pos, neg = tm.wan_conds()
    mask = torch.ones(1, 1, frames, H, W)
    mask[:, :, :1] = 0.0
    clip = ClipOut()
    common = dict(concat_latent_image=_randn(1, 16, frames, H, W, seed=41), concat_mask=mask,
                  clip_vision_output=clip, clip_vision_output_pose=clip,
                  pose_video_latent=_randn(1, 16, ANIMATE2_FRAMES, H, W, seed=42),
                  cross_attn_pose=pos[0][0])
    return _latent(frames), _with(pos, **common), _with(neg, **common)


# ---- WanDancer (WanDancerModel, WAN22_WanDancer) --------------------------------------------
DANCER_FRAMES = 2


def build_wandancer(model_dir):
    """WanDancer: I2V blocks with a second CLIP embedding (reference image) and a music encoder
    whose features are injected after blocks 0 and 4 (5 blocks)."""
    import comfy.ldm.wan.model_wandancer as dancer
    m = dancer.WanDancerModel(model_type="wandancer", **_kw(in_dim=36, num_layers=5))
    return _save_load(m, model_dir / "family_wan22_wandancer.safetensors", seed=25)


def inputs_wandancer():
    """WanDancerVideo with a start image, both CLIP vision outputs and WanDancerEncodeAudio's
    music features (35 per audio frame, 30 fps)."""
    pos, neg = tm.wan_conds()
    mask = torch.ones(1, 1, DANCER_FRAMES, H, W)
    mask[:, :, :1] = 0.0
    common = dict(concat_latent_image=_randn(1, 16, DANCER_FRAMES, H, W, seed=51),
                  concat_mask=mask, clip_vision_output=ClipOut(seed=1),
                  clip_vision_output_ref=ClipOut(seed=2),
                  audio_embed=_randn(1, (DANCER_FRAMES - 1) * 4 + 1, 35, seed=52).abs(),
                  fps=30.0, audio_inject_scale=1.0)
    return _latent(DANCER_FRAMES), _with(pos, **common), _with(neg, **common)


# ---- SCAIL / SCAIL 2 (SCAILWanModel / SCAIL2WanModel, WAN21_SCAIL / WAN21_SCAIL2) -------------
SCAIL_FRAMES = 2


def build_scail(model_dir):
    """SCAIL: 20 input channels (latent + 4 mask), pose latents at half resolution appended to
    the token sequence through their own patch embedding."""
    import comfy.ldm.wan.model as wan
    m = wan.SCAILWanModel(model_type="scail", **_kw(in_dim=20, num_layers=2))
    return _save_load(m, model_dir / "family_wan21_scail.safetensors", seed=27)


def build_scail2(model_dir):
    """SCAIL 2: SCAIL plus an additive 28-channel identity-mask stream on the video, reference
    and pose tokens."""
    import comfy.ldm.wan.model as wan
    m = wan.SCAIL2WanModel(model_type="scail2", **_kw(in_dim=20, num_layers=2))
    return _save_load(m, model_dir / "family_wan21_scail2.safetensors", seed=28)


def _scail_conds(scail2=False):
    """WanSCAILToVideo (animation mode) with a reference image, pose video (half size) and CLIP
    vision; SCAIL 2 also with the pose-video mask and the reference mask (28 channels)."""
    pos, neg = tm.wan_conds()
    values = dict(ref_mask_flag=True, reference_latents=[_randn(1, 16, 1, H, W, seed=61)],
                  clip_vision_output=ClipOut(),
                  pose_video_latent=_randn(1, 16, SCAIL_FRAMES, H // 2, W // 2, seed=62))
    if scail2:
        values["driving_mask_28ch"] = (_randn(1, SCAIL_FRAMES, 28, H // 2, W // 2, seed=63)
                                       > 1.0).float()
        ref = (_randn(1, 1, 28, H, W, seed=64) > 1.0).float()
        values["ref_mask_28ch"] = torch.cat([ref, torch.zeros(1, SCAIL_FRAMES, 28, H, W)], dim=1)
    return _latent(SCAIL_FRAMES), _with(pos, **values), _with(neg, **values)


def inputs_scail():
    return _scail_conds()


def inputs_scail2():
    return _scail_conds(scail2=True)


# ---- FlowRVS (WanModel, WAN21_FlowRVS) --------------------------------------------------------
def build_flowrvs(model_dir):
    """FlowRVS (referring video segmentation): Wan 2.1 T2V weights, detected from the config
    metadata; sampled as an image-to-image flow from the video latent (no noise)."""
    import comfy.ldm.wan.model as wan
    m = wan.WanModel(model_type="t2v", **_kw(num_layers=3))
    return _save_load(m, model_dir / "family_wan21_flowrvs.safetensors", seed=29,
                      model_type="flow_rvs")


def inputs_flowrvs():
    """The video to segment is the latent; the prompt names the object."""
    pos, neg = tm.wan_conds()
    return {"samples": _randn(1, 16, 3, H, W, seed=71)}, pos, neg


# ---- Wan 2.2 S2V (WanModel_S2V, WAN22_S2V) ----------------------------------------------------
S2V_FRAMES = 2


def build_s2v(model_dir):
    """Wan 2.2 S2V: per-frame timesteps, reference and motion-frame tokens appended, audio
    injected after blocks 0 and 4 (5 blocks)."""
    import comfy.ldm.wan.model as wan
    m = wan.WanModel_S2V(model_type="s2v", **_kw(num_layers=5))
    # the audio layers' weights: a plain mean (seeded random ones can sum, after SiLU, to ~0)
    return _save_load(m, model_dir / "family_wan22_s2v.safetensors", seed=30,
                      prepare=lambda mm: mm.casual_audio_encoder.weights.fill_(1.0))


def inputs_s2v():
    """WanSoundImageToVideo with wav2vec2 features (25 layers of 1024, 4 audio frames a latent
    frame; zeros on the negative), a reference image, the 19 motion latent frames of a grey
    ref_motion video and the (empty) control video."""
    import comfy.latent_formats
    pos, neg = tm.wan_conds()
    audio = _randn(1, 25, 1024, S2V_FRAMES * 4, seed=81)
    control = comfy.latent_formats.Wan21().process_out(torch.zeros(1, 16, S2V_FRAMES, H, W))
    common = dict(reference_latents=[_randn(1, 16, 1, H, W, seed=82)],
                  reference_motion=_randn(1, 16, 19, H, W, seed=83), control_video=control)
    return (_latent(S2V_FRAMES), _with(pos, audio_embed=audio, **common),
            _with(neg, audio_embed=audio * 0.0, **common))


# ---- HuMo (HumoWanModel, WAN21_HuMo) ----------------------------------------------------------
HUMO_FRAMES = 2


def build_humo(model_dir):
    """HuMo 17B layout (36 input channels): audio cross-attention inside every block, the
    reference latent appended as extra frames."""
    import comfy.ldm.wan.model as wan
    m = wan.HumoWanModel(model_type="humo", **_kw(in_dim=36, num_layers=2))
    return _save_load(m, model_dir / "family_wan21_humo.safetensors", seed=32)


def inputs_humo():
    """WanHuMoImageToVideo with a reference image (zeros on the negative) and whisper audio
    features (a window of 8 x 5 layers x 1280 per latent frame; zeros on the negative)."""
    pos, neg = tm.wan_conds()
    ref = _randn(1, 16, 1, H, W, seed=91)
    audio = _randn(1, HUMO_FRAMES, 8, 5, 1280, seed=92)
    pos = _with(pos, reference_latents=[ref], audio_embed=audio)
    neg = _with(neg, reference_latents=[torch.zeros_like(ref)], audio_embed=torch.zeros_like(audio))
    return _latent(HUMO_FRAMES), pos, neg
