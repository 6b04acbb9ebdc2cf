"""The exceptions nncas raises. Each names the argument or file at fault and what to do.

    NncasError
    ├── InputError (ValueError)            a bad argument value, shape or file content
    │   ├── InputTypeError (TypeError)     an argument of the wrong kind
    │   │   └── UnsupportedLayerError      a torch module nncas cannot translate
    │   ├── DeviceError (RuntimeError)     a device asked for that this machine lacks
│   └── VerificationError              an embedding that does not reproduce its torch module
    └── StaleProblemError (RuntimeError)   derivative functions of a problem that changed since

They subclass the built-in exceptions they refine, so ``except ValueError`` keeps working.
"""


class NncasError(Exception):
    """Base class of nncas's own exceptions."""


class InputError(NncasError, ValueError):
    """An argument's value, shape or content is unusable."""


class InputTypeError(InputError, TypeError):
    """An argument is of the wrong kind."""


class UnsupportedLayerError(InputTypeError):
    """A torch module has no translation."""


class DeviceError(InputError, RuntimeError):
    """A torch device was asked for that this machine or torch build cannot use."""


class VerificationError(InputError):
    """An embedding differs from the torch module it was built from (checked before it is
    returned): the model does something the formulation cannot reproduce."""


class StaleProblemError(NncasError, RuntimeError):
    """A solver's derivative functions describe a problem that has changed since."""
