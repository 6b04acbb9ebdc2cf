"""What nncas's command-line tools share: bad input ends with exit status 2 and one line on
stderr (``prog: error: message``), without a traceback unless ``--debug`` is given; Ctrl-C ends
with exit status 130 and one line starting with ``interrupted``."""
from __future__ import annotations

import argparse
import sys

#: errors that mean bad input (arguments, files, data), reported in one line
BAD_INPUT = (ValueError, TypeError, LookupError, OSError)

#: IPOPT's ``return_status`` (through CasADi) for a solve stopped by Ctrl-C: CasADi turns the
#: KeyboardInterrupt, raised in IPOPT's loop or in a Python callback (a torch gray box), into a
#: C++ exception that IPOPT reports as not its own, and returns a failed solve instead of raising
INTERRUPTED_STATUS = "NonIpopt_Exception_Thrown"

#: the exit status of a run stopped by Ctrl-C (128 + SIGINT, as a shell reports it)
INTERRUPTED_EXIT = 130


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


def raise_if_interrupted(status: str) -> None:
    """Raise KeyboardInterrupt when ``status``, an NLP solver's ``stats()["return_status"]``,
    says that Ctrl-C stopped the solve (:data:`INTERRUPTED_STATUS`), so that the interrupt
    reaches the caller instead of passing for a failed solve."""
    if status == INTERRUPTED_STATUS:
        raise KeyboardInterrupt(f"the solve was interrupted (IPOPT status {status})")


def interrupted(hint: str = "") -> int:
    """Report Ctrl-C in one line on stderr (``interrupted``, then ``; hint``) and return 130."""
    print("interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
    return INTERRUPTED_EXIT


def run_main(main, hint: str = "") -> int:
    """``main()``, with a Ctrl-C that escapes it reported by :func:`interrupted`."""
    try:
        return main()
    except KeyboardInterrupt:
        return interrupted(hint)
