"""What nncas's command-line tools share: bad input ends with exit status 2 and one line on
stderr (``prog: error: message``), without a traceback unless ``--debug`` is given; Ctrl-C ends
with exit status 130 and one line starting with ``interrupted``."""
from __future__ import annotations

import argparse
import re
import sys

from ..interrupts import (INTERRUPTED_STATUS, check_interrupt, interrupts_remembered,  # noqa: F401 (the CLIs' names)
                          raise_if_interrupted)

#: errors that mean bad input (arguments, files, data), reported in one line
BAD_INPUT = (ValueError, TypeError, LookupError, OSError)

#: the exit status of a run stopped by Ctrl-C (128 + SIGINT, as a shell reports it)
INTERRUPTED_EXIT = 130


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with one-line errors and a ``--debug`` flag. Every argument
    has help text (one without is a programming error, refused when it is added), and the help
    states the default of every option that has one."""

    def __init__(self, *args, **kwargs):
        if kwargs.get("description"):
            kwargs["description"] = plain(kwargs["description"])
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", help="show the traceback of an error")

    def add_argument(self, *args, **kwargs):
        if not kwargs.get("help"):
            raise TypeError(f"{self.prog}: argument {'/'.join(args)} needs help text.")
        kwargs["help"] = plain(kwargs["help"])
        if _shows_default(kwargs) and "default" not in kwargs["help"]:
            kwargs["help"] += " (default: %(default)s)"
        return super().add_argument(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def _shows_default(kwargs) -> bool:
    """Whether an argument's default is worth stating: a value, not a flag's False or None."""
    default = kwargs.get("default")
    flag = kwargs.get("action") in ("store_true", "store_false", "help", "version")
    return not flag and default is not None and default is not argparse.SUPPRESS and default != []


def plain(text: str) -> str:
    """``text`` without reStructuredText markup (double backquotes, :role:`name`), for --help."""
    return re.sub(r":\w+:`~?([^`]*)`", r"\1", text).replace("``", "")


def one_line(message) -> str:
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())


def fail(parser: argparse.ArgumentParser, err: Exception, debug: bool = False) -> int:
    """Report ``err`` in one line on stderr and return 2 (re-raise it with ``debug``); after a
    Ctrl-C, raise KeyboardInterrupt instead (the error may be the interrupt's doing)."""
    check_interrupt()
    if debug:
        raise err
    print(f"{parser.prog}: error: {one_line(err)}", file=sys.stderr)
    return 2


def interrupted(hint: str = "") -> int:
    """Report Ctrl-C in one line on stderr (``interrupted``, then ``; hint``) and return 130."""
    print("interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
    return INTERRUPTED_EXIT


def run_main(main, hint: str = "") -> int:
    """``main()``, with Ctrl-C reported by :func:`interrupted`: a KeyboardInterrupt that escapes
    it, and any other ending once Ctrl-C came (a tool that went on, or an error that the
    interrupt caused inside a library). Runs under :func:`nncas.interrupts.interrupts_remembered`,
    whose handler :func:`check_interrupt` reads; a SIGINT ignored by the caller (a background
    job of a shell) stays ignored."""
    with interrupts_remembered() as handler:
        try:
            code = main()
        except KeyboardInterrupt:
            return interrupted(hint)
        except BaseException:
            if handler.caught:
                return interrupted(hint)
            raise
    if handler.caught and code != INTERRUPTED_EXIT:  # 130: the tool reported the interrupt itself
        return interrupted(hint)
    return code
