"""Diffusion transformers TeaCache recognises and refuses, each with the reason (README lists
them). They come before the generic path, which would otherwise claim them."""
from __future__ import annotations

from .base import FamilyAdapter, class_names


class RefusedAdapter(FamilyAdapter):
    def __init__(self, family: str, display: str, class_name: str, reason: str):
        self.family, self.display, self.class_name, self.reason = family, display, class_name, reason

    def matches(self, dm) -> bool:
        return self.class_name in class_names(dm)

    def unsupported_reason(self, dm) -> str | None:
        return self.reason


ADAPTERS = [
    RefusedAdapter(
        "hidream_o1", "HiDream-O1 (refused)", "HiDreamO1Transformer",
        "HiDream-O1 keeps the text prompt's attention keys/values from one step to the next "
        "and turns that cache off as soon as any block patch is set, so every step TeaCache "
        "computes would be slower than without it, and a skipped step would have to keep that "
        "cache too. Remove TeaCache for this model."),
]
