"""Checking the torch device a gray box is asked to run on."""
from __future__ import annotations

import torch

from .errors import DeviceError, InputError


def resolve_device(device: str | torch.device) -> torch.device:
    """Return a usable ``torch.device`` or raise with what to do instead."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InputError(f"device={device!r} is not a torch device; use 'cpu' or 'cuda'.") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise DeviceError(
            f"device={device!r} was requested but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}, {build}). Use device='cpu', or install a CUDA build of "
            "torch on a machine with an NVIDIA GPU (make install TORCH_SPEC=...).")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device={device!r}: nncas gray boxes run on 'cpu' or 'cuda'.")
    return dev
