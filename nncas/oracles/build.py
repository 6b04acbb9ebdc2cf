"""Compile the gray-box keeper (``keeper.c``, :mod:`nncas.oracles.keeper`) into its library.

``pip install`` builds it with the package (setup.py); ``python -m nncas.oracles.build``
(re)builds the one in a source checkout. Compiled by :func:`nncas.native.compile_library`.
"""
from __future__ import annotations

from pathlib import Path

from ..native import compile_library, main
from .keeper import LIBRARY

SOURCE = LIBRARY.with_name("keeper.c")


def build(target: Path = LIBRARY) -> Path:
    """Compile and link the library to ``target``; returns it."""
    return compile_library(SOURCE, target, "-O2")


if __name__ == "__main__":
    main("nncas.oracles.build", build)
