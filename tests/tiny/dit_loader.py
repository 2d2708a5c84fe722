"""Save tiny real models and load them back the way ComfyUI's loader does, for families whose
detection fixes full-size widths (PixArt, OmniGen2, ERNIE-Image, Ideogram 4, PixelDiT, ...).

`load_detected` is comfy.sd.load_diffusion_model_state_dict with one change: after ComfyUI's
detection picked the config class and its unet_config (asserted), the sizes that detection
hard-codes to the full checkpoint are replaced by the tiny model's. Everything else (the
config class's get_model, its state-dict processing, load_model_weights, the ModelPatcher) is
ComfyUI's own path.
"""
from __future__ import annotations

import torch
from safetensors.torch import save_file

import tiny_models as tm


def init(module: torch.nn.Module, seed: int = 0):
    """tiny_models._init_, also for 0-d parameters (PiD's gate log_alpha): those are hidden from
    it while it runs and set to 0."""
    hidden = []
    for name, p in list(module.named_parameters()):
        if p.ndim == 0:
            owner_name, _, leaf = name.rpartition(".")
            owner = module.get_submodule(owner_name) if owner_name else module
            owner._parameters[leaf] = None
            hidden.append((owner, leaf, p))
    try:
        tm._init_(module, seed)
    finally:
        for owner, leaf, p in hidden:
            with torch.no_grad():
                p.zero_()
            owner._parameters[leaf] = p


def save(module: torch.nn.Module, path, seed: int = 0, prefix: str = ""):
    """Initialise every parameter (seeded) and save the state dict; returns path."""
    init(module, seed)
    sd = {prefix + k: v.detach().contiguous() for k, v in module.state_dict().items()}
    save_file(sd, str(path))
    return path


def ops():
    import comfy.ops
    return dict(operations=comfy.ops.disable_weight_init, dtype=torch.float32, device="cpu")


def load_detected(path, expect_config: str, tiny: dict):
    """Load `path` through ComfyUI's detection (which must pick `expect_config`), with the
    detected unet_config updated by `tiny` (the sizes detection fixes at full size)."""
    import comfy.model_detection
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.utils
    sd = comfy.utils.load_torch_file(str(path))
    config = comfy.model_detection.model_config_from_unet(sd, "")
    assert config is not None, f"ComfyUI's detection did not recognise {path}"
    assert type(config).__name__ == expect_config, type(config).__name__
    config.unet_config.update(tiny)
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model(sd, "")
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                               offload_device=mm.unet_offload_device())
    expected = set(config.process_unet_state_dict(dict(sd)).keys())
    model.load_model_weights(sd, "")
    loaded = set(model.diffusion_model.state_dict().keys())
    assert loaded == expected, (sorted(loaded ^ expected)[:8])
    return patcher
