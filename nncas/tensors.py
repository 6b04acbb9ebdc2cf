"""Torch tensors as numpy arrays, on the CPU, whatever device they live on."""
from __future__ import annotations

import numpy as np
import torch


def to_numpy(tensor: torch.Tensor, dtype: torch.dtype | None = torch.float64) -> np.ndarray:
    """``tensor`` detached, on the CPU (a view when it is there already) and cast to ``dtype``
    (None: kept)."""
    return tensor.detach().to("cpu", dtype or tensor.dtype).numpy()
