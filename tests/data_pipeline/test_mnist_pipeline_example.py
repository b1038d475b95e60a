"""examples/mnist_pipeline.py: the seed model trained from a convx.data pipeline learns MNIST."""

import runpy
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
REPO_DATA = REPO_ROOT / "data" / "mnist"


@pytest.mark.skipif(not (REPO_DATA / "train-images-idx3-ubyte.gz").is_file(), reason="no MNIST copy in data/mnist")
def test_pipeline_example_learns(capsys):
    example = runpy.run_path(str(REPO_ROOT / "examples" / "mnist_pipeline.py"))
    accuracy = example["main"](["--train-samples", "2000", "--test-samples", "500", "--epochs", "1"])
    assert accuracy > 0.5  # chance is 0.1; one epoch on 2,000 images reached 0.70-0.84 across runs
    assert "Test accuracy" in capsys.readouterr().out
