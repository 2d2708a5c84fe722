"""Tiny real models of every family for the shared harness (tests/families.py)."""
