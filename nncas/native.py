"""Compiling nncas's C sources into shared libraries outside ``pip install``.

``pip install`` builds them with the package (setup.py); :func:`compile_library` compiles one
in a source checkout or elsewhere (tests, benchmarks of older versions) with ``$CC`` or ``cc``,
writing the result atomically, and :func:`main` is the ``python -m`` entry of each library's
``build`` module.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from .errors import NncasError


def compile_library(source: Path, target: Path, optimization: str, libraries: tuple[str, ...] = ()) -> Path:
    """Compile ``source`` into the shared library ``target`` (``optimization`` such as "-O3",
    linked with ``libraries`` such as "-lm"); returns ``target``."""
    if not source.is_file():
        raise NncasError(f"{source} is missing (an installed wheel carries the built library, not its source); "
                         "reinstall nncas with a C compiler present, or build in a source checkout.")
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise NncasError("no C compiler (cc or gcc) found; install one, or set CC.")
    with tempfile.TemporaryDirectory(dir=target.parent) as folder:
        partial = Path(folder) / target.name
        command = [compiler, optimization, "-shared", "-fPIC", str(source), "-o", str(partial), *libraries]
        try:
            result = subprocess.run(command, capture_output=True, text=True)
        except OSError as error:
            raise NncasError(f"the C compiler {compiler!r} does not run ({error.strerror}); install one, "
                             "or set CC to one.") from None
        if result.returncode != 0:
            raise NncasError(f"compiling {source.name} failed:\n{result.stderr.strip()}")
        os.replace(partial, target)
    return target


def main(program: str, build: Callable[[], Path]) -> None:
    """``python -m program``: ``build()``, then its path; exit 1 with one line on failure, 130
    with one line "interrupted" on Ctrl-C (the library is written atomically: an interrupted
    build leaves the previous one)."""
    try:
        path = build()
    except NncasError as error:
        print(f"{program}: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    print(f"built {path}")
