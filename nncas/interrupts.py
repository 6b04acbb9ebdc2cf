"""Ctrl-C during a solve: CasADi reports it as a failed solve, or loses it; nncas raises it.

CasADi turns a KeyboardInterrupt raised in IPOPT's loop or in a Python callback (a torch gray
box) into a C++ exception that IPOPT reports as not its own, and returns a failed solve with
that status instead of raising (:func:`raise_if_interrupted` raises it again). CasADi's Python
bindings can also swallow a KeyboardInterrupt outright (SWIG's argument checks clear an error
raised while they look at an argument), and the solve goes on to its end. So nncas's solves run
under :func:`interrupts_remembered`: a SIGINT handler that raises KeyboardInterrupt as Python's
own does and remembers that it did; gray-box callbacks raise again at their next evaluation
(:func:`check_interrupt`), which ends the solve, and the solve raises at its end.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

#: IPOPT's ``return_status`` (through CasADi) for a solve stopped by Ctrl-C
INTERRUPTED_STATUS = "NonIpopt_Exception_Thrown"


def raise_if_interrupted(status: str) -> None:
    """Raise KeyboardInterrupt when ``status``, an NLP solver's ``stats()["return_status"]``,
    says that Ctrl-C stopped the solve, so that the interrupt reaches the caller instead of
    passing for a failed solve."""
    if status == INTERRUPTED_STATUS:
        raise KeyboardInterrupt(f"the solve was interrupted (IPOPT status {status})")


class RememberingHandler:
    """A SIGINT handler that raises KeyboardInterrupt as Python's own does and remembers that it
    did (``caught``), so that an interrupt a library swallowed still stops the work."""

    def __init__(self):
        self.caught = False

    def __call__(self, signum, frame):
        self.caught = True
        raise KeyboardInterrupt


def check_interrupt() -> None:
    """Raise KeyboardInterrupt when Ctrl-C came while a :class:`RememberingHandler` is SIGINT's
    handler, even if a library swallowed it. Under any other handler this does nothing."""
    handler = signal.getsignal(signal.SIGINT)
    if isinstance(handler, RememberingHandler) and handler.caught:
        raise KeyboardInterrupt


@contextmanager
def interrupts_remembered() -> Iterator[RememberingHandler | None]:
    """SIGINT handled by a :class:`RememberingHandler` while the block runs; yields it, and
    restores the previous handler on leaving. Where a RememberingHandler is already installed
    (a command line's :func:`nncas.apps.cli.run_main`), that one is yielded. Outside the main
    thread, or where the caller installed a handler of their own (or ignores SIGINT), nothing
    changes and None is yielded."""
    current = signal.getsignal(signal.SIGINT)
    if isinstance(current, RememberingHandler):
        yield current
        return
    if threading.current_thread() is not threading.main_thread() or current is not signal.default_int_handler:
        yield None
        return
    handler = RememberingHandler()
    signal.signal(signal.SIGINT, handler)
    try:
        yield handler
    finally:
        signal.signal(signal.SIGINT, current)


@contextmanager
def interruptible_solve() -> Iterator[None]:
    """Run a solve under :func:`interrupts_remembered`; raise KeyboardInterrupt after it when
    Ctrl-C came during it, whatever the solve returned or raised."""
    with interrupts_remembered() as handler:
        try:
            yield
        except KeyboardInterrupt:
            raise
        except BaseException as err:
            if handler is not None and handler.caught:
                raise KeyboardInterrupt("the solve was interrupted") from err
            raise
    if handler is not None and handler.caught:
        raise KeyboardInterrupt("the solve was interrupted")
