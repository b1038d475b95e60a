"""Depthwise forward (3x3, 'same', bias + relu, float32) against a memory-bandwidth bound.

The bound is np.copyto of as many bytes as the kernel must move (read x, write y), on one
thread or split over two Python threads (copyto releases the GIL); kernel and copy calls
alternate in one process and each keeps its best time, so that other load on the machine
hits both alike. A measurement, not a test (nothing is asserted):

    python tests/kernels/depthwise_bandwidth.py [rounds]
"""

import sys
import threading
import time

import numpy as np

import convx
from convx._kernels import depthwise as D


SHAPES = [(32, 112, 112, 32, 1), (32, 112, 112, 64, 1), (32, 56, 56, 128, 1), (32, 28, 28, 256, 1),
          (32, 56, 56, 128, 2)]  # (N, H, W, C, stride): MobileNet-like layers at batch 32


def copy_seconds(src, dst, threads):
    """Time of reading src and writing dst, on ``threads`` (1 or 2) Python threads."""
    if threads == 1:
        start = time.perf_counter()
        np.copyto(dst, src)
        return time.perf_counter() - start
    half = src.size // 2
    workers = [threading.Thread(target=np.copyto, args=(d, s))
               for s, d in ((src[:half], dst[:half]), (src[half:], dst[half:]))]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - start


def main(rounds):
    rng = np.random.default_rng(0)
    for n, h, w, c, stride in SHAPES:
        x = rng.standard_normal((n, h, w, c)).astype(np.float32)
        kernel = rng.standard_normal((3, 3, c, 1)).astype(np.float32)
        bias = rng.standard_normal(c).astype(np.float32)
        y = D.depthwise_forward(x, kernel, bias, stride, "same", 1, "relu")
        moved = x.nbytes + y.nbytes
        src = np.ones(moved // 8, np.float32)
        dst = np.empty_like(src)
        for threads in (1, 2):
            convx.set_num_threads(threads)
            kernel_times, copy_times = [], []
            for _ in range(rounds):
                start = time.perf_counter()
                D.depthwise_forward(x, kernel, bias, stride, "same", 1, "relu", out=y)
                kernel_times.append(time.perf_counter() - start)
                copy_times.append(copy_seconds(src, dst, threads))
            ours, bound = moved / min(kernel_times) / 1e9, 2 * src.nbytes / min(copy_times) / 1e9
            print(f"{n}x{h}x{w}x{c} stride {stride}, {threads} thread(s): depthwise {min(kernel_times) * 1e3:6.2f} ms "
                  f"= {ours:5.1f} GB/s; copy bound {bound:5.1f} GB/s; ratio {ours / bound:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
