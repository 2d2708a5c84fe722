"""The e2e tests' workflow helpers: the generic UI -> API conversion lives in
devtools/workflows.py (shared with the demo; re-exported here), plus the two test-only changes
the e2e tests make to a prompt: stand-ins for text encoders / VAEs / CLIP vision, and tiny
latent sizes.
"""
from __future__ import annotations

import copy

from workflows import (ACTIVE, BYPASSED, EXAMPLES, MUTED, ROOT, SEED_CONTROLS,  # noqa: F401
                       VIRTUAL, WIDGET_TYPES, example_files, load, nodes_of, set_mode,
                       ui_nodes_of, ui_to_api)

__all__ = ["ACTIVE", "BYPASSED", "EXAMPLES", "MUTED", "ROOT", "SEED_CONTROLS", "VIRTUAL",
           "WIDGET_TYPES", "example_files", "load", "nodes_of", "set_mode", "ui_nodes_of",
           "ui_to_api", "with_standins", "tiny", "missing_node_types", "STANDIN_NODES",
           "TINY_LATENT"]


# ---- test-only changes to a prompt ----------------------------------------------------------
STANDIN_NODES = {
    "CLIPLoader": "TeaCacheTestCLIPLoader",
    "DualCLIPLoader": "TeaCacheTestDualCLIPLoader",
    "VAELoader": "TeaCacheTestVAELoader",
    "CLIPVisionLoader": "TeaCacheTestCLIPVisionLoader",
}
CHECKPOINT_LOADERS = {"CheckpointLoaderSimple"}


def with_standins(prompt: dict) -> dict:
    """Replace what cannot exist at tiny size (text encoders, VAEs, CLIP vision) by the
    test-only stand-ins of tests/teacache_test_nodes; a checkpoint loader stays real, only its
    VAE output is served by a stand-in."""
    p = copy.deepcopy(prompt)
    next_id = max(int(k) for k in p) + 1
    for nid, node in list(p.items()):
        if node["class_type"] in STANDIN_NODES:
            node["class_type"] = STANDIN_NODES[node["class_type"]]
        elif node["class_type"] in CHECKPOINT_LOADERS:
            vae_id = str(next_id)
            next_id += 1
            p[vae_id] = {"class_type": "TeaCacheTestCheckpointVAE",
                         "inputs": {"ckpt_name": node["inputs"]["ckpt_name"]},
                         "_meta": {"title": "stand-in VAE of " + node["inputs"]["ckpt_name"]}}
            for other in p.values():
                for k, v in other["inputs"].items():
                    if v == [nid, 2]:
                        other["inputs"][k] = [vae_id, 0]
                    elif v == [nid, 1]:
                        raise ValueError("a checkpoint's CLIP output has no stand-in")
    return p


# latent size nodes and the tiny size the tests sample at (steps and every other setting stay)
TINY_LATENT = {
    "EmptyHunyuanLatentVideo": dict(width=64, height=64, length=5),
    "WanImageToVideo": dict(width=64, height=64, length=5),
    "Wan22ImageToVideoLatent": dict(width=128, height=128, length=5),
    "EmptyLTXVLatentVideo": dict(width=128, height=128, length=9),
    "EmptySD3LatentImage": dict(width=64, height=64),
    "Kandinsky5ImageToVideo": dict(width=64, height=64, length=5),
}


def missing_node_types(workflow: dict, object_info: dict) -> list[str]:
    """The workflow's node types this server does not have (the page keeps VIRTUAL ones)."""
    return sorted({n["type"] for n in workflow["nodes"]
                   if n["type"] not in VIRTUAL and n["type"] not in object_info})


def tiny(prompt: dict) -> dict:
    p = copy.deepcopy(prompt)
    for node in p.values():
        node["inputs"].update(TINY_LATENT.get(node["class_type"], {}))
    return p
