"""Compile the dense KKT solver (``dense_ldlt.c``) into a shared library IPOPT can load.

``python -m nncas.kkt.build`` (run by ``make install``). The library links the LAPACK that
SciPy's wheel ships (an OpenBLAS built for many CPUs, picked at run time), found through SciPy
itself; the compiler is ``$CC`` or ``cc``. The result is written next to this file, atomically.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import NncasError
from . import LIBRARY

SOURCE = Path(__file__).resolve().with_name("dense_ldlt.c")


def scipy_lapack() -> tuple[Path, str]:
    """SciPy's bundled LAPACK and the prefix of its symbols ('scipy_' or '')."""
    import scipy

    folder = Path(scipy.__file__).resolve().parent.parent / "scipy.libs"
    for path in sorted(folder.glob("libscipy_openblas*.so*")):
        if "64_" in path.name:
            continue  # the 64-bit-integer variant; IPOPT's MA27 interface passes 32-bit integers
        library = ctypes.CDLL(str(path))
        for prefix in ("scipy_", ""):
            if hasattr(library, f"{prefix}dsytrf_") and hasattr(library, f"{prefix}dsytrs_"):
                return path, prefix
    raise NncasError(f"no LAPACK with dsytrf found in {folder}; install SciPy from its wheel "
                     "(pip install scipy) and run python -m nncas.kkt.build again.")


def build(target: Path = LIBRARY) -> Path:
    """Compile and link the library to ``target``; returns it."""
    lapack, prefix = scipy_lapack()
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise NncasError("no C compiler (cc or gcc) found; install one, or set CC, and run "
                         "python -m nncas.kkt.build again.")
    with tempfile.TemporaryDirectory(dir=target.parent) as folder:
        partial = Path(folder) / target.name
        command = [compiler, "-O3", "-shared", "-fPIC", f"-DLAPACK_PREFIX={prefix}", str(SOURCE),
                   "-o", str(partial), str(lapack), f"-Wl,-rpath,{lapack.parent}", "-lm"]
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
