"""Keras 3 regularizers (being written)."""
