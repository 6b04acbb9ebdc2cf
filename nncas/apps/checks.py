"""Range checks of settings shared by the trainers and command-line tools: each names the
setting and what it needs, as an :class:`nncas.InputError` (a ``ValueError``)."""
from __future__ import annotations

import math

from ..errors import InputError


def whole_number(name: str, value, minimum: int = 1) -> None:
    """``value`` is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        need = "a positive whole number" if minimum == 1 else f"a whole number >= {minimum}"
        raise InputError(f"{name} must be {need}, got {value!r}.")


def learning_rate(name: str, value) -> None:
    """``value`` is a finite positive number."""
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0):
        raise InputError(f"{name} must be a finite positive learning rate (e.g. 1e-3), got {value!r}.")
