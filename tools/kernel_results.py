"""Dump or compare the results of a fixed set of convx kernel calls.

Used by ``.ci/run`` to check that the serial build (``CONVX_NO_OPENMP=1``) and
the OpenMP build give bit-identical numbers::

    python tools/kernel_results.py dump omp.npz --threads 3 --expect-openmp yes
    python tools/kernel_results.py dump serial.npz --expect-openmp no
    python tools/kernel_results.py compare omp.npz serial.npz

Inputs come from a fixed seed and are large enough for every kernel to take its
parallel path. ``dump`` records ``openmp_enabled()`` beside the arrays, so that
``compare`` can also say which build each file came from.
"""

import argparse
import sys

import numpy as np


def _kernel_calls(dtype):
    """Yield (name, result) for each kernel call, all in ``dtype``."""
    from convx._kernels import activations, conv, dense, depthwise, gemm, losses, merge, norm, optimizers, pool
    from convx._kernels import resample

    rng = np.random.default_rng(20240601)

    def rand(*shape):
        return rng.standard_normal(shape).astype(dtype)

    yield "gemm", gemm.gemm(rand(150, 130), rand(170, 130), trans_b=True)

    x, k, b = rand(8, 20, 20, 8), rand(3, 3, 8, 16), rand(16)
    yield "conv_forward", conv.conv2d_forward(x, k, b, padding="same", activation="relu")
    dz = rand(8, 9, 9, 16)
    dx, dk, db = conv.conv2d_backward(x, k, dz, strides=(2, 2))
    yield "conv_backward_dx", dx
    yield "conv_backward_dkernel", dk
    yield "conv_backward_dbias", db

    # Winograd forward (3x3, stride 1, >= 16 channels, 16 x 49 tiles), its pooled form, and a
    # backward pass whose dz has all-zero rows (the row-skipping path)
    x, k, b = rand(16, 14, 14, 16), rand(3, 3, 16, 16), rand(16)
    yield "conv_forward_winograd", conv.conv2d_forward(x, k, b, padding="same", activation="relu")
    yield "conv_maxpool_forward", conv.conv2d_maxpool_forward(x, k, b, padding="same", activation="relu")
    dz = rand(16, 14, 14, 16) * (rng.random((16, 14, 14, 1)) < 0.5)
    for name, value in zip(("dx", "dkernel", "dbias"), conv.conv2d_backward(x, k, dz, padding="same")):
        yield "conv_backward_sparse_" + name, value

    # a first layer trained fused with its max pooling
    x, k, b = rand(16, 28, 28, 1), rand(3, 3, 1, 32), rand(32)
    pooled = conv.conv2d_maxpool_forward(x, k, b, activation="relu")
    dk, db = conv.conv2d_maxpool_backward(x, k, rand(*pooled.shape), pooled, b, activation="relu")
    yield "conv_maxpool_backward_dkernel", dk
    yield "conv_maxpool_backward_dbias", db

    # inner layers trained fused with their max pooling, through the maxima's codes: Winograd
    # (2x2 windows) and the direct product (3x2 windows); rows listed and gathered in parallel
    x, k, b = np.maximum(rand(32, 13, 13, 32), 0), rand(3, 3, 32, 64), rand(64)
    for pool_size in ((2, 2), (3, 2)):
        shape = conv.conv2d_maxpool_forward(x, k, b, activation="relu", pool_size=pool_size).shape
        codes = np.empty(shape, np.uint8)
        pooled = conv.conv2d_maxpool_forward(x, k, b, activation="relu", pool_size=pool_size, codes=codes)
        tag = f"conv_maxpool_codes_{pool_size[0]}x{pool_size[1]}_"
        yield tag + "pooled", pooled
        yield tag + "codes", codes
        grads = conv.conv2d_maxpool_backward_codes(x, k, rand(*shape), pooled, codes, activation="relu",
                                                   pool_size=pool_size)
        for name, value in zip(("dx", "dkernel", "dbias"), grads):
            yield tag + name, value

    x, k, b = rand(64, 300), rand(300, 128), rand(128)
    yield "dense_forward", dense.dense_forward(x, k, b, activation="tanh")
    dx, dk, db = dense.dense_backward(x, k, rand(64, 128))
    yield "dense_backward_dx", dx
    yield "dense_backward_dkernel", dk
    yield "dense_backward_dbias", db

    x = rand(8, 24, 24, 16)
    y, argmax = pool.max_pool2d_forward(x, (2, 2))
    yield "max_pool_forward", y
    yield "max_pool_argmax", argmax
    yield "max_pool_backward", pool.max_pool2d_backward(rand(*y.shape), argmax, x.shape)
    relu_x = np.maximum(x, 0)
    yield "max_pool_backward_windows", pool.max_pool2d_backward_windows(
        rand(*y.shape), relu_x, pool.max_pool2d_forward(relu_x, (2, 2), with_argmax=False)[0], (2, 2),
        through_relu=True)
    yield "avg_pool_forward", pool.avg_pool2d_forward(x, (3, 3), (2, 2), "same")

    logits, labels = rand(512, 10), rng.integers(0, 10, 512)
    for name, result in [
        ("sparse_softmax_ce", losses.sparse_softmax_cross_entropy(logits, labels)),
        ("mse", losses.mean_squared_error(logits, rand(512, 10))),
    ]:
        yield name + "_losses", result[0]
        yield name + "_grad", result[1]

    param, grad = rand(200_000), rand(200_000)
    m, v = np.zeros_like(param), np.zeros_like(param)
    for step in (1, 2, 3):
        optimizers.adam_update(param, grad, m, v, 1e-3, 0.9, 0.999, 1e-7, step)
    yield "adam_param", param
    yield "adam_m", m
    yield "adam_v", v

    # merge layers over 256 x 272 = 69632 elements (parallel from 65536): three inputs where
    # the order matters, two where it cannot; concatenation split over its 256 rows
    xs, dy = [rand(256, 272) for _ in range(3)], rand(256, 272)
    for mode in ("add", "subtract", "multiply", "average", "maximum", "minimum"):
        inputs = xs if mode in ("multiply", "maximum", "minimum") else xs[:2]
        yield f"merge_{mode}_forward", merge.merge_forward(inputs, mode)
        for i, grad in enumerate(merge.merge_backward(dy, inputs, mode)):
            yield f"merge_{mode}_backward_{i}", grad
    yield "concat_forward", merge.concat_forward(xs, axis=1)
    for i, part in enumerate(merge.concat_backward(rand(256, 816), [272, 272, 272], axis=1)):
        yield f"concat_backward_{i}", part

    # normalization over 64 x 8 x 8 x 32 (parallel row blocks; sums in a fixed block order)
    x, gamma, beta = rand(64, 8, 8, 32), rand(32), rand(32)
    y, mean, invstd = norm.batch_norm_train(x, gamma, beta)
    yield "batch_norm_train", y
    for name, value in zip(("dx", "dgamma", "dbeta"), norm.batch_norm_backward(x, rand(*x.shape), mean, invstd, gamma)):
        yield "batch_norm_backward_" + name, value
    yield "layer_norm_forward", norm.layer_norm_forward(x, gamma, beta)[0]
    yield "group_norm_forward", norm.group_norm_forward(x, gamma, beta, 8)[0]

    # depthwise 3x3 'same' with multiplier 2, and a transposed convolution (stride 2)
    x, k, b = rand(16, 20, 20, 16), rand(3, 3, 16, 2), rand(32)
    yield "depthwise_forward", depthwise.depthwise_forward(x, k, b, padding="same", activation="relu")
    for name, value in zip(("dx", "dkernel", "dbias"),
                           depthwise.depthwise_backward(x, k, rand(16, 20, 20, 32), padding="same")):
        yield "depthwise_backward_" + name, value
    yield "conv_transpose_forward", depthwise.conv_transpose_forward(rand(8, 10, 10, 16), rand(3, 3, 8, 16), (20, 20),
                                                                     rand(8), strides=(2, 2), padding="same")

    # resize and the projective sampler (rotations), forward and backward
    x = rand(8, 24, 24, 16)
    yield "resize_forward", resample.resize_forward(x, (37, 41))
    yield "resize_backward", resample.resize_backward(rand(8, 37, 41, 16), (24, 24))
    angles = rng.uniform(-0.5, 0.5, 8)
    transforms = np.zeros((8, 8), dtype=dtype)
    transforms[:, 0], transforms[:, 1], transforms[:, 3], transforms[:, 4] = (np.cos(angles), -np.sin(angles),
                                                                              np.sin(angles), np.cos(angles))
    yield "transform_forward", resample.transform_forward(x, transforms)
    yield "transform_backward", resample.transform_backward(rand(8, 24, 24, 16), transforms, (24, 24))

    # the new activation codes (vector kernels in float32)
    x = rand(300, 300)
    for name in ("gelu", "silu", "mish", "elu", "softplus", "leaky_relu"):
        yield f"act_{name}_forward", activations.activation_forward(x, name)

    # embedding gather and scatter-add (many repeated rows), above the parallel threshold
    from convx._kernels import embedding

    idx = embedding.embedding_indices(rng.integers(0, 500, 4096) * (rng.random(4096) < 0.7), 3000)
    table, dy = rand(3000, 64), rand(4096, 64)
    yield "embedding_forward", embedding.embedding_forward(table, idx)
    yield "embedding_backward", embedding.embedding_backward(dy, idx, 3000)[0]
    values, _, count = embedding.embedding_backward(dy, idx, 3000, dense=False)
    yield "embedding_backward_sparse", values[:count]


