"""``import convx`` stays NumPy-only: optional dependencies load only with the feature that uses them."""

import subprocess
import sys

OPTIONAL = ("h5py", "onnx", "onnxruntime", "PIL", "matplotlib", "sklearn", "mpi4py", "torch", "tensorflow",
            "keras", "hypothesis", "scipy", "pandas")


def test_import_convx_loads_no_optional_dependency():
    code = (
        "import sys, convx, convx.layers, convx.models, convx.utils, convx.optimizers, convx.callbacks;"
        f"print(','.join(m for m in {OPTIONAL!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "", f"import convx pulled in optional dependencies: {loaded}"
