"""convx: fast CPU convolutional networks with a Keras-style API."""

__version__ = "0.1.0.dev0"

from convx._kernels.threads import get_num_threads, set_num_threads

__all__ = ["get_num_threads", "set_num_threads", "__version__"]
