"""TEST-ONLY ComfyUI node pack: stand-ins for what cannot exist at tiny size in the end-to-end
tests (text encoders, VAEs, CLIP vision). Never install it for real use.

The e2e tests link this folder into the test server's custom_nodes and, in the API prompt made
from an example workflow, replace CLIPLoader / DualCLIPLoader / VAELoader / CLIPVisionLoader
by the TeaCacheTest* node of the same inputs (and a checkpoint's VAE output by
TeaCacheTestCheckpointVAE). Everything else in the workflow runs as a user runs it.

Each stand-in reads its description from the ``teacache_test_standin`` metadata of the file
it is given (written by tests/e2e_models.py). Outputs are deterministic: a text encoding is
seeded by the text, a VAE is a fixed random linear map with average pooling / nearest
upsampling at the VAE's compression.
"""
from __future__ import annotations

import hashlib
import json

import torch
import torch.nn.functional as F

import folder_paths

STANDIN_KEY = "teacache_test_standin"


def _describe(folder: str, name: str) -> dict:
    from safetensors import safe_open
    path = folder_paths.get_full_path_or_raise(folder, name)
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
    if STANDIN_KEY not in meta:
        raise ValueError(f"{name} is not a test stand-in file (no {STANDIN_KEY} metadata)")
    return json.loads(meta[STANDIN_KEY])


def _seed(*parts) -> int:
    h = hashlib.sha256("\x00".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


# ---- text encoders ----------------------------------------------------------------------------
class StandinCLIP:
    """What CLIPTextEncode needs from a CLIP: tokenize() and encode_from_tokens_scheduled()."""

    def __init__(self, descs: list[dict], clip_type: str):
        token_descs = [d for d in descs if not d.get("pooled")] or descs
        pooled = [d for d in descs if d.get("pooled")]
        self.width = token_descs[0]["width"]
        self.pooled = pooled[0]["pooled"] if pooled else None
        self.attention_mask = any(d.get("attention_mask") for d in descs)
        self.clip_type = clip_type

    def tokenize(self, text, return_word_ids=False, **kwargs):
        return {"standin": text}

    def _encode(self, text):
        g = torch.Generator().manual_seed(_seed(self.clip_type, text))
        n = min(max(len(text.split()), 4), 16)
        cond = torch.randn(1, n, self.width, generator=g) * 0.5
        extra = {}
        extra["pooled_output"] = (torch.randn(1, self.pooled, generator=g) * 0.5
                                  if self.pooled else None)
        if self.attention_mask:
            extra["attention_mask"] = torch.ones(1, n, dtype=torch.long)
        return cond, extra

    def encode_from_tokens_scheduled(self, tokens, unprojected=False, add_dict=None,
                                     show_pbar=True, **kwargs):
        cond, extra = self._encode(tokens["standin"])
        return [[cond, {**extra, **(add_dict or {})}]]

    def encode_from_tokens(self, tokens, return_pooled=False, return_dict=False, **kwargs):
        cond, extra = self._encode(tokens["standin"])
        if return_dict:
            return {"cond": cond, **extra}
        return (cond, extra["pooled_output"]) if return_pooled else cond


# ---- VAEs -------------------------------------------------------------------------------------
class StandinVAE:
    """A deterministic linear 'VAE' of a real VAE's latent channels and compression: the
    methods VAEDecode, VAEDecodeTiled, WanImageToVideo and Wan22ImageToVideoLatent call."""

    def __init__(self, channels: int, spatial: int, temporal: int = 1, **_):
        self.latent_channels = channels
        self.spatial = spatial
        self.temporal = temporal
        self.latent_dim = 3 if temporal > 1 else 2
        g = torch.Generator().manual_seed(channels * 1000 + spatial * 10 + temporal)
        self.enc = torch.randn(channels, 3, generator=g) / 3 ** 0.5
        self.dec = torch.randn(3, channels, generator=g) / channels ** 0.5

    # compression, as comfy.sd.VAE reports it
    def spacial_compression_decode(self):
        return self.spatial

    def spacial_compression_encode(self):
        return self.spatial

    def temporal_compression_decode(self):
        return self.temporal if self.temporal > 1 else None

    def temporal_compression_encode(self):
        return self.temporal if self.temporal > 1 else None

    def vae_encode_crop_pixels(self, pixels):
        s = self.spatial
        h, w = pixels.shape[-3] // s * s, pixels.shape[-2] // s * s
        return pixels[..., :h, :w, :]

    def encode(self, pixels):
        """pixels [T, H, W, C] (a video VAE takes the batch as frames) -> latent."""
        x = self.vae_encode_crop_pixels(pixels)[..., :3].float().movedim(-1, 1)  # [T,3,H,W]
        x = F.avg_pool2d(x, self.spatial)                                          # [T,3,h,w]
        x = torch.einsum("ck,tkhw->tchw", self.enc, x * 2 - 1)
        if self.latent_dim == 2:
            return x
        frames = x[::self.temporal] if x.shape[0] > 1 else x                       # causal: 1 + ...
        return frames.movedim(0, 1).unsqueeze(0)                                    # [1,C,t,h,w]

    def decode(self, latent):
        """latent [B,C,t,h,w] -> [B, 1 + (t-1)*temporal, H, W, 3]; [B,C,h,w] -> [B,H,W,3]."""
        z = latent.float()
        if z.ndim == 4:
            img = torch.sigmoid(torch.einsum("kc,bchw->bkhw", self.dec, z))
            img = F.interpolate(img, scale_factor=self.spatial, mode="nearest")
            return img.movedim(1, -1)
        img = torch.sigmoid(torch.einsum("kc,bcthw->bkthw", self.dec, z))
        frames = torch.cat([img[:, :, :1], img[:, :, 1:].repeat_interleave(self.temporal, 2)], 2)
        b, k, t, h, w = frames.shape
        # a frame-dependent tint, so that no two frames are alike (an animated WEBP merges
        # identical frames)
        frames = (frames * 0.9 + torch.linspace(0, 0.1, t).view(1, 1, t, 1, 1)).clamp(0, 1)
        frames = F.interpolate(frames.movedim(2, 1).reshape(b * t, k, h, w),
                               scale_factor=self.spatial, mode="nearest")
        return frames.reshape(b, t, k, h * self.spatial, w * self.spatial).movedim(2, -1)

    def decode_tiled(self, samples, tile_x=None, tile_y=None, overlap=None, tile_t=None,
                     overlap_t=None, **kwargs):
        return self.decode(samples)

    def encode_tiled(self, pixels, *args, **kwargs):
        return self.encode(pixels)


# ---- CLIP vision ------------------------------------------------------------------------------
class StandinCLIPVision:
    def __init__(self, tokens: int, width: int, embeds: int, **_):
        self.tokens, self.width, self.embeds = tokens, width, embeds

    def encode_image(self, image, crop=True):
        import comfy.clip_vision
        g = torch.Generator().manual_seed(_seed("clip_vision", float(image.float().mean())))
        b = image.shape[0]
        out = comfy.clip_vision.Output()
        out["last_hidden_state"] = torch.randn(b, self.tokens, self.width, generator=g) * 0.5
        out["penultimate_hidden_states"] = torch.randn(b, self.tokens, self.width,
                                                       generator=g) * 0.5
        out["image_embeds"] = torch.randn(b, self.embeds, generator=g) * 0.5
        out["image_sizes"] = [(3, 224, 224)] * b
        out["mm_projected"] = None
        return out


# ---- nodes (same inputs as the loaders they stand in for) -------------------------------------
def _files(folder):
    return (folder_paths.get_filename_list(folder),)


class TeaCacheTestCLIPLoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip_name": _files("text_encoders"), "type": ("STRING", {})},
                "optional": {"device": ("STRING", {"default": "default"})}}

    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load"
    CATEGORY = "TeaCache/test stand-ins"

    def load(self, clip_name, type, device="default"):
        return (StandinCLIP([_describe("text_encoders", clip_name)], type),)


class TeaCacheTestDualCLIPLoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip_name1": _files("text_encoders"),
                             "clip_name2": _files("text_encoders"), "type": ("STRING", {})},
                "optional": {"device": ("STRING", {"default": "default"})}}

    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load"
    CATEGORY = "TeaCache/test stand-ins"

    def load(self, clip_name1, clip_name2, type, device="default"):
        return (StandinCLIP([_describe("text_encoders", clip_name1),
                             _describe("text_encoders", clip_name2)], type),)


class TeaCacheTestVAELoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"vae_name": _files("vae")}}

    RETURN_TYPES = ("VAE",)
    FUNCTION = "load"
    CATEGORY = "TeaCache/test stand-ins"

    def load(self, vae_name):
        return (StandinVAE(**_describe("vae", vae_name)),)


class TeaCacheTestCheckpointVAE:
    """The VAE output of a checkpoint loader, from the checkpoint's stand-in metadata."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": _files("checkpoints")}}

    RETURN_TYPES = ("VAE",)
    FUNCTION = "load"
    CATEGORY = "TeaCache/test stand-ins"

    def load(self, ckpt_name):
        return (StandinVAE(**_describe("checkpoints", ckpt_name)),)


class TeaCacheTestCLIPVisionLoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip_name": _files("clip_vision")}}

    RETURN_TYPES = ("CLIP_VISION",)
    FUNCTION = "load"
    CATEGORY = "TeaCache/test stand-ins"

    def load(self, clip_name):
        return (StandinCLIPVision(**_describe("clip_vision", clip_name)),)


NODE_CLASS_MAPPINGS = {
    "TeaCacheTestCLIPLoader": TeaCacheTestCLIPLoader,
    "TeaCacheTestDualCLIPLoader": TeaCacheTestDualCLIPLoader,
    "TeaCacheTestVAELoader": TeaCacheTestVAELoader,
    "TeaCacheTestCheckpointVAE": TeaCacheTestCheckpointVAE,
    "TeaCacheTestCLIPVisionLoader": TeaCacheTestCLIPVisionLoader,
}
