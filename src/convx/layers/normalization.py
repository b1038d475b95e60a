"""Keras 3 normalization layers (being written)."""

__all__ = []
