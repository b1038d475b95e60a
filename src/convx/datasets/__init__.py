"""Offline data sets with Keras's ``load_data()`` interface.

Nothing is downloaded: the loaders read files from disk (see each module
for where they look) and verify them.
"""

from convx.datasets import fashion_mnist, mnist, rotten_tomatoes

__all__ = ["fashion_mnist", "mnist", "rotten_tomatoes"]
