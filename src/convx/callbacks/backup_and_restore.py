"""BackupAndRestore: resume an interrupted ``fit`` where it stopped, bit for bit."""

import json
import os
import shutil

import numpy as np

from convx import random as _random
from convx.callbacks.callback import Callback
from convx.distribution import _training_world, _writes_files

_STATE_FILE = "latest.training_state.npz"


class BackupAndRestore(Callback):
    """Back up the training state at each epoch end; when the same ``fit`` runs again after a crash
    or a kill, restore it and resume at the next epoch.

    The state is one file, replaced atomically: the weights (``get_weights`` order),
    the optimizer's variables (step counter, learning rate, slots), the random
    generators' states (the shared one behind shuffling and dropout, and layers'
    own), and the epoch. With ``save_freq="epoch"`` a resumed run ends with the
    same weights as an uninterrupted one, bit for bit.

    In a data-parallel job (``convx.distribution.DataParallel``) rank 0 alone
    writes the backup, holding every rank's generators; on resuming, rank 0
    reads it and broadcasts it, so the other ranks need no access to
    ``backup_dir`` and every rank resumes where the job stopped.

    Parameters
    ----------
    backup_dir : str or path
        Directory for the backup (created if needed); it must not be shared by
        concurrent runs.
    save_freq : "epoch" or int, default "epoch"
        An integer backs up every that many batches as well (a resume then
        restarts the interrupted epoch from the state at that batch, as Keras
        does, which is not an uninterrupted run's sequence).
    double_checkpoint : bool, default False
        Keep the previous backup as ``*.bkp`` and fall back to it when the latest
        cannot be read.
    delete_checkpoint : bool, default True
        Delete ``backup_dir`` when training ends normally.
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)):
            raise ValueError(f"Invalid value for argument `save_freq`. Received: save_freq={save_freq}. "
                             "Expected either 'epoch' or an integer value.")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq, self.double_checkpoint, self.delete_checkpoint = save_freq, double_checkpoint, delete_checkpoint
        self._state_path = os.path.join(self.backup_dir, _STATE_FILE)
        self._prev_state_path = self._state_path + ".bkp"
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._current_epoch = 0

    # ----- restore ------------------------------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        if not self.model.built:
            raise ValueError("To use the BackupAndRestore callback, your model must be built before you call "
                             f"`fit()`. Model {self.model} is unbuilt.")
        world = _training_world()
        state = self._read() if world is None or world.rank == 0 else None
        if world is not None:  # rank 0's backup (the only one written) restores every rank
            state = _share_state(world, state)
        if state is not None:
            self._restore(*state, rank=0 if world is None else world.rank)

    def _read(self):
        """``(metadata, weights, optimizer state)`` of the latest readable backup, or None without one."""
        try:
            return self._read_file(self._state_path)
        except (OSError, ValueError, KeyError) as error:
            if not os.path.exists(self._prev_state_path):
                raise ValueError(f"BackupAndRestore cannot read its backup {self._state_path!r}: {error}") from error
            return self._read_file(self._prev_state_path)

    @staticmethod
    def _read_file(path):
        if not os.path.exists(path):
            return None
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive["metadata"]))
            weights = [archive[f"weight_{i}"] for i in range(meta["weights"])]
            optimizer_state = [archive[f"optimizer_{i}"] for i in range(meta["optimizer"])]
        return meta, weights, optimizer_state

    def _restore(self, meta, weights, optimizer_state, rank):
        self.model.set_weights(weights)
        optimizer = self.model.optimizer
        if optimizer_state:
            # the optimizer's state lives on the model's flat weight buffer: bind it first, so that the
            # training step finds it bound and keeps the state restored here
            self.model._bind_flat()
            if not optimizer.built:
                optimizer.build(self.model.trainable_weights)
            optimizer.set_weights(optimizer_state)
        # a data-parallel backup holds every rank's generators (rank 0's alone when resumed on more ranks)
        ranks = meta.get("rank_rngs") or [{"rng": meta["rng"], "layer_rngs": meta["layer_rngs"]}]
        rngs = ranks[rank] if rank < len(ranks) else ranks[0]
        _random.generator().bit_generator.state = rngs["rng"]
        for generator, state in zip(self._layer_generators(), rngs["layer_rngs"]):
            generator.bit_generator.state = state
        self._current_epoch = meta["epoch"]
        self.model._initial_epoch = meta["epoch"]

    def _layer_generators(self):
        shared = _random.generator()
        layers = getattr(self.model, "_all_layers", None) or getattr(self.model, "layers", [])
        return [g for g in (getattr(layer, "_generator", None) for layer in layers) if g is not None and g is not shared]

    # ----- back up ------------------------------------------------------------------------------------------------

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if self.save_freq == "epoch":
            self._save()

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        added = batch + 1 if batch <= self._last_batch_seen else batch - self._last_batch_seen
        self._batches_seen_since_last_saving += added
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            self._save()

    def _rngs(self):
        return {"rng": _random.generator().bit_generator.state,
                "layer_rngs": [g.bit_generator.state for g in self._layer_generators()]}

    def _save(self):
        rngs, world = self._rngs(), _training_world()
        meta = dict(rngs)
        if world is not None:  # rank 0 writes the backup, with every rank's generators
            ranks = world.gather_text(json.dumps(rngs), "the gather of the ranks' random states for the backup")
            if world.rank != 0:
                return
            meta["rank_rngs"] = [json.loads(text) for text in ranks]
        os.makedirs(self.backup_dir, exist_ok=True)
        optimizer = self.model.optimizer
        optimizer_state = optimizer.variables if optimizer is not None and optimizer.built else []
        weights = self.model.get_weights()
        meta.update({"epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": len(weights),
                     "optimizer": len(optimizer_state)})
        arrays = {f"weight_{i}": w for i, w in enumerate(weights)}
        arrays.update({f"optimizer_{i}": np.asarray(v) for i, v in enumerate(optimizer_state)})
        arrays["metadata"] = np.array(json.dumps(meta))
        temporary = self._state_path + ".tmp"
        with open(temporary, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        if self.double_checkpoint and os.path.exists(self._state_path):
            shutil.copyfile(self._state_path, self._prev_state_path)
        os.replace(temporary, self._state_path)  # atomic: a kill leaves the old or the new backup, never half

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and _writes_files() and os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir)


def _share_state(world, state):
    """Rank 0's ``state`` (``(metadata, weights, optimizer state)`` or None) on every rank: the metadata as
    JSON with the arrays' shapes and dtypes, then each array."""
    shapes = None
    if world.rank == 0 and state is not None:
        shapes = [[list(a.shape), a.dtype.str] for a in state[1] + state[2]]
        text = json.dumps({"meta": state[0], "arrays": shapes})
    else:
        text = "null"
    shared = json.loads(world.broadcast_text(text, "the broadcast of the restored backup's metadata"))
    if shared is None:
        return None
    arrays = state[1] + state[2] if world.rank == 0 else [np.empty(shape, np.dtype(dtype))
                                                           for shape, dtype in shared["arrays"]]
    for array in arrays:
        if array.size:
            world.broadcast(array, "the broadcast of the restored backup")
    weights = shared["meta"]["weights"]
    return shared["meta"], arrays[:weights], arrays[weights:]
