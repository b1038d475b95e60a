"""Keras 3 regularization layers (being written)."""

__all__ = []
