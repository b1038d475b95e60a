"""convx.show_config(): what it reports matches the running build."""

import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import convx
from convx import _config
from convx._kernels import gemm, threads


@pytest.fixture
def report():
    out = io.StringIO()
    _config.show_config(file=out)
    return out.getvalue()


def _field(report, name):
    match = re.search(rf"^{re.escape(name)}:\s+(.*)$", report, flags=re.MULTILINE)
    assert match, f"no {name!r} line in:\n{report}"
    return match.group(1)


def test_exported_from_package():
    assert convx.show_config is _config.show_config


def test_versions(report):
    assert _field(report, "convx") == convx.__version__
    assert _field(report, "NumPy") == np.__version__
    assert re.match(r"3\.\d+\.\d+ ", _field(report, "Python"))


def test_build_information_recorded(report):
    # setup.py writes convx/_build_info.py beside every build it makes.
    compiler = _field(report, "C compiler")
    assert not compiler.startswith("unknown"), compiler
    flags = _field(report, "compile flags")
    assert ("openmp" in flags.lower()) == threads.openmp_enabled(), flags


def test_openmp_and_threads(report):
    assert _field(report, "OpenMP enabled").startswith("yes" if threads.openmp_enabled() else "no")
    assert int(_field(report, "threads")) == convx.get_num_threads()


def test_thread_count_follows_set_num_threads():
    previous = convx.get_num_threads()
    try:
        convx.set_num_threads(3)
        assert _config.config_info()["num_threads"] == 3
    finally:
        convx.set_num_threads(previous)


def test_openmp_runtime_listed_when_enabled():
    pytest.importorskip("threadpoolctl", reason="threadpoolctl lists the loaded OpenMP runtime")
    runtimes = _config.config_info()["openmp_runtimes"]
    if threads.openmp_enabled():
        assert any(re.search(r"gomp|omp|vcomp", name) for name in runtimes), runtimes
    else:
        assert isinstance(runtimes, list)


def test_simd_variant(report):
    expected = gemm.simd_variant() if hasattr(gemm, "simd_variant") else "unknown"
    assert _field(report, "SIMD variant") == expected
    assert expected != "unknown"


def test_default_stream_is_stdout(capsys):
    _config.show_config()
    assert _field(capsys.readouterr().out, "convx") == convx.__version__


@pytest.mark.parametrize("user_env, expected", [
    ({}, {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "3000"}),
    ({"OMP_WAIT_POLICY": "ACTIVE"}, {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": None}),
    ({"GOMP_SPINCOUNT": "0"}, {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "0"}),
])
def test_openmp_waits_briefly_unless_the_user_chose(user_env, expected):
    """A fresh interpreter: convx sets a short spin then sleep, and never overrides the user's choice."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(user_env)
    code = ("import json, os, convx; "
            "print(json.dumps({k: os.environ.get(k) for k in ('OMP_WAIT_POLICY', 'GOMP_SPINCOUNT')}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == expected
