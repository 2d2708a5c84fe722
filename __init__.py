"""ComfyUI TeaCache: Timestep Embedding Aware Cache for ComfyUI's diffusion transformers."""
from __future__ import annotations

# node help pages (web/docs/<NodeId>.md), served by ComfyUI at /extensions/<pack folder>/
WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from comfy_api.latest import ComfyExtension

    from .nodes.apply import TeaCacheApply
    from .nodes.calibrate import TeaCacheCalibrate
    from .nodes.report import TeaCacheReport

    class TeaCacheExtension(ComfyExtension):
        async def get_node_list(self):
            return [TeaCacheApply, TeaCacheCalibrate, TeaCacheReport]

    return TeaCacheExtension()
