"""Keras 3 reshaping layers (being written)."""

__all__ = []
