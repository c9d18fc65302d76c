"""Hugging Face <-> Foundry (placeholder docstring, rewritten below)."""
