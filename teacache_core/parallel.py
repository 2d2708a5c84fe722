"""Sequence parallelism: every rank of a sequence-parallel (SP) group must decide the same.

Engines such as Raylight (ComfyUI inside Ray workers, with xDiT/xfuser's USP attention) run the
whole sampler on every rank and give each rank one chunk of the token sequence: the blocks, and
so TeaCache's gates, see only that rank's shard. A skip decided from a shard alone would differ
between ranks, and a rank that skips the blocks misses the attention collectives the others
wait in: a hang. So the per-call sums the decision is made from (input checksums, and the
numerator sum|cur - prev| and denominator sum|prev| of the indicator's relative L1) are summed
over the SP group before deciding; every rank then sees the numbers of the whole sequence and
decides the same. Residuals stay sharded: each rank caches only its own tokens (1/N memory).

Pure torch + torch.distributed; nothing here imports ComfyUI or xfuser (xfuser is only looked up
when some code already imported it, which is the only way its parallel state can be set up).

Contract of the sharding this module assumes (Raylight's, for xDiT USP): after the patch
embedding the token sequence (dim 1) is zero-padded at its end to a multiple of the SP world
size and cut into equal chunks, chunk r going to SP rank r; so only the last rank(s) hold
padding tokens, and a rank can tell how many of its tokens are real from the full length.
"""
from __future__ import annotations

import math
import sys

import torch

#: transformer_options key for an explicit SP group (a torch.distributed ProcessGroup). Set it
#: on a model with set_sequence_group(model_patcher, group).
GROUP_KEY = "teacache_sequence_group"
#: transformer_options key for the full (unpadded) token count of the sequence the blocks'
#: shards come from, where the engine knows it better than "grid_sizes" says.
TOKENS_KEY = "teacache_sequence_tokens"

_XFUSER_STATE = "xfuser.core.distributed.parallel_state"


def _dist_ready() -> bool:
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized()


def _group_size(group) -> int:
    try:
        return int(torch.distributed.get_world_size(group))
    except Exception:           # not a member, or a destroyed group
        return 1


def _xfuser_sp_group():
    """xDiT's SP group (its `device_group`), if xfuser was imported and its model-parallel
    state initialised; never imports xfuser itself (importing it pulls diffusers & co.)."""
    ps = sys.modules.get(_XFUSER_STATE)
    if ps is None:
        return None
    sp = getattr(ps, "_SP", None)
    if sp is None:
        return None
    try:
        if int(sp.world_size) <= 1:
            return None
        return sp.device_group
    except Exception:
        return None


def find_group(transformer_options: dict):
    """The ProcessGroup of the SP group whose shards this model call's blocks see, or None.

    Order: an explicit group in transformer_options[GROUP_KEY] (set_sequence_group), else
    xDiT/xfuser's SP group when its parallel state is initialised with SP world size > 1
    (what Raylight uses), else None. None whenever torch.distributed is not initialised or the
    group has one rank. Only the SP group: data-parallel or CFG-parallel ranks (which run other
    samples or other conds) are never coupled. Cheap: called once per model call."""
    if not _dist_ready():
        return None
    group = transformer_options.get(GROUP_KEY) if transformer_options else None
    if group is None:
        group = _xfuser_sp_group()
    if group is None or _group_size(group) <= 1:
        return None
    return group


def set_sequence_group(model_patcher, group) -> None:
    """Tell TeaCache on `model_patcher` (a ComfyUI ModelPatcher, changed in place, not cloned)
    which torch.distributed group shards the token sequence: its model calls then reduce the
    decision's sums over `group`. None removes the setting. Use it where find_group cannot
    find the group by itself (an engine other than xDiT/xfuser)."""
    to = model_patcher.model_options.setdefault("transformer_options", {})
    if group is None:
        to.pop(GROUP_KEY, None)
    else:
        to[GROUP_KEY] = group


def _full_tokens(transformer_options: dict, local: int, world: int) -> int | None:
    """The unpadded sequence length: the explicit TOKENS_KEY, else the product of
    "grid_sizes" (the patch grid ComfyUI's Wan and Raylight's USP forwards put there) when it
    is consistent with this shard's length; None when unknown."""
    n = transformer_options.get(TOKENS_KEY) if transformer_options else None
    if n is not None:
        return int(n)
    grid = transformer_options.get("grid_sizes") if transformer_options else None
    if grid is None:
        return None
    try:
        n = math.prod(int(g) for g in grid)
    except (TypeError, ValueError):
        return None
    return n if -(-n // world) == local else None


def valid_tokens(t: torch.Tensor, transformer_options: dict, full_tokens: int | None = None,
                 group=None) -> torch.Tensor:
    """`t` (token dim 1, this rank's shard) without this rank's padding tokens: a view.

    Raylight pads the sequence at its end to a multiple of the SP world size W and gives
    rank r tokens [r*c, (r+1)*c) of the padded sequence, c = its shard length: of those,
    clamp(L - r*c, 0, c) are real, L the full length (`full_tokens`, else what
    transformer_options says, see _full_tokens). `t` is returned unchanged when there is no
    SP group, nothing is padded, or L is unknown."""
    if group is None:
        group = find_group(transformer_options)
    if group is None or t.ndim < 2:
        return t
    world = _group_size(group)
    local = t.shape[1]
    n = full_tokens if full_tokens is not None else _full_tokens(transformer_options, local, world)
    if n is None or n >= local * world:
        return t
    rank = int(torch.distributed.get_rank(group))
    keep = max(0, min(local, int(n) - rank * local))
    return t if keep == local else t.narrow(1, 0, keep)


def all_reduce_sum_(t: torch.Tensor, group) -> None:
    """In-place SUM of `t` over `group` (SUM, not AVG: gloo has no AVG, and a sum of sums is
    right however unevenly the valid tokens are spread)."""
    if group is None:
        return
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM, group=group)
