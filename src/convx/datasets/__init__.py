"""Data sets with Keras's ``load_data()`` interface.

The loaders read local copies first (see each module for where they look),
then the cache (``$CONVX_HOME/datasets``, default ``~/.convx/datasets``), else
download Keras' files with ``convx.utils.get_file``. Nothing is unpickled: the
pickles inside Keras' CIFAR, IMDB and Reuters files are read by a restricted
reader that builds only data.
"""

from convx.datasets import cifar10, cifar100, fashion_mnist, imdb, mnist, reuters, rotten_tomatoes

__all__ = ["cifar10", "cifar100", "fashion_mnist", "imdb", "mnist", "reuters", "rotten_tomatoes"]
