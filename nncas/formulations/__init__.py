"""Formulations: how ``y = net(x)`` enters a problem, as objects that check their options.

    nncas.FullSpace(config=None, relaxation=0.0, rules=None)   variables and rows per layer
    nncas.ReducedSpace()                                        one nested expression
    nncas.GrayBox(backend="torch", device="cpu", output="expression", input="auto", **oracle_options)

Each builds its part of an embedding with ``build(net, x, x0, new_symbol, context)``. The strings
"full", "reduced" and "graybox" stand for them; :func:`resolve` turns a string and the flat
keywords of :func:`nncas.embed` (``config=``, ``relaxation=``, ``backend=``, ``device=``,
``graybox_output=``, ``graybox_input=``, oracle options such as ``dtype=``) into the object.
"""
from __future__ import annotations

import numbers

from ..errors import InputError, InputTypeError
from ..oracles.backends import BACKENDS, backend_options
from .base import Context, Formulation
from .full import RULES, FullSpace, FullSpaceRule
from .graybox import GrayBox
from .reduced import ReducedSpace

#: the string shorthands
SHORTHANDS: dict[str, type[Formulation]] = {"full": FullSpace, "reduced": ReducedSpace, "graybox": GrayBox}
#: the oracle options some backend takes (flat keywords of the gray box)
ORACLE_OPTIONS = sorted({name for backend in BACKENDS for name in backend_options(backend)})

__all__ = ["Formulation", "FullSpace", "FullSpaceRule", "ReducedSpace", "GrayBox", "Context", "RULES", "resolve"]


def resolve(formulation="full", **options) -> Formulation:
    """The formulation object for ``formulation`` (an object, taken as it is, or a shorthand
    string with its flat keyword ``options``).

    A keyword of another formulation is refused unless it holds that formulation's default
    (so ``backend="torch"`` passes with any formulation); the gray box passes the keywords it
    does not name to its backend's oracle.
    """
    if isinstance(formulation, Formulation):
        if options:
            raise InputError(f"{', '.join(sorted(options))} given beside formulation={formulation!r}: give options "
                             f"on the object ({type(formulation).__name__}(...)), or a string with keywords, not both.")
        return formulation
    chosen = SHORTHANDS.get(formulation) if isinstance(formulation, str) else None
    if chosen is None:
        objects = ", ".join(f"nncas.{kind.__name__}()" for kind in SHORTHANDS.values())
        raise InputError(f"formulation={formulation!r}; choose one of {tuple(SHORTHANDS)}, or an object: {objects}.")
    own = {chosen.keywords[k][0]: v for k, v in options.items() if k in chosen.keywords}
    for kind in SHORTHANDS.values():
        if kind is chosen:
            continue
        given = {k: v for k, v in options.items() if k in kind.keywords and not _default(v, kind.keywords[k][1])}
        if given:
            named = ", ".join(k if isinstance(v, dict) else f"{k}={v!r}" for k, v in given.items())
            raise InputError(f"{named} {'applies' if len(given) == 1 else 'apply'} to formulation={kind.kind!r} "
                             f"only (got formulation={formulation!r}); drop {'it' if len(given) == 1 else 'them'} "
                             f"or use {kind.__name__}.")
    named = {k for kind in SHORTHANDS.values() for k in kind.keywords}
    rest = {k: v for k, v in options.items() if k not in named}
    if chosen is GrayBox:
        return GrayBox(**own, **rest)
    if rest:
        oracle = [k for k in sorted(rest) if k in ORACLE_OPTIONS]
        hint = f"; the gray box's oracle takes {', '.join(oracle)} (formulation='graybox')" if oracle else ""
        raise InputTypeError(f"unexpected options {sorted(rest)} for formulation={formulation!r}{hint}.")
    return chosen(**own)


def _default(value, default) -> bool:
    """Whether a flat keyword's ``value`` is its ``default`` (an empty config counts as none)."""
    if default is None:
        return value is None or (isinstance(value, dict) and not value)
    return isinstance(value, (str, numbers.Real)) and value == default
