"""Keras 3 preprocessing layers (being written)."""

__all__ = []
