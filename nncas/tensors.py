"""Torch tensors as numpy arrays: float64, on the CPU, whatever device they live on."""
from __future__ import annotations

import numpy as np
import torch


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """``tensor`` detached, copied to the CPU and cast to float64."""
    return tensor.detach().to("cpu", torch.float64).numpy()
