"""The thread count of the BLAS inside CasADi (IPOPT's and MUMPS's OpenBLAS).

CasADi ships its own threaded OpenBLAS. When a torch gray box runs on the CPU in the same
process, the OpenBLAS threads of IPOPT's linear algebra and torch's OpenMP threads take turns
on the same cores, and each side's idle threads spin while the other works. On a 16-core
machine this made a SCOPF with a 15k-parameter gray box take 16.5 s instead of 2.2 s
(`OPENBLAS_NUM_THREADS=1`) or 2.1 s (one torch thread); see docs/oracle.md. The library is
loaded with ``import casadi``, too early for the environment variable, so the count is set
through OpenBLAS's own ``openblas_set_num_threads``.
"""
from __future__ import annotations

import ctypes
from contextlib import contextmanager
from pathlib import Path

import casadi as ca

from .errors import InputError, InputTypeError


def _casadi_openblas() -> ctypes.CDLL | None:
    folder = Path(ca.__file__).resolve().parent
    for path in sorted(folder.glob("libcasadi-tp-openblas*")):
        try:
            library = ctypes.CDLL(str(path))
        except OSError:
            continue
        if hasattr(library, "openblas_set_num_threads"):
            return library
    return None


def check_thread_count(count, name: str = "a thread count") -> None:
    """Refuses a ``count`` (the argument ``name``) that is no whole number of at least 1."""
    if isinstance(count, bool) or not isinstance(count, int):
        raise InputTypeError(f"{name} must be a whole number or None, got {count!r}.")
    if count < 1:
        raise InputError(f"{name} must be at least 1, got {count}.")


def set_casadi_blas_threads(count: int) -> bool:
    """Use ``count`` threads in CasADi's OpenBLAS from now on, process-wide; False when this
    CasADi has none to set. Around one solve, use :func:`casadi_blas_threads_set`."""
    check_thread_count(count)
    library = _casadi_openblas()
    if library is None:
        return False
    library.openblas_set_num_threads(int(count))
    return True


def casadi_blas_threads() -> int | None:
    """The thread count of CasADi's OpenBLAS, or None when it has none."""
    library = _casadi_openblas()
    if library is None or not hasattr(library, "openblas_get_num_threads"):
        return None
    return int(library.openblas_get_num_threads())


@contextmanager
def casadi_blas_threads_set(count: int | None):
    """``with casadi_blas_threads_set(1): ...`` runs the block with ``count`` threads in CasADi's
    OpenBLAS and restores the count it found; None leaves it alone, and so does a CasADi whose
    count cannot be read back (it could not be restored)."""
    if count is not None:
        check_thread_count(count)
    before = None if count is None else casadi_blas_threads()
    if before is None:
        yield
        return
    set_casadi_blas_threads(count)
    try:
        yield
    finally:
        set_casadi_blas_threads(before)
