"""PyTorch reference side of the benchmarks; run by benchmarks/run.py.

Training uses PyTorch's default (NCHW) memory format, Adam and a plain loop with
CrossEntropyLoss on logits; the conv kernels use channels-last tensors.
"""

import time

import _common


def _import_torch(threads):
    import torch

    torch.set_num_threads(threads)
    # inter-op pool: only used by forked/async ops, kept at the same budget
    torch.set_num_interop_threads(threads)
    return torch


def _seed_model(torch):
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, _common.SEED_CLASSES),
    )


def _model(torch, name):
    """The `residual` or `inception` network of _common.keras_model as an nn.Module (NCHW, logits out).

    Keras' 'same' padding of an odd kernel k is k // 2 on every side; for the stride-2 3x3 convolutions
    TensorFlow pads (0, 1) instead of (1, 1), which gives the same 16x16 / 8x8 output sizes and cost.
    """
    nn, relu = torch.nn, torch.relu
    torch.manual_seed(0)

    def same(c_in, c_out, k, stride=1):
        return nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2)

    class ResidualBlock(nn.Module):
        def __init__(self, c_in, filters, stride):
            super().__init__()
            self.conv1 = same(c_in, filters, 3, stride)
            self.conv2 = same(filters, filters, 3)
            self.shortcut = nn.Conv2d(c_in, filters, 1, stride=stride)  # 1x1 projection, 'valid'

        def forward(self, x):
            return relu(self.conv2(relu(self.conv1(x))) + self.shortcut(x))

    class Branches(nn.Module):
        def __init__(self, c_in):
            super().__init__()
            self.branches = nn.ModuleList(same(c_in, f, k) for f, k in _common.INCEPTION_BRANCHES)

        def forward(self, x):
            return torch.cat([relu(branch(x)) for branch in self.branches], dim=1)

    def conv_bn(c_in, c_out, k, stride, act):
        # Keras' BatchNormalization: epsilon 1e-3, moving averages with momentum 0.99 (torch: 0.01)
        body = [nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False),
                nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.01)]
        return nn.Sequential(*body, *({"relu": [nn.ReLU()], "relu6": [nn.ReLU6()], None: []}[act]))

    class BNBlock(nn.Module):
        def __init__(self, c_in, filters, stride):
            super().__init__()
            self.body = nn.Sequential(conv_bn(c_in, filters, 3, stride, "relu"), conv_bn(filters, filters, 3, 1, None))
            projection = stride != 1 or c_in != filters
            self.shortcut = conv_bn(c_in, filters, 1, stride, None) if projection else nn.Identity()

        def forward(self, x):
            return relu(self.body(x) + self.shortcut(x))

    c_in = _common.MODEL_INPUT[2]
    if name == "residual":
        body, width = [same(c_in, 32, 3), nn.ReLU()], 32
        for filters, stride in _common.RESIDUAL_BLOCKS:
            body.append(ResidualBlock(width, filters, stride))
            width = filters
    elif name == "inception":
        body = [same(c_in, _common.INCEPTION_STEM, 3), nn.ReLU(), nn.MaxPool2d(2),
                Branches(_common.INCEPTION_STEM), nn.MaxPool2d(2)]
        width = sum(f for f, _ in _common.INCEPTION_BRANCHES)
    elif name == "resnet":
        body, width = [conv_bn(c_in, 32, 3, 1, "relu")], 32
        for filters, stride in _common.RESIDUAL_BLOCKS:
            body.append(BNBlock(width, filters, stride))
            width = filters
    elif name == "mobilenet":
        body, width = [conv_bn(c_in, 32, 3, 2, "relu6")], 32
        for filters, stride in _common.MOBILENET_BLOCKS:
            body += [nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=width, bias=False),
                     nn.BatchNorm2d(width, eps=1e-3, momentum=0.01), nn.ReLU6(), conv_bn(width, filters, 1, 1, "relu6")]
            width = filters
    elif name == "vgg":
        body, width = [], c_in
        for filters in _common.VGG_STAGES:
            body += [same(width, filters, 3), nn.ReLU(), same(filters, filters, 3), nn.ReLU(), nn.MaxPool2d(2)]
            width = filters
        side = _common.MODEL_INPUT[0] // 2 ** len(_common.VGG_STAGES)
        return nn.Sequential(*body, nn.Flatten(), nn.Linear(width * side * side, 128), nn.ReLU(),
                             nn.Linear(128, _common.MODEL_CLASSES))
    else:
        raise ValueError(name)
    # global average pooling, then the classifier (softmax folded into CrossEntropyLoss)
    return nn.Sequential(*body, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, _common.MODEL_CLASSES))


