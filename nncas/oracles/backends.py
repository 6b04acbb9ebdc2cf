"""Gray-box backends: one table from a backend's name to what builds its oracle.

An oracle over ``module`` (taking a (K, n_in) batch of rows, returning (K, n_out)) offers
``function``: the CasADi Function U (n_in x K) -> Y (n_out x K) with complete derivatives
(:mod:`nncas.oracles.graybox_function`). A new backend is one module with an oracle class
and one entry here.
"""
from __future__ import annotations

import importlib

from ..errors import InputError, InputTypeError

#: backend name -> (module, oracle class, the options it takes)
BACKENDS = {
    "torch": ("nncas.oracles.torch_oracle", "TorchOracle", ("dtype", "method")),
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


def gray_box_oracle(backend: str, module, n_in: int, n_out: int, device, batch: int, **options):
    """The oracle of ``backend`` for ``module`` on ``device`` over ``batch`` columns."""
    check_backend(backend, options)
    path, name, _ = BACKENDS[backend]
    oracle_class = getattr(importlib.import_module(path), name)
    return oracle_class(module, n_in, n_out, device, batch=batch, **options)
