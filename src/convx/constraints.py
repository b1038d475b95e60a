"""Keras 3 constraints (being written)."""