def _nchw(torch, x):
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


def _trainer(torch, x, y, batch, model=None):
    """run_steps(first, count): `count` training steps from batch `first` of (x, y); returns the last loss.

    ``model``: the network to train (default: a new seed model)."""
    model = _seed_model(torch) if model is None else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def run_steps(first, count):
        loss = None
        for step in range(first, first + count):
            xb, yb = x[step * batch:(step + 1) * batch], y[step * batch:(step + 1) * batch]
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
        return loss.item()

    return run_steps


def train(spec):
    torch = _import_torch(spec["threads"])
    batch, steps, warmup = spec["batch"], spec["steps"], spec["warmup"]
    x, y = _common.load_mnist(spec["data"], batch * (warmup + steps))
    x, y = _nchw(torch, x), torch.from_numpy(y)
    baseline = _common.rss_mb()
    run_steps = _trainer(torch, x, y, batch)
    run_steps(0, warmup)
    t0 = time.perf_counter()
    final_loss = run_steps(warmup, steps)
    seconds = time.perf_counter() - t0
    return _common.train_result(seconds, steps, batch, final_loss, baseline)


def threads(spec):
    """1 vs 2 threads alternating in this process (see _common.alternate_threads)."""
    torch = _import_torch(2)
    batch, steps, chunks = spec["batch"], spec["steps"], spec["chunks"]
    x, y = _common.load_mnist(spec["data"], batch * steps * (2 * chunks + 1))
    run_steps = _trainer(torch, _nchw(torch, x), torch.from_numpy(y), batch)
    return _common.alternate_threads(lambda i: run_steps(i * steps, steps), torch.set_num_threads, chunks, steps)


def infer(spec):
    torch = _import_torch(spec["threads"])
    model = _seed_model(torch).eval()
    x_all, _ = _common.load_mnist(spec["data"], max(b for b, _ in spec["points"]), split="test")
    x_all = _nchw(torch, x_all)
    points = {}
    with torch.inference_mode():
        # torch has no separate predict API: both rows time the module call
        for batch, api in spec["points"]:
            x = x_all[:batch]
            points[f"{batch}/{api}"] = _common.time_calls(lambda x=x: model(x), spec["iters"], spec["max_seconds"],
                                                          warmup=2)
    return {"points": points}


def conv(spec):
    torch = _import_torch(spec["threads"])
    cl = torch.channels_last
    gen = torch.Generator().manual_seed(0)
    layers = {}
    for name in spec["layers"]:
        n, h, w, c_in, c_out, k, padding, need_dx = _common.CONV_LAYERS[name]
        pad = k // 2 if padding == "same" else 0
        x = torch.randn(n, c_in, h, w, generator=gen).contiguous(memory_format=cl)
        weight = (torch.randn(c_out, c_in, k, k, generator=gen) * 0.1).contiguous(memory_format=cl)
        bias = torch.randn(c_out, generator=gen)
        with torch.inference_mode():
            y = torch.nn.functional.conv2d(x, weight, bias, padding=pad)
            dz = torch.randn(y.shape, generator=gen).contiguous(memory_format=cl)

            def forward():
                return torch.nn.functional.conv2d(x, weight, bias, padding=pad)

            def backward():
                return torch.ops.aten.convolution_backward(
                    dz, x, weight, [c_out], [1, 1], [pad, pad], [1, 1], False, [0, 0], 1, [need_dx, True, True])

            layers[name] = {"fwd": _common.time_calls(forward, spec["iters"], spec["max_seconds"]),
                            "bwd": _common.time_calls(backward, spec["iters"], spec["max_seconds"])}
    return {"layers": layers, "memory_format": "channels_last"}


def gemm(spec):
    torch = _import_torch(spec["threads"])
    gen = torch.Generator().manual_seed(0)
    sizes = {}
    for n in spec["sizes"]:
        a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
        c = torch.empty(n, n)
        sizes[str(n)] = _common.time_calls(lambda: torch.mm(a, b, out=c), spec["iters"], spec["max_seconds"])
    return {"sizes": sizes}


