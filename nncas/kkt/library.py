"""nncas's dense KKT solver, ``libnncas_dense_ldlt.so``: where it is, how it is loaded and
bound to SciPy's LAPACK, and the IPOPT options that make IPOPT use it (MA27's run-time interface)."""
from __future__ import annotations

import ctypes
from pathlib import Path

from ..errors import NncasError

LIBRARY = Path(__file__).resolve().with_name("libnncas_dense_ldlt.so")


class DenseSolverMissing(UserWarning):
    """The dense KKT solver would serve a problem but is not built or does not load."""


#: how to get the dense solver where it is missing or does not load
HOW_TO_BUILD = ("install a C compiler (cc) and reinstall nncas from source: pip install --no-deps "
                "--force-reinstall <the path or URL you installed from>, or pip install -e . in a clone")
_ENTRY_POINTS = ("ma27id_", "ma27ad_", "ma27bd_", "ma27cd_", "nncas_bind_lapack")


def load(path: Path = LIBRARY) -> ctypes.CDLL:
    """The dense solver at ``path``, loaded and bound to SciPy's LAPACK (``dsytrf``, ``dsyrk``,
    ``dgemv`` from the capsules of ``scipy.linalg.cython_lapack`` / ``cython_blas``, resolved
    now, so a SciPy upgrade or a moved environment cannot break it); NncasError saying why not.
    IPOPT's later dlopen of the same path gets this loaded, bound library."""
    if not path.is_file():
        raise NncasError(f"the dense KKT solver is not built ({path.name} is missing next to "
                         f"nncas/kkt/__init__.py): {HOW_TO_BUILD}.")
    try:
        library = ctypes.CDLL(str(path))
    except OSError as error:
        raise NncasError(f"the dense KKT solver {path} does not load ({error}): {HOW_TO_BUILD}.") from None
    missing = [name for name in _ENTRY_POINTS if not hasattr(library, name)]
    if missing:
        raise NncasError(f"the dense KKT solver {path} lacks {', '.join(missing)} (built from another "
                         f"version of dense_ldlt.c?): {HOW_TO_BUILD}.")
    from scipy.linalg import cython_blas, cython_lapack

    threads = scipy_openblas()
    bind = ctypes.CFUNCTYPE(ctypes.c_int, *[ctypes.c_void_p] * 4)(("nncas_bind_lapack", library))
    if bind(_capsule_pointer(cython_lapack, "dsytrf"), _capsule_pointer(cython_blas, "dsyrk"),
            _capsule_pointer(cython_blas, "dgemv"),
            None if threads is None else ctypes.cast(threads.openblas_set_num_threads_local, ctypes.c_void_p)) != 0:
        raise NncasError(f"the dense KKT solver {path} refused SciPy's LAPACK routines.")
    return library


def _capsule_pointer(module, name: str) -> int:
    """The C function a Cython module exports as ``name`` (its ``__pyx_capi__`` capsule)."""
    capsule = module.__pyx_capi__[name]
    get_name = ctypes.PYFUNCTYPE(ctypes.c_char_p, ctypes.py_object)(("PyCapsule_GetName", ctypes.pythonapi))
    get_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
        ("PyCapsule_GetPointer", ctypes.pythonapi))
    return get_pointer(capsule, get_name(capsule))


def scipy_openblas() -> ctypes.CDLL | None:
    """The OpenBLAS inside SciPy's wheel (which its cython_lapack calls), when it has
    ``openblas_set_num_threads_local``; None otherwise (a SciPy not from a wheel)."""
    import scipy

    folder = Path(scipy.__file__).resolve().parent.parent / "scipy.libs"
    for path in sorted(folder.glob("libscipy_openblas*.so*")):
        if "64_" in path.name:
            continue  # the 64-bit-integer variant; cython_lapack passes 32-bit integers
        library = ctypes.CDLL(str(path))
        if hasattr(library, "openblas_set_num_threads_local"):
            return library
    return None


def dense_library() -> Path | None:
    """The dense solver's path once it loads (:func:`load`), or None when it is missing or
    does not load (:func:`dense_options` says why)."""
    try:
        load()
    except NncasError:
        return None
    return LIBRARY


def dense_options() -> dict:
    """IPOPT options that make the dense solver factorize the KKT matrix.

    MA27's scaling (MC19) is not in the library, and its workspace factors are 1: the library
    asks for exactly the doubles it uses. IPOPT's ``ma27_pivtol`` is the threshold of the
    solver's elimination test (docs/kkt.md).
    """
    try:
        load()
    except NncasError as error:
        raise NncasError(f"{error} Or pass kkt_solver='ipopt'.") from None
    return {"linear_solver": "ma27", "hsllib": str(LIBRARY), "linear_system_scaling": "none",
            "ma27_la_init_factor": 1.0, "ma27_liw_init_factor": 1.0}
