"""Diffusion transformers TeaCache recognises and refuses, each with the reason (README lists
them). They come before the generic path, which would otherwise claim them."""
from __future__ import annotations

from .base import FamilyAdapter, class_names


class RefusedAdapter(FamilyAdapter):
    refuses = True          # recognised only to say why not (left out of "supported families")

    def __init__(self, family: str, display: str, class_name: str, reason: str, when=None):
        self.family, self.display, self.class_name, self.reason = family, display, class_name, reason
        self.when = when        # only models of the class for which when(dm) holds

    def matches(self, dm) -> bool:
        return self.class_name in class_names(dm) and (self.when is None or self.when(dm))

    def unsupported_reason(self, dm) -> str | None:
        return self.reason


def _local_conditioning(dm) -> bool:
    """Stable Audio 3's blocks add a local conditioning (to_local_embed); Stable Audio 1's not."""
    return any(getattr(m, "to_local_embed", None) is not None for m in dm.modules())


_NO_HOOKS = ("its forward offers ComfyUI no block hooks (patches_replace) and TeaCache has no "
             "adapter for {what}, so nothing can be skipped safely. Remove TeaCache for this "
             "model.")

ADAPTERS = [
    RefusedAdapter(
        "hidream_o1", "HiDream-O1 (refused)", "HiDreamO1Transformer",
        "HiDream-O1 keeps the text prompt's attention keys/values from one step to the next "
        "and turns that cache off as soon as any block patch is set, so every step TeaCache "
        "computes would be slower than without it, and a skipped step would have to keep that "
        "cache too. Remove TeaCache for this model."),
    RefusedAdapter(
        "stable_audio3", "Stable Audio 3 (refused)", "AudioDiffusionTransformer",
        "in this ComfyUI, Stable Audio 3's blocks lose their local conditioning as soon as any "
        "block hook is set (the hook path does not pass it on), so TeaCache would change the "
        "audio even when it skips nothing. Remove TeaCache for this model (Stable Audio 1 is "
        "cached).", when=_local_conditioning),
    RefusedAdapter("ace_step", "ACE-Step (refused)", "ACEStepTransformer2DModel",
                   _NO_HOOKS.format(what="ACE-Step's music transformer")),
    RefusedAdapter("ace_step15", "ACE-Step 1.5 (refused)", "AceStepConditionGenerationModel",
                   _NO_HOOKS.format(what="ACE-Step 1.5's music transformer")),
    RefusedAdapter("minimax_music", "MiniMax Music 3 (refused)", "MiniMaxMusic3DiT",
                   _NO_HOOKS.format(what="MiniMax Music 3's transformer")),
    RefusedAdapter("trellis2", "Trellis 2 (refused)", "Trellis2",
                   "Trellis 2 generates 3D assets in stages over sparse voxel tensors whose "
                   "token set changes between stages; its forward offers no block hooks and "
                   "TeaCache has no adapter for it. Remove TeaCache for this model."),
    RefusedAdapter("triposplat", "TripoSplat (refused)", "LatentSeqMMFlowModel",
                   _NO_HOOKS.format(what="TripoSplat's 3D latent transformer")),
]
