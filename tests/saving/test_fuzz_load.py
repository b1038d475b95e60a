"""A fuzzer for load_model: Hypothesis mutates valid archives (bytes of the zip, values of config.json,
bytes of the HDF5 weights, the member list) and a worker process loads each one under a memory limit
(RLIMIT_AS) and a time bound. Every input must load or raise FileRejectedError: any other exception,
a crash, a hang or running out of memory fails with the input that caused it.

The normal run draws a bounded number of examples; the ``slow`` variant draws more, and
``CONVX_FUZZ_EXAMPLES=N`` sets the count of both (a long local campaign).
"""

import json
import os
import select
import subprocess
import sys
import textwrap
import zipfile

import pytest

from conftest import optional

optional("h5py", "keras")
optional("hypothesis", "test")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

MEMORY_LIMIT = 3 << 30  # address space above the worker's own at start: far below what a bomb would take
TIME_LIMIT_S = 60  # per input; generous for a loaded 2-core machine, a hang would be unbounded
_COUNT = os.environ.get("CONVX_FUZZ_EXAMPLES")
FAST = settings(max_examples=int(_COUNT or 100), deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SLOW = settings(max_examples=int(_COUNT or 1000), deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

_WORKER = textwrap.dedent("""
    import resource, sys
    import convx
    from convx import layers as L
    from convx.saving import FileRejectedError

    def address_space():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * resource.getpagesize()

    base = address_space() if sys.platform.startswith("linux") else 0
    resource.setrlimit(resource.RLIMIT_AS, (base + int(sys.argv[1]), resource.RLIM_INFINITY))
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            convx.models.load_model(line.strip())
            outcome = "loaded"
        except FileRejectedError:
            outcome = "rejected"
        except BaseException as error:
            outcome = f"ESCAPED {type(error).__name__}: {str(error)[:300]!r}"
        print(outcome, flush=True)
""")


class _Worker:
    """A process that loads the files it is sent, one per line, answering one line each."""

    def __init__(self):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen([sys.executable, "-c", _WORKER, str(MEMORY_LIMIT)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)
        assert self._answer() == "ready"

    def _answer(self):
        ready, _, _ = select.select([self.process.stdout], [], [], TIME_LIMIT_S)
        if not ready:
            self.process.kill()
            raise AssertionError(f"the loader took more than {TIME_LIMIT_S} s")
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise AssertionError(f"the loader process died (exit code {code}: a crash or the memory limit)")
        return line.strip()

    def load(self, path):
        self.process.stdin.write(f"{path}\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def worker():
    if not sys.platform.startswith("linux"):
        pytest.skip("address-space limit read from /proc (Linux)")
    started = _Worker()
    yield started
    started.close()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """Members of valid archives: a Sequential CNN and a functional model with a nested Sequential."""
    import convx
    from convx import layers as L

    folder = tmp_path_factory.mktemp("seeds")
    convx.utils.clear_session()
    cnn = convx.Sequential([convx.Input((6, 6, 1)), L.Conv2D(2, 3, activation="relu"), L.BatchNormalization(),
                            L.MaxPooling2D(), L.Flatten(), L.Dropout(0.2), L.Dense(3, activation="softmax")])
    cnn.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    inputs = convx.Input((4,))
    inner = convx.Sequential([convx.Input((4,)), L.Dense(3)])
    functional = convx.Model(inputs, L.Add()([inner(inputs), L.Dense(3)(inputs)]))
    archives = []
    for name, model in (("cnn", cnn), ("functional", functional)):
        model.save(folder / f"{name}.keras")
        with zipfile.ZipFile(folder / f"{name}.keras") as archive:
            archives.append({info.filename: archive.read(info) for info in archive.infolist()})
    return archives


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2 ** 70, max_value=2 ** 70) | st.floats() |
    st.sampled_from([0, -1, 10 ** 9, 10 ** 12, 2 ** 31, 2 ** 63, 1e308, "same", "valid", "relu", "Dense",
                     "Sequential", "Lambda", "../x", [None, 10 ** 9], [10 ** 6, 10 ** 6]]) |
    st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8)


def _paths(value, prefix=()):
    """Every (path, value) in a parsed JSON document."""
    yield prefix, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, prefix + (index,))


def _replace(document, path, new):
    if not path:
        return new
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return document


@st.composite
def _mutated_config(draw, members):
    config = json.loads(members["config.json"])
    paths = list(_paths(config))
    for _ in range(draw(st.integers(1, 3))):
        path, _ = paths[draw(st.integers(0, len(paths) - 1))]
        config = _replace(config, path, draw(_JSON_VALUES))
        paths = list(_paths(config))
    return {**members, "config.json": json.dumps(config).encode()}


@st.composite
def _mutated_bytes(draw, data):
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data)


@st.composite
def _mutated_members(draw, members):
    kind = draw(st.sampled_from(["drop", "duplicate", "extra", "swap"]))
    names = sorted(members)
    name = draw(st.sampled_from(names))
    if kind == "drop":
        return [(n, v) for n, v in members.items() if n != name]
    if kind == "duplicate":
        return list(members.items()) + [(name, members[name])]
    if kind == "extra":
        return list(members.items()) + [(draw(st.sampled_from(["assets/x", "../x", "a\\b", "/abs", "run.py"])),
                                         draw(st.binary(max_size=64)))]
    other = draw(st.sampled_from(names))
    return [(n, members[other] if n == name else v) for n, v in members.items()]


def _zip(path, items, compression=zipfile.ZIP_STORED):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicated names this writes on purpose
        with zipfile.ZipFile(path, "w", compression=compression) as archive:
            for name, value in items:
                archive.writestr(name, value)
    return path


@st.composite
def _inputs(draw, seeds):
    """A damaged archive: its path-independent description (kind, members or bytes)."""
    members = dict(draw(st.sampled_from(seeds)))
    kind = draw(st.sampled_from(["config", "weights", "members", "zip", "deflated_zip"]))
    if kind == "config":
        return kind, list(draw(_mutated_config(members)).items())
    if kind == "weights":
        return kind, list({**members, "model.weights.h5": draw(_mutated_bytes(members["model.weights.h5"]))}.items())
    if kind == "members":
        return kind, draw(_mutated_members(members))
    return kind, list(members.items())


def _check(worker, tmp_path, seeds, case, data):
    kind, items = case
    path = _zip(tmp_path / "fuzz.keras", items,
                zipfile.ZIP_DEFLATED if kind == "deflated_zip" else zipfile.ZIP_STORED)
    if kind.endswith("zip"):
        path.write_bytes(data.draw(_mutated_bytes(path.read_bytes())))
    outcome = worker.load(path)
    assert outcome in ("loaded", "rejected"), (kind, outcome)


@FAST
@given(data=st.data())
def test_mutated_archives_load_or_are_rejected(worker, tmp_path, seeds, data):
    _check(worker, tmp_path, seeds, data.draw(_inputs(seeds)), data)


@pytest.mark.slow
@SLOW
@given(data=st.data())
def test_mutated_archives_load_or_are_rejected_longer(worker, tmp_path, seeds, data):
    _check(worker, tmp_path, seeds, data.draw(_inputs(seeds)), data)


def test_the_worker_reports_what_escapes(worker, tmp_path):
    assert worker.load(tmp_path / "absent.keras").startswith("ESCAPED ValueError: 'File not found")
