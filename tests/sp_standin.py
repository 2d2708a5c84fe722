"""Test stand-ins for sequence parallelism as Raylight runs ComfyUI's Wan under xDiT USP.

Raylight (komikndr/raylight) installs, on each Ray worker's own ComfyUI model, a replacement
of the Wan model's `forward_orig` that, after the patch embedding, zero-pads the token
sequence (and the RoPE frequencies) at its end to a multiple of the sequence-parallel (SP)
world size, keeps this rank's equal chunk, runs the blocks (through `patches_replace["dit"]`,
args {"img": shard, "txt", "vec": e0 (shared), "pe": shard of the frequencies}) and all-gathers
the chunks before the head; and it replaces every block's `self_attn.forward` with one calling
xDiT's USP attention (Ulysses all-to-all / ring), which lets each query shard attend over the
whole sequence.

Written here for the tests, not taken from Raylight or ComfyUI:
- `sp_forward_orig`: the sharding forward for the plain T2V `WanModel`, built from the model's
  own sub-modules (patch embedding, time embedding, text embedding, blocks, head, unpatchify);
- a STAND-IN FOR xDiT's USP ATTENTION: `self_attn.forward` is wrapped so that, inside it,
  ComfyUI's `optimized_attention` (as the Wan module calls it) all-gathers K and V over the SP
  group (gloo) and drops the padding keys, then attends with ComfyUI's own attention. Same
  result as unsharded attention, up to round-off. Mode "local" attends within the shard only
  (no collectives): for the negative control, whose ranks may decide differently.
"""
from __future__ import annotations

import contextvars
import types

import torch
import torch.distributed as dist

_IN_SELF_ATTN: contextvars.ContextVar = contextvars.ContextVar("sp_in_self_attn", default=False)


class SPState:
    group = None            # the SP ProcessGroup
    mode = "gather"         # "gather" (USP stand-in) or "local" (no collectives in the blocks)
    tokens = None           # unpadded sequence length of the current call


STATE = SPState()


def world_rank():
    return dist.get_world_size(STATE.group), dist.get_rank(STATE.group)


def pad_and_shard(t: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Zero-pad `t` at its end on `dim` to a multiple of the SP world size; this rank's chunk."""
    world, rank = world_rank()
    n = t.shape[dim]
    pad = (-n) % world
    if pad:
        shape = list(t.shape)
        shape[dim] = pad
        t = torch.cat([t, t.new_zeros(shape)], dim=dim)
    return t.chunk(world, dim=dim)[rank]


def gather_tokens(t: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """All-gather the chunks of every SP rank on `dim` (in rank order)."""
    world, _ = world_rank()
    parts = [torch.empty_like(t) for _ in range(world)]
    dist.all_gather(parts, t.contiguous(), group=STATE.group)
    return torch.cat(parts, dim=dim)


def sp_forward_orig(self, x, t, context, clip_fea=None, freqs=None, transformer_options={},
                    **kwargs):
    """WanModel.forward_orig with the token sequence sharded over the SP group (T2V only)."""
    import comfy.ldm.wan.model as wan
    if clip_fea is not None or kwargs.get("reference_latent") is not None or \
            kwargs.get("context_latents") is not None or \
            (transformer_options.get("patches") or {}).get("double_block"):
            raise NotImplementedError("the SP test stand-in covers the plain T2V Wan only")
    x = self.patch_embedding(x.float()).to(x.dtype)
    grid = x.shape[2:]
    transformer_options["grid_sizes"] = grid
    x = x.flatten(2).transpose(1, 2)
    n = x.shape[1]
    e = self.time_embedding(wan.sinusoidal_embedding_1d(self.freq_dim, t.flatten()).to(dtype=x.dtype))
    e = e.reshape(t.shape[0], -1, e.shape[-1])
    e0 = self.time_projection(e).unflatten(2, (6, self.dim))
    context = self.text_embedding(context)

    STATE.tokens = n
    x = pad_and_shard(x)
    freqs = pad_and_shard(freqs)

    dit = (transformer_options.get("patches_replace") or {}).get("dit") or {}
    transformer_options["total_blocks"] = len(self.blocks)
    transformer_options["block_type"] = "double"
    for i, block in enumerate(self.blocks):
        transformer_options["block_index"] = i
        if ("double_block", i) in dit:
            def run(args, block=block):
                return {"img": block(args["img"], context=args["txt"], e=args["vec"], freqs=args["pe"],
                                     context_img_len=None,
                                     transformer_options=args["transformer_options"])}
            x = dit[("double_block", i)]({"img": x, "txt": context, "vec": e0, "pe": freqs,
                                          "transformer_options": transformer_options},
                                         {"original_block": run})["img"]
        else:
            x = block(x, e=e0, freqs=freqs, context=context, context_img_len=None,
                      transformer_options=transformer_options)

    x = gather_tokens(x)[:, :n]
    x = self.head(x, e)
    return self.unpatchify(x, grid)


def _gathering_attention(original):
    """ComfyUI's optimized_attention, with K/V gathered over the SP group inside self-attention
    (the USP stand-in)."""
    def attention(q, k, v, heads, *args, **kwargs):
        if _IN_SELF_ATTN.get() and STATE.mode == "gather":
            k = gather_tokens(k)[:, :STATE.tokens]
            v = gather_tokens(v)[:, :STATE.tokens]
        return original(q, k, v, heads, *args, **kwargs)
    attention.sp_original = original
    return attention


def _self_attn_forward(original):
    def forward(self, *args, **kwargs):
        token = _IN_SELF_ATTN.set(True)
        try:
            return original(*args, **kwargs)
        finally:
            _IN_SELF_ATTN.reset(token)
    forward.sp_wrapped = True
    return forward


def install(model_patcher, group, mode="gather"):
    """Put the stand-ins on this process's ComfyUI Wan model, as Raylight does on each worker's
    model: a sharding forward_orig and self-attention over the whole sequence."""
    import comfy.ldm.wan.model as wan
    STATE.group, STATE.mode = group, mode
    if not hasattr(wan.optimized_attention, "sp_original"):
        wan.optimized_attention = _gathering_attention(wan.optimized_attention)
    dm = model_patcher.get_model_object("diffusion_model")
    dm.forward_orig = types.MethodType(sp_forward_orig, dm)
    for block in dm.blocks:
        attn = block.self_attn
        if not getattr(attn.forward, "sp_wrapped", False):
            attn.forward = types.MethodType(_self_attn_forward(attn.forward), attn)
    return dm



def inputs(sc):
    """(noise, latent) of a scenario: seeded noise of sc["latent"]'s shape; "crafted" noise
    is nearly zero on the second half of the frames (the last rank's tokens), so that the two
    halves of the sequence change very differently between steps."""
    shape = sc["latent"]
    g = torch.Generator().manual_seed(sc.get("seed", 3))
    noise = torch.randn(shape, generator=g)
    if sc.get("noise") == "crafted":
        f = shape[2]
        noise[:, :, f // 2:] *= 1e-3
    return noise, torch.zeros(shape)


def sample(model, noise, latent, steps=10, cfg=5.0):
    """ComfyUI's sampler (comfy.sample.sample, what KSampler runs) with a given noise."""
    import comfy.sample
    import tiny_models as tm
    pos, neg = tm.wan_conds()
    return comfy.sample.sample(model, noise, steps, cfg, "euler", "simple", pos, neg, latent,
                               disable_pbar=True, seed=3)
