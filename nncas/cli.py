"""What nncas's command-line tools share: bad input ends with exit status 2 and one line on
stderr (``prog: error: message``), without a traceback unless ``--debug`` is given."""
from __future__ import annotations

import argparse
import sys

#: errors that mean bad input (arguments, files, data), reported in one line
BAD_INPUT = (ValueError, TypeError, LookupError, OSError)


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with one-line errors and a ``--debug`` flag."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", help="show the traceback of an error")

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def one_line(message) -> str:
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())


def fail(parser: argparse.ArgumentParser, err: Exception, debug: bool = False) -> int:
    """Report ``err`` in one line on stderr and return 2 (re-raise it with ``debug``)."""
    if debug:
        raise err
    print(f"{parser.prog}: error: {one_line(err)}", file=sys.stderr)
    return 2
