r"""The NLP as ``casadi.nlpsol`` reads it, :math:`\min_x f(x, p)` s.t. :math:`g(x, p)`: the four
parts (x, p, f, g) of an nlp dict, checked, or of an ``Opti``, as it hands them to nlpsol."""
from __future__ import annotations

import casadi as ca
import numpy as np

from .errors import InputError, InputTypeError


def checked_nlp(nlp) -> tuple:
    """(x, p, f, g) of an nlp dict as ``casadi.nlpsol`` reads it, checked: one symbolic type
    (MX or SX) throughout, x and p purely symbolic, f scalar (empty: 0), g a dense vector."""
    if not isinstance(nlp, dict) or "x" not in nlp:
        raise InputTypeError(f"nlp must be a dict with at least 'x' (and 'f', 'g', 'p'), got {nlp!r:.80}.")
    unknown = sorted(set(nlp) - {"x", "p", "f", "g"})
    if unknown:
        raise InputError(f"nlp has keys {unknown}; casadi.nlpsol takes 'x', 'p', 'f' and 'g'.")
    x = nlp["x"]
    if not isinstance(x, (ca.MX, ca.SX)):
        raise InputTypeError(f"nlp['x'] must be a casadi.MX or casadi.SX column, got {type(x).__name__}.")
    kind = type(x)
    parts = {"p": nlp.get("p", kind(0, 1)), "f": nlp.get("f", kind(0)), "g": nlp.get("g", kind(0, 1))}
    for key, value in parts.items():
        if isinstance(value, (int, float, np.number, np.ndarray, ca.DM)):
            parts[key] = kind(ca.DM(value))
        elif not isinstance(value, kind):
            raise InputTypeError(f"nlp[{key!r}] is {type(value).__name__} but nlp['x'] is {kind.__name__}; "
                                 "use one symbolic type throughout.")
    for key, value in (("x", x), ("p", parts["p"])):
        if not value.is_valid_input():
            raise InputError(f"nlp[{key!r}] must be purely symbolic (symbols, or a vertcat of distinct "
                             f"symbols), as casadi.nlpsol requires; got an expression of them. Make nlp[{key!r}] "
                             "the symbols and move the expression into 'f' and 'g'.")
    for key in ("x", "g"):
        value = x if key == "x" else parts["g"]
        if not value.is_empty() and (not value.is_vector() or not value.is_dense()):
            raise InputError(f"nlp[{key!r}] must be a dense vector, got {value.size1()}x{value.size2()} "
                             f"with {value.nnz()} nonzeros.")
    f = parts["f"]
    if f.is_empty():  # casadi.nlpsol's empty objective: f = 0
        f = kind(0)
    elif not f.is_scalar():
        raise InputError(f"nlp['f'] must be a scalar objective, got {f.size1()}x{f.size2()}; sum its "
                         "entries (casadi.sum1, casadi.sumsqr) or move them into 'g'.")
    elif not f.is_dense():
        raise InputError("nlp['f'] is a structural zero (1x1 with no nonzero), which casadi.nlpsol refuses; "
                         "use 0 or leave 'f' out.")
    g = parts["g"] if not parts["g"].is_empty() else kind(0, 1)
    return x, parts["p"], f, g


def opti_nlp(opti: ca.Opti) -> tuple:
    """(x, p, f, g) exactly as the Opti hands them to nlpsol (with its linear scalings)."""
    x, p, f, g = opti.x, opti.p, opti.f, opti.g
    scale, offset = opti.x_linear_scale, opti.x_linear_scale_offset
    f_scale, g_scale = float(opti.f_linear_scale), opti.g_linear_scale
    if np.any(np.asarray(scale) != 1) or np.any(np.asarray(offset) != 0):
        unscaled = ca.Function("nncas_unscaled", [x, p], [f, g])
        f, g = unscaled.call([x * scale + offset, p], True, False)
    return x, p, f / f_scale if f_scale != 1 else f, g / g_scale if np.any(np.asarray(g_scale) != 1) else g
