"""Kernel family 'norm' (being written; see the issue on modern CNN layers)."""
