"""Where nncas keeps generated artefacts, and content hashes of torch models."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from .tensors import to_numpy


def cache_root() -> Path:
    """``$NNCAS_CACHE``, else ``$XDG_CACHE_HOME/nncas``, else ``~/.cache/nncas``."""
    if os.environ.get("NNCAS_CACHE"):
        return Path(os.environ["NNCAS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nncas"


def fingerprint(module: torch.nn.Module, *extra: object) -> str:
    """SHA-256 of a module's structure (repr), every parameter and buffer, and ``extra``."""
    digest = hashlib.sha256(repr(module).encode())
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(to_numpy(tensor, dtype=None).tobytes())  # C-ordered bytes, any strides
    for item in extra:
        digest.update(repr(item).encode())
    return digest.hexdigest()
