"""Gray-box backends: what evaluates a torch module inside the gray box.

A backend is an evaluator class (:class:`~nncas.oracles.evaluator.GrayBoxEvaluator`) built as
``cls(module, n_in, n_out, device, batch=K, **options)``, where ``module`` takes a (K, n_in)
batch of rows and returns (K, n_out). Its class attribute ``options`` (a tuple of names, default
none) lists the options it takes, and ``dtype`` (optional) the torch dtype it always evaluates
in. nncas names two in :data:`BACKENDS`; any other such class is given as it is
(``GrayBox(backend=MyEvaluator)``), so a new backend (ONNX Runtime, TensorRT, a CUDA graph) is
one file of the user's or of nncas's, with no table to register in. :func:`gray_box_oracle`
wraps the evaluator into a :class:`~nncas.oracles.oracle.GrayBoxOracle`.
"""
from __future__ import annotations

import importlib
import re

import torch

from ..errors import InputError, InputTypeError
from .evaluator import REQUIRED
from .oracle import GrayBoxOracle

#: backend name -> (module, evaluator class, the options it takes): nncas's own, imported on use
BACKENDS = {
    "torch": ("nncas.oracles.torch_oracle", "TorchOracle", ("dtype", "method", "translations", "hessian_dtype")),
    "l4casadi": ("nncas.oracles.l4casadi_oracle", "L4CasADiOracle", ()),
}


def backend_name(backend) -> str:
    """``backend`` as the embedding reports it: the table's name or the class's."""
    return backend if isinstance(backend, str) else backend.__name__


def backend_options(backend) -> tuple[str, ...]:
    """The oracle options ``backend`` takes."""
    if isinstance(backend, str):
        return BACKENDS[backend][2]
    return tuple(getattr(backend, "options", ()))


def check_backend(backend, options: dict) -> None:
    """Refuses an unknown backend name, a class that is no evaluator, or options the backend
    does not take."""
    if isinstance(backend, str):
        if backend not in BACKENDS:
            raise InputError(f"backend={backend!r}; choose one of {tuple(BACKENDS)}, or give an evaluator "
                             "class (nncas.oracles.GrayBoxEvaluator).")
    elif not isinstance(backend, type) or any(not callable(getattr(backend, name, None)) for name in REQUIRED):
        raise InputTypeError(f"backend={backend!r}; give one of {tuple(BACKENDS)} or an evaluator class with "
                             f"the methods {', '.join(REQUIRED)} (nncas.oracles.GrayBoxEvaluator).")
    accepted = backend_options(backend)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        takes = f"; it takes {', '.join(accepted)}." if accepted else "; it takes none."
        raise InputTypeError(f"unexpected options {unknown} for backend={backend_name(backend)!r}{takes}")


def evaluator_class(backend) -> type:
    """The evaluator class of a checked ``backend``."""
    if isinstance(backend, str):
        path, name, _ = BACKENDS[backend]
        return getattr(importlib.import_module(path), name)
    return backend


def evaluation_dtype(backend, options: dict) -> torch.dtype:
    """The floating-point type ``backend`` evaluates in with these options: its evaluator's
    fixed ``dtype`` (a class attribute, e.g. l4casadi's float32), else the ``dtype`` option,
    else float64."""
    fixed = getattr(evaluator_class(backend), "dtype", None)
    return fixed if isinstance(fixed, torch.dtype) else options.get("dtype", torch.float64)


def gray_box_oracle(backend, module, n_in: int, n_out: int, device, batch: int, **options) -> GrayBoxOracle:
    """The oracle of ``backend``'s evaluator for ``module`` on ``device`` over ``batch`` columns."""
    check_backend(backend, options)
    evaluator = evaluator_class(backend)(module, n_in, n_out, device, batch=batch, **options)
    label = re.sub(r"[^A-Za-z0-9]+", "_", backend_name(backend)).strip("_") or "backend"  # a CasADi name
    return GrayBoxOracle(evaluator, f"{label}_{id(evaluator):x}")
