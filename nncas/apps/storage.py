"""Files written whole or not at all: atomic replacement, text, torch objects, and weights in HDF5.

Every writer works on a temporary file beside the target and moves it into place with
``os.replace``, so a reader (or a run resumed after an interruption) never sees a half-written
file. Weights are stored as ``/state/<name>``, one dataset per ``state_dict`` entry, with the
metadata as file attributes (str, int or float values).
"""
from __future__ import annotations

import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
import torch

from ..errors import InputError
from ..tensors import to_numpy


def check_output_path(path: str | Path, what: str, inputs=()) -> Path:
    """Refuse, before any long work, an output path that cannot be written: a folder, a device or
    other file that is not a regular one, a folder that cannot be created or written (found by
    creating and removing a file beside the target, as :func:`replaced_atomically` will), or
    one of the ``inputs`` (which would be overwritten)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder; give a file name.")
    if path.exists() and not path.is_file():
        raise InputError(f"{what} {path} is not a regular file (a device, pipe or socket); give a file name.")
    for source in inputs:
        if source is not None and Path(source).exists() and path.exists() and path.resolve() == Path(source).resolve():
            raise InputError(f"{what} {path} is also an input; writing it would destroy that input.")
    if path.parent.exists() and not path.parent.is_dir():
        raise InputError(f"{what} {path}: {path.parent} is a file, not a folder.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{what} {path}: cannot create its folder ({err.strerror}).") from err
    probe = _temporary_name(path)
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as err:
        raise InputError(f"{what} {path} cannot be written ({err.strerror}); choose another path.") from err
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{what} {path} cannot be written; choose another path.")
    return path


def _temporary_name(path: Path) -> Path:
    """A fresh name beside ``path`` for a file that becomes ``path``."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


@contextmanager
def replaced_atomically(path: str | Path, keep: bool = False):
    """Yield a temporary path beside ``path`` (a copy of it when ``keep``) that replaces ``path``
    when the block succeeds and is deleted otherwise. The file gets the usual permissions
    (0666 minus the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies
    try:
        if keep:
            shutil.copyfile(path, tmp)
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    with replaced_atomically(path) as tmp:
        Path(tmp).write_text(text)


def torch_save_atomic(path: str | Path, obj) -> None:
    """``torch.save(obj)`` to ``path`` (checkpoints), whole or not at all."""
    with replaced_atomically(path) as tmp:
        torch.save(obj, tmp)


def save_weights(path: str | Path, net: torch.nn.Module, meta: dict, file_format: str) -> None:
    """``net``'s ``state_dict`` and ``meta`` to HDF5 at ``path``, with attributes ``format``,
    ``n_parameters`` and ``torch_version`` added."""
    with replaced_atomically(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = file_format
        f.attrs["n_parameters"] = sum(p.numel() for p in net.parameters())
        f.attrs["torch_version"] = str(torch.__version__)
        for key, value in meta.items():
            f.attrs[key] = value
        for name, tensor in net.state_dict().items():
            f.create_dataset(f"state/{name}", data=to_numpy(tensor, dtype=None))


def read_weights(path: str | Path, file_format: str, what: str) -> tuple[dict, dict]:
    """``(state_dict, meta)`` from a file of :func:`save_weights`; ``what`` names the kind of
    file in error messages (e.g. "classifier")."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            meta = {key: (value.item() if isinstance(value, np.generic) else value)
                    for key, value in f.attrs.items()}
            state = {name: torch.from_numpy(f["state"][name][()]) for name in f["state"]}
    except (OSError, KeyError) as err:
        raise InputError(f"{path} is not a readable {what} file ({err}).") from err
    if meta.get("format") != file_format:
        raise InputError(f"{path}: format {meta.get('format')!r}, expected {file_format!r}.")
    return state, meta
