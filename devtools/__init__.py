"""Helpers for the demo, the tests and the benchmarks (not loaded by ComfyUI)."""
