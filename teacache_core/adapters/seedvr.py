"""SeedVR2 (comfy/ldm/seedvr, `NaDiT`, model_base SeedVR2): recognised and refused.

SeedVR2 is a video/image restoration (upscaling) model distilled by diffusion adversarial
post-training to restore in ONE step (arXiv 2506.05301, "SeedVR2: One-Step Video Restoration
via Diffusion Adversarial Post-Training"). ComfyUI runs it with its SeedVR2 nodes
(comfy_extras/nodes_seedvr.py: Pre-Process SeedVR2 Input, Apply SeedVR2 Conditioning, Split /
Merge SeedVR2 Latents, Post-Process SeedVR2 Output) around a plain KSampler set to 1 step,
cfg 1, euler / simple (sampling shift 1.0). TeaCache skips steps whose input barely changed
since the last computed one; a run of one step has nothing to skip (the first step is always
computed), so the node would only add overhead.
"""
from __future__ import annotations

from .base import FamilyAdapter, class_names


class SeedVR2Adapter(FamilyAdapter):
    family = "seedvr2"
    display = "SeedVR2 (refused: one-step restoration)"
    refuses = True

    def matches(self, dm) -> bool:
        return "NaDiT" in class_names(dm) and hasattr(dm, "blocks")

    def unsupported_reason(self, dm) -> str | None:
        return ("it is SeedVR2, a one-step restoration model: ComfyUI samples it in 1 step "
                "(KSampler steps 1, cfg 1). TeaCache skips steps that barely change and always "
                "computes the first one, so caching cannot help a model sampled in 1 step. "
                "Remove the TeaCache node for SeedVR2.")


ADAPTER = SeedVR2Adapter()
