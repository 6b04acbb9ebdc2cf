"""The exceptions nncas raises for its own reasons (bad arguments raise ``ValueError`` and
``TypeError`` as usual)."""


class NncasError(Exception):
    """Base class of nncas's own exceptions."""


class StaleProblemError(NncasError, RuntimeError):
    """A solver's derivative functions describe a problem that has changed since."""
