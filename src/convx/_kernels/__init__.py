"""Compiled core of convx: one extension module per kernel family (see docs/kernels.md)."""
