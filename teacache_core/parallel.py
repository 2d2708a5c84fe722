"""Sequence parallelism (placeholder interface; see the multi-GPU work).

find_group: the torch.distributed group whose ranks hold shards of this call's token sequence
(explicitly: transformer_options["teacache_sequence_group"]), else None.
"""
from __future__ import annotations

import torch

GROUP_KEY = "teacache_sequence_group"


def find_group(transformer_options: dict):
    group = (transformer_options or {}).get(GROUP_KEY)
    if group is None:
        return None
    import torch.distributed as dist
    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size(group) < 2:
        return None
    return group


def valid_tokens(t: torch.Tensor, transformer_options: dict, full_tokens=None) -> torch.Tensor:
    return t


def all_reduce_sum_(t: torch.Tensor, group) -> None:
    import torch.distributed as dist
    dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
