"""convx.datasets.rotten_tomatoes: the shipped file, its checksum and the split by movie."""

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from convx.datasets import rotten_tomatoes

REPO_DATA = Path(__file__).resolve().parents[2] / "data" / "rotten_tomatoes"
# the sdist leaves data/ out: its tests skip these checks
pytestmark = pytest.mark.skipif(not (REPO_DATA / rotten_tomatoes.FILE_NAME).is_file(),
                                reason=f"no Rotten Tomatoes copy in {REPO_DATA} (an sdist leaves data/ out)")


def test_split_by_movie():
    (x_train, y_train), (x_test, y_test) = rotten_tomatoes.load_data(test_split=0.2, seed=1, path=REPO_DATA)
    assert len(x_train) + len(x_test) == 12808
    assert 0.2 <= len(x_test) / 12808 < 0.22
    assert x_train.dtype == object and isinstance(x_train[0], str) and y_train.dtype == np.int64
    assert int(y_train.sum() + y_test.sum()) == 7403  # fresh snippets
    rows = rotten_tomatoes._read(REPO_DATA)
    movie_of = {row["text"]: row["movie"] for row in rows}
    assert not {movie_of[t] for t in x_train} & {movie_of[t] for t in x_test}
    (again, _), _ = rotten_tomatoes.load_data(test_split=0.2, seed=1, path=REPO_DATA)
    np.testing.assert_array_equal(again, x_train)
    (other, _), _ = rotten_tomatoes.load_data(test_split=0.2, seed=2, path=REPO_DATA)
    assert len(other) != len(x_train) or not np.array_equal(other, x_train)


def test_checksum_and_arguments(tmp_path):
    source = REPO_DATA
    with gzip.open(source / rotten_tomatoes.FILE_NAME, "rb") as f:
        data = f.read()
    with gzip.open(tmp_path / rotten_tomatoes.FILE_NAME, "wb") as f:
        f.write(data.replace(b"fresh,", b"rotten,", 1))
    with pytest.raises(ValueError, match="SHA-256|sha256|checksum"):
        rotten_tomatoes.load_data(path=tmp_path)
    shutil.copy(source / rotten_tomatoes.FILE_NAME, tmp_path / rotten_tomatoes.FILE_NAME)
    assert len(rotten_tomatoes.load_data(path=tmp_path)[0][0]) > 10000
    with pytest.raises(FileNotFoundError, match="looked in"):
        rotten_tomatoes.load_data(path=tmp_path / "missing")
    with pytest.raises(ValueError, match="test_split"):
        rotten_tomatoes.load_data(test_split=1.0, path=REPO_DATA)
