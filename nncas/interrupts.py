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

import os
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
    did (``caught``), so that an interrupt a library swallowed still stops the work.

    Python prints and drops an exception raised in a finalizer (a weakref callback, ``__del__``:
    "Exception ignored in ..."), so when the signal lands in one the handler raises nothing
    there: the KeyboardInterrupt is owed, and another thread sends SIGINT to the main thread
    again 10 ms later (again while a finalizer runs), unless :func:`check_interrupt` raised it
    meanwhile."""

    def __init__(self):
        self.caught = False
        self.owed = False
        self._resent = 0
        self._timer: threading.Timer | None = None

    def __call__(self, signum, frame):
        self.caught = True
        if self._resent:  # a SIGINT this handler sent
            self._resent -= 1
            if not self.owed:
                return
        if frame is not None and _in_finalizer(frame):
            self.owed = True
            self._resent += 1
            self._timer = threading.Timer(0.01, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
            self._timer.daemon = True
            self._timer.start()
            return
        self.owed = False
        raise KeyboardInterrupt

    def close(self) -> None:
        """Send no more SIGINT (before another handler takes over)."""
        if self._timer is not None:
            self._timer.cancel()


def _in_finalizer(frame) -> bool:
    """Whether ``frame`` runs a weakref callback of the standard library or a ``__del__``."""
    code = frame.f_code
    return code.co_name == "__del__" or os.path.basename(code.co_filename) in ("weakref.py", "_weakrefset.py")


def check_interrupt() -> None:
    """Raise KeyboardInterrupt when Ctrl-C came while a :class:`RememberingHandler` is SIGINT's
    handler, even if a library swallowed it. Under any other handler this does nothing."""
    handler = signal.getsignal(signal.SIGINT)
    if isinstance(handler, RememberingHandler) and handler.caught:
        handler.owed = False
        raise KeyboardInterrupt


@contextmanager
def interrupts_remembered() -> Iterator[RememberingHandler]:
    """SIGINT handled by a :class:`RememberingHandler` while the block runs; yields it, and
    restores the previous handler on leaving. Where a RememberingHandler is already installed
    (a command line's :func:`nncas.apps.cli.run_main`), that one is yielded. Outside the main
    thread, or where the caller installed a handler of their own (or ignores SIGINT), nothing
    changes and the handler yielded is not installed (it never catches anything)."""
    current = signal.getsignal(signal.SIGINT)
    if isinstance(current, RememberingHandler):
        yield current
        return
    handler = RememberingHandler()
    if threading.current_thread() is not threading.main_thread() or current is not signal.default_int_handler:
        yield handler
        return
    signal.signal(signal.SIGINT, handler)
    try:
        yield handler
    finally:
        handler.close()
        signal.signal(signal.SIGINT, current)


@contextmanager
def interruptible_solve() -> Iterator[None]:
    """Run a solve under :func:`interrupts_remembered`; raise KeyboardInterrupt after it when
    Ctrl-C came during it, whatever the solve returned or raised."""
    with interrupts_remembered() as handler:
        try:
            yield
        except BaseException as err:
            if not handler.caught:
                raise
            handler.owed = False
            if isinstance(err, KeyboardInterrupt):
                raise
            raise KeyboardInterrupt("the solve was interrupted") from err
    if handler.caught:
        handler.owed = False
        raise KeyboardInterrupt("the solve was interrupted")
