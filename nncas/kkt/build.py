"""Compile the dense KKT solver (``dense_ldlt.c``) into a shared library IPOPT can load.

``pip install`` builds it with the package (setup.py); :func:`build` compiles a copy elsewhere
(tests, benchmarks of older versions), and ``python -m nncas.kkt.build`` rebuilds the one in a
source checkout after ``dense_ldlt.c`` changed. The library links no BLAS: :func:`nncas.kkt.load`
binds SciPy's LAPACK at run time. The compiler is ``$CC`` or ``cc``; the result is written
atomically.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import NncasError
from .library import LIBRARY

SOURCE = Path(__file__).resolve().with_name("dense_ldlt.c")


def build(target: Path = LIBRARY) -> Path:
    """Compile and link the library to ``target``; returns it."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise NncasError("no C compiler (cc or gcc) found; install one, or set CC.")
    with tempfile.TemporaryDirectory(dir=target.parent) as folder:
        partial = Path(folder) / target.name
        command = [compiler, "-O3", "-shared", "-fPIC", str(SOURCE), "-o", str(partial), "-lm"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise NncasError(f"compiling {SOURCE.name} failed:\n{result.stderr.strip()}")
        os.replace(partial, target)
    return target


def main() -> None:
    try:
        path = build()
    except NncasError as error:
        print(f"nncas.kkt.build: {error}", file=sys.stderr)
        sys.exit(1)
    print(f"built {path}")


if __name__ == "__main__":
    main()
