"""BackupAndRestore: a training process killed with SIGKILL (mid-epoch) and run again ends with the weights of an
uninterrupted run, bit for bit; the backup file survives a kill and is removed at the end; bad arguments."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import convx
from convx import callbacks

SCRIPT = os.path.join(os.path.dirname(__file__), "train_with_backup.py")


def _run(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=300)


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    reference = _run(tmp_path / "clean_backup", tmp_path / "clean.npy")
    assert reference.returncode == 0, reference.stderr
    assert not (tmp_path / "clean_backup").exists(), "the backup is deleted when training ends"

    killed = _run(tmp_path / "backup", tmp_path / "resumed.npy", 3, 2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (tmp_path / "backup" / "latest.training_state.npz").exists()
    assert not (tmp_path / "resumed.npy").exists()

    resumed = _run(tmp_path / "backup", tmp_path / "resumed.npy")
    assert resumed.returncode == 0, resumed.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "resumed.npy"), np.load(tmp_path / "clean.npy"))


def _model():
    model = convx.Sequential([convx.Input((4,)), convx.layers.Dense(3)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_resumes_at_the_epoch_after_the_backup(tmp_path, rng):
    x, y = rng.random((8, 4)), rng.random((8, 3))
    backup = callbacks.BackupAndRestore(tmp_path / "b", delete_checkpoint=False)
    model = _model()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[backup])
    seen = []
    history = _model().fit(x, y, epochs=5, verbose=0, callbacks=[
        callbacks.BackupAndRestore(tmp_path / "b"), callbacks.LambdaCallback(on_epoch_begin=lambda e, l: seen.append(e))])
    assert seen == [2, 3, 4] and len(history.history["loss"]) == 3


def test_corrupt_backup_falls_back_to_the_previous_one(tmp_path, rng):
    x, y = rng.random((8, 4)), rng.random((8, 3))
    _model().fit(x, y, epochs=3, verbose=0, callbacks=[
        callbacks.BackupAndRestore(tmp_path / "b", double_checkpoint=True, delete_checkpoint=False)])
    (tmp_path / "b" / "latest.training_state.npz").write_bytes(b"garbage")
    seen = []
    _model().fit(x, y, epochs=4, verbose=0, callbacks=[
        callbacks.BackupAndRestore(tmp_path / "b"), callbacks.LambdaCallback(on_epoch_begin=lambda e, l: seen.append(e))])
    assert seen == [2, 3]  # the .bkp holds the state after epoch 2 (1-based)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "latest.training_state.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="BackupAndRestore cannot read its backup"):
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.BackupAndRestore(tmp_path / "c")])


def test_bad_arguments():
    with pytest.raises(ValueError, match="Empty `backup_dir`"):
        callbacks.BackupAndRestore("")
    with pytest.raises(ValueError, match="Invalid value for argument `save_freq`"):
        callbacks.BackupAndRestore("x", save_freq="batch")
