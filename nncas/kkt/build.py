"""Compile the dense KKT solver (``dense_ldlt.c``) into a shared library IPOPT can load.

``pip install`` builds it with the package (setup.py); :func:`build` compiles a copy elsewhere
(tests, benchmarks of older versions), and ``python -m nncas.kkt.build`` rebuilds the one in a
source checkout after ``dense_ldlt.c`` changed. The library links no BLAS: :func:`nncas.kkt.load`
binds SciPy's LAPACK at run time. Compiled by :func:`nncas.native.compile_library`.
"""
from __future__ import annotations

from pathlib import Path

from ..native import compile_library, main
from .library import LIBRARY

SOURCE = Path(__file__).resolve().with_name("dense_ldlt.c")


def build(target: Path = LIBRARY) -> Path:
    """Compile and link the library to ``target``; returns it."""
    return compile_library(SOURCE, target, "-O3", ("-lm",))


if __name__ == "__main__":
    main("nncas.kkt.build", build)
