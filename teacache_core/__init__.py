"""TeaCache core: settings, the skip policy, per-run state and the coefficient table.

Pure torch: nothing in this package imports ComfyUI. ComfyUI-facing code lives in
``teacache_core.patching`` (the one module that speaks ComfyUI's wrapper/patch API) and the
per-family adapters read the model's own modules through duck typing.
"""
