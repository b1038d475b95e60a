"""Keras 3 activations layers (being written)."""

__all__ = []
