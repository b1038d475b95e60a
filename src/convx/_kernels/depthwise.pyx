"""Kernel family 'depthwise' (being written; see the issue on modern CNN layers)."""