def model_case(spec):
    """The `residual` and `inception` cases: the train case's loop at spec['batch'], then the module
    call under inference_mode on spec['predict_batch'] other images."""
    torch = _import_torch(spec["threads"])
    batch, steps, warmup = spec["batch"], spec["steps"], spec["warmup"]
    x, y = _common.synthetic_images(batch * (warmup + steps), seed=0)
    x_pred, _ = _common.synthetic_images(spec["predict_batch"], seed=1)
    x, y, x_pred = _nchw(torch, x), torch.from_numpy(y), _nchw(torch, x_pred)
    baseline = _common.rss_mb()
    model = _model(torch, spec["case"])
    run_steps = _trainer(torch, x, y, batch, model)
    run_steps(0, warmup)
    t0 = time.perf_counter()
    final_loss = run_steps(warmup, steps)
    seconds = time.perf_counter() - t0
    train = _common.train_result(seconds, steps, batch, final_loss, baseline)
    model.eval()
    with torch.inference_mode():
        predict = _common.time_calls(lambda: model(x_pred), spec["iters"], spec["max_seconds"], warmup=2)
    # Keras counts BatchNormalization's moving statistics as (non-trainable) weights: count torch's buffers too
    buffers = sum(b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked"))
    return {"train": train, "predict": predict, "params": sum(p.numel() for p in model.parameters()) + buffers}


def _text_cnn(torch):
    """_common.keras_text_cnn as an nn.Module (NCL convolutions, logits out: BCEWithLogitsLoss trains it)."""
    nn = torch.nn

    class TextCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(_common.TEXT_VOCAB, _common.TEXT_EMBEDDING)
            self.convs = nn.ModuleList(nn.Conv1d(_common.TEXT_EMBEDDING, _common.TEXT_FILTERS, w)
                                       for w in _common.TEXT_WIDTHS)
            self.dropout = nn.Dropout(0.5)
            self.dense = nn.Linear(_common.TEXT_FILTERS * len(_common.TEXT_WIDTHS), 1)

        def forward(self, x):
            e = self.embedding(x).transpose(1, 2)
            pooled = [conv(e).relu().amax(dim=2) for conv in self.convs]
            return self.dense(self.dropout(torch.cat(pooled, dim=1)))

    torch.manual_seed(0)
    return TextCNN()


def text_cnn(spec):
    """The `textcnn` case: Adam + BCEWithLogitsLoss steps at spec['batch'], then the module call under
    inference_mode (with the sigmoid, as predict returns probabilities) on spec['predict_batch'] sequences."""
    torch = _import_torch(spec["threads"])
    batch, steps, warmup = spec["batch"], spec["steps"], spec["warmup"]
    x, y = _common.synthetic_tokens(batch * (warmup + steps), seed=0)
    x_pred, _ = _common.synthetic_tokens(spec["predict_batch"], seed=1)
    x, y, x_pred = torch.from_numpy(x).long(), torch.from_numpy(y)[:, None], torch.from_numpy(x_pred).long()
    baseline = _common.rss_mb()
    model = _text_cnn(torch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def run_steps(first, count):
        loss = None
        for step in range(first, first + count):
            rows = slice(step * batch, (step + 1) * batch)
            optimizer.zero_grad()
            loss = loss_fn(model(x[rows]), y[rows])
            loss.backward()
            optimizer.step()
        return loss.item()

    run_steps(0, warmup)
    t0 = time.perf_counter()
    final_loss = run_steps(warmup, steps)
    seconds = time.perf_counter() - t0
    train = _common.train_result(seconds, steps, batch, final_loss, baseline)
    model.eval()
    with torch.inference_mode():
        predict = _common.time_calls(lambda: torch.sigmoid(model(x_pred)), spec["iters"], spec["max_seconds"],
                                     warmup=2)
    return {"train": train, "predict": predict, "params": sum(p.numel() for p in model.parameters())}


def import_time(spec):
    return _common.time_imports(["torch"])


def versions():
    import numpy
    import torch

    return {"torch": torch.__version__, "numpy": numpy.__version__,
            "torch_parallel": torch.__config__.parallel_info().splitlines()[0:3]}


if __name__ == "__main__":
    _common.run({"train": train, "threads": threads, "infer": infer, "conv": conv, "gemm": gemm,
                 "import": import_time, "textcnn": text_cnn, **{case: model_case for case in _common.MODEL_CASES}}, versions)
