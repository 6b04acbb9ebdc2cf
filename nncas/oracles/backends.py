"""Gray-box backends: one table from a backend's name to its evaluator.

A backend's evaluator over ``module`` (taking a (K, n_in) batch of rows, returning (K, n_out))
gives the numbers (:mod:`nncas.oracles.evaluator`); :func:`gray_box_oracle` wraps it into a
:class:`~nncas.oracles.oracle.GrayBoxOracle`, whose ``function`` is the CasADi Function
U (n_in x K) -> Y (n_out x K) with complete derivatives. A new backend (JAX, ONNX Runtime) is
one module with an evaluator class and one entry here.
"""
from __future__ import annotations

import importlib

import torch

from ..errors import InputError, InputTypeError
from .oracle import GrayBoxOracle

#: backend name -> (module, evaluator class, the options it takes)
BACKENDS = {
    "torch": ("nncas.oracles.torch_oracle", "TorchOracle", ("dtype", "method", "translations", "hessian_dtype")),
    "l4casadi": ("nncas.oracles.l4casadi_oracle", "L4CasADiOracle", ()),
}


def check_backend(backend, options: dict) -> None:
    """Refuses an unknown backend, or options that backend does not take."""
    if backend not in BACKENDS:
        raise InputError(f"backend={backend!r}; choose one of {tuple(BACKENDS)}.")
    accepted = BACKENDS[backend][2]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        takes = f"; it takes {', '.join(accepted)}." if accepted else "; it takes none."
        raise InputTypeError(f"unexpected options {unknown} for backend={backend!r}{takes}")


def evaluation_dtype(backend: str, options: dict) -> torch.dtype:
    """The floating-point type ``backend`` evaluates in with these options: its evaluator's
    fixed ``dtype`` (a class attribute, e.g. l4casadi's float32), else the ``dtype`` option,
    else float64."""
    path, name, _ = BACKENDS[backend]
    fixed = getattr(getattr(importlib.import_module(path), name), "dtype", None)
    return fixed if fixed is not None else options.get("dtype", torch.float64)


def gray_box_oracle(backend: str, module, n_in: int, n_out: int, device, batch: int, **options) -> GrayBoxOracle:
    """The oracle of ``backend``'s evaluator for ``module`` on ``device`` over ``batch`` columns."""
    check_backend(backend, options)
    path, name, _ = BACKENDS[backend]
    evaluator = getattr(importlib.import_module(path), name)(module, n_in, n_out, device, batch=batch, **options)
    return GrayBoxOracle(evaluator, f"{backend}_{id(evaluator):x}")
