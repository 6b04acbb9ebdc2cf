"""Gray boxes that live as long as the CasADi graphs that call them.

A CasADi ``Callback`` holds only a raw pointer to its Python object. :func:`kept` wraps a
callback ``F`` into the MX Function

.. math:: G(U) = F(U) + \\mathrm{keeper}() \\qquad (\\mathrm{keeper}() = 0, \\text{ Jacobian empty}),

where the keeper is an external function of ``libnncas_keeper.so`` (``keeper.c``): CasADi
counts the keeper's Functions up and down through the library's ``incref``/``decref``, and
the library holds one Python reference to ``F`` while that count is positive. ``G`` is inlined
where it is called, so a graph holds the calls of ``F`` and of the keeper, and any expression,
Function or solver built on it (also through SX expansion) keeps ``F``, and through it the
evaluator and the derivative callbacks, alive; the last one to go frees it. Values and
derivatives are those of ``F``.

Each gray box loads its own copy of the library (a temporary file, deleted once loaded:
``dlopen`` shares one copy per file, and one copy holds one owner). Without the library (no C
compiler when nncas was installed; ``python -m nncas.oracles.build`` builds it), or where a
temporary folder cannot hold executables, :func:`kept` returns ``F`` itself and warns once:
the gray box then lives as long as its oracle's owner (the embedding, or its ``Opti``).
"""
from __future__ import annotations

import _ctypes
import ctypes
import itertools
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import casadi as ca

LIBRARY = Path(__file__).resolve().with_name("libnncas_keeper.so")
#: copies loaded so far in this process: part of each copy's file name, which the dynamic
#: loader must never have seen (it would hand back the copy it loaded under that name)
_copies = itertools.count()


class KeeperMissing(UserWarning):
    """The keeper library is missing or does not load: gray boxes live as long as their oracles."""


def _address(function) -> ctypes.c_void_p:
    return ctypes.cast(function, ctypes.c_void_p)


def _keeper(owner: object) -> ca.Function:
    """A keeper external (a fresh copy of the library) holding ``owner``; OSError when the
    library is missing or a copy does not load."""
    if not LIBRARY.is_file():
        raise OSError(f"{LIBRARY.name} is not built")
    descriptor, path = tempfile.mkstemp(prefix=f"nncas_keeper_{os.getpid()}_{next(_copies)}_", suffix=".so")
    handle = None
    try:
        with os.fdopen(descriptor, "wb") as copy, open(LIBRARY, "rb") as original:
            shutil.copyfileobj(original, copy)
        handle = _ctypes.dlopen(path, os.RTLD_NOW | os.RTLD_LOCAL)
        library = ctypes.CDLL(path, handle=handle)
        api = ctypes.pythonapi
        # the library takes its reference at CasADi's first incref: none to undo if CasADi fails
        library.nncas_keeper_hold(ctypes.c_void_p(id(owner)), _address(api.Py_IncRef), _address(api.Py_DecRef),
                                  _address(api.PyGILState_Ensure), _address(api.PyGILState_Release),
                                  _address(api.Py_IsInitialized))
        try:
            return ca.external("nncas_keeper", path)
        except RuntimeError as error:
            raise OSError(str(error)) from None
    finally:
        os.unlink(path)
        if handle is not None:
            _ctypes.dlclose(handle)  # CasADi's own dlopen keeps the copy loaded


def kept(name: str, callback: ca.Function) -> ca.Function:
    """``G``, named ``name``: ``callback``'s output, with the keeper of ``callback`` attached
    (the module docstring); ``callback`` itself where the keeper library is unavailable."""
    try:
        keeper = _keeper(callback)
    except OSError as error:
        warnings.warn(f"nncas: the gray-box keeper does not load ({error}): a gray box works while its oracle "
                      f"(the embedding, or the Opti it was added to) lives. Build it with a C compiler: "
                      f"python -m nncas.oracles.build, or reinstall nncas.", KeeperMissing, stacklevel=3)
        return callback
    u = ca.MX.sym("u", callback.sparsity_in(0))
    y = callback(u) + keeper(ca.MX(0, 1))
    return ca.Function(name, [u], [y], ["u"], ["y"], {"always_inline": True})
