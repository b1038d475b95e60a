"""The input-pipeline cases (issue 16), shared by the convx and TensorFlow workers.

``pipeline``: the seed model's fit fed by ``from_tensor_slices(...).shuffle(...).map(cheap,
num_parallel_calls=AUTOTUNE).batch(32).prefetch(AUTOTUNE)`` against fit on the same in-memory
arrays, chunks of each alternating in one process (both see the same drifts of the machine).

``imagedir``: one full pass over a directory of PNG files with ``image_dataset_from_directory``
(convx, or ``tf.keras.utils``), from the call to the last batch, imports excluded.
"""

import os
import statistics
import time
from pathlib import Path

import _common

PNG_COUNT, PNG_CLASSES, PNG_SIZE = 10000, 10, 32


def make_png_tree(root, count=PNG_COUNT, classes=PNG_CLASSES, size=PNG_SIZE):
    """``count`` random RGB PNGs of ``size`` x ``size`` in ``classes`` subdirectories (made once)."""
    import numpy as np
    from PIL import Image

    root = Path(root)
    marker = root / f".complete-{count}-{classes}-{size}"
    if marker.exists():
        return root
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"class_{i % classes:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        # smooth random images compress like photos do, unlike white noise
        base = rng.integers(0, 256, (size // 4, size // 4, 3), dtype=np.uint8)
        image = np.kron(base, np.ones((4, 4, 1), dtype=np.uint8))
        Image.fromarray(image).save(folder / f"img_{i:05d}.png")
    marker.touch()
    return root


def pipeline(spec, import_convx, seed_model):
    convx = import_convx(spec["threads"])
    from convx.data import AUTOTUNE, Dataset

    batch, steps, chunks = spec["batch"], spec["steps"], spec["chunks"]
    n = batch * steps
    x, y = _common.load_mnist(spec["data"], n)
    raw = (x * 255.0).round().astype("uint8")  # the pipeline decodes bytes: its map does the scaling

    def cheap(image, label):
        return image.astype("float32") * (1.0 / 255.0), label

    dataset = (Dataset.from_tensor_slices((raw, y)).shuffle(n).map(cheap, num_parallel_calls=AUTOTUNE)
               .batch(batch).prefetch(AUTOTUNE))
    model = seed_model(convx)
    runs = {"arrays": lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0),
            "pipeline": lambda: model.fit(dataset, epochs=1, verbose=0)}
    for run in runs.values():  # warm-up: plans, buffers, threads
        run()
    times = {name: [] for name in runs}
    for chunk in range(chunks):
        for name in (("arrays", "pipeline") if chunk % 2 == 0 else ("pipeline", "arrays")):
            t0 = time.perf_counter()
            runs[name]()
            times[name].append((time.perf_counter() - t0) / steps)
    ratios = [p / a for p, a in zip(times["pipeline"], times["arrays"])]
    return {"ms_per_step": {name: 1e3 * statistics.median(v) for name, v in times.items()},
            "ratio": statistics.median(ratios), "chunks": chunks, "steps": steps}


def imagedir(spec, load):
    """Seconds for ``load(directory)`` to give its last batch (``load`` returns an iterable of batches)."""
    t0 = time.perf_counter()
    images = 0
    for x, _ in load(spec["dir"]):
        images += len(x)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "images": images, "images_per_s": images / seconds}


def imagedir_convx(spec):
    import convx

    convx.set_num_threads(spec["threads"])
    size = (spec["size"], spec["size"])
    return imagedir(spec, lambda d: convx.utils.image_dataset_from_directory(
        d, image_size=size, batch_size=spec["batch"], seed=0, verbose=False))


def imagedir_tf(spec, import_tf):
    tf = import_tf(spec["threads"])
    size = (spec["size"], spec["size"])
    return imagedir(spec, lambda d: tf.keras.utils.image_dataset_from_directory(
        d, image_size=size, batch_size=spec["batch"], seed=0, verbose=False).as_numpy_iterator())


def png_directory():
    return os.environ.get("CONVX_BENCH_PNG_DIR", "/tmp/convx-bench-pngs")
