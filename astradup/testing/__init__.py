"""Helpers for checking AstraDup's outputs from tests and scripts (not used by the pipeline itself)."""
