"""Thin ComfyUI nodes (V3 schema): validate, clone, hand over to teacache_core.patching."""
