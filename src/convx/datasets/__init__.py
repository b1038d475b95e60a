"""Data sets with Keras's ``load_data()`` interface.

The loaders read local copies first (see each module for where they look);
MNIST and Fashion-MNIST then use the cache (``$CONVX_HOME/datasets``, default
``~/.convx/datasets``) and download Keras' files with ``convx.utils.get_file``;
nothing is unpickled.
"""

from convx.datasets import fashion_mnist, mnist, rotten_tomatoes

__all__ = ["fashion_mnist", "mnist", "rotten_tomatoes"]
