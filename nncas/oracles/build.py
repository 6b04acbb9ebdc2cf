"""Compile the gray-box keeper (``keeper.c``, :mod:`nncas.oracles.keeper`) into its library.

``pip install`` builds it with the package (setup.py); ``python -m nncas.oracles.build``
(re)builds the one in a source checkout. The compiler is ``$CC`` or ``cc``; the result is
written atomically.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import NncasError
from .keeper import LIBRARY

SOURCE = LIBRARY.with_name("keeper.c")


def build(target: Path = LIBRARY) -> Path:
    """Compile and link the library to ``target``; returns it."""
    if not SOURCE.is_file():
        raise NncasError(f"{SOURCE} is missing (an installed wheel carries the built library, not its source); "
                         "reinstall nncas with a C compiler present, or build in a source checkout.")
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise NncasError("no C compiler (cc or gcc) found; install one, or set CC.")
    with tempfile.TemporaryDirectory(dir=target.parent) as folder:
        partial = Path(folder) / target.name
        command = [compiler, "-O2", "-shared", "-fPIC", str(SOURCE), "-o", str(partial)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise NncasError(f"compiling {SOURCE.name} failed:\n{result.stderr.strip()}")
        os.replace(partial, target)
    return target


def main() -> None:
    try:
        path = build()
    except NncasError as error:
        print(f"nncas.oracles.build: {error}", file=sys.stderr)
        sys.exit(1)
    print(f"built {path}")


if __name__ == "__main__":
    main()