def dump(path, threads, expect_openmp=None):
    """Run every kernel call in float32 and float64 and save the results."""
    import convx._kernels.threads as cx_threads

    if expect_openmp is not None and cx_threads.openmp_enabled() != expect_openmp:
        sys.exit(f"openmp_enabled() is {cx_threads.openmp_enabled()}, expected {expect_openmp}")
    if threads is not None:
        cx_threads.set_num_threads(threads)
    results = {
        f"{np.dtype(dtype).name}/{name}": np.asarray(value)
        for dtype in (np.float32, np.float64)
        for name, value in _kernel_calls(dtype)
    }
    results["openmp_enabled"] = np.array(cx_threads.openmp_enabled())
    np.savez(path, **results)
    print(f"{path}: {len(results) - 1} arrays, openmp_enabled={cx_threads.openmp_enabled()}, "
          f"threads={cx_threads.get_num_threads()}")


def compare(path_a, path_b):
    """Return the names of arrays that differ in any bit (or exist in one file only)."""
    with np.load(path_a) as a, np.load(path_b) as b:
        print(f"{path_a}: openmp_enabled={bool(a['openmp_enabled'])}; "
              f"{path_b}: openmp_enabled={bool(b['openmp_enabled'])}")
        names = (set(a.files) | set(b.files)) - {"openmp_enabled"}
        differ = []
        for name in sorted(names):
            same = (name in a.files and name in b.files
                    and a[name].dtype == b[name].dtype and a[name].shape == b[name].shape
                    and a[name].tobytes() == b[name].tobytes())
            if not same:
                differ.append(name)
        print(f"compared {len(names)} arrays, {len(differ)} differ")
        return differ


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_dump = sub.add_parser("dump", help="run the kernels and save their results")
    p_dump.add_argument("path")
    p_dump.add_argument("--threads", type=int, default=None, help="convx.set_num_threads value")
    p_dump.add_argument("--expect-openmp", choices=["yes", "no"], default=None,
                        help="fail unless openmp_enabled() says so")
    p_cmp = sub.add_parser("compare", help="exit 1 unless both files are bit-identical")
    p_cmp.add_argument("path_a")
    p_cmp.add_argument("path_b")
    args = parser.parse_args(argv)
    if args.command == "dump":
        expect = None if args.expect_openmp is None else args.expect_openmp == "yes"
        dump(args.path, args.threads, expect)
        return 0
    differ = compare(args.path_a, args.path_b)
    for name in differ:
        print(f"  DIFFERS: {name}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
