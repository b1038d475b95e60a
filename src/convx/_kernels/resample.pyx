"""Kernel family 'resample' (being written; see the issue on modern CNN layers)."""
