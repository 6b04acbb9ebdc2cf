"""The linear solvers IPOPT's KKT matrix can be given, as a table (:data:`SOLVERS`), and
``kkt_solver``'s rule among them (:func:`solver_for_shape`).

Each entry knows the IPOPT options it needs, what rules it out for a plugin and options, which
options it cannot serve, and its display name (:attr:`nncas.ProblemStats.linear_solver`).
"""
from __future__ import annotations

import warnings

from ..errors import InputError, InputTypeError, NncasError
from .library import DenseSolverMissing, dense_options, load
from .shape import KktShape

#: IPOPT's linear_system_scaling values the dense solver serves ("mc19" is HSL's MC19, not in it)
SCALINGS = ("none", "slack-based")
_USER_SOLVER_OPTIONS = ("linear_solver", "hsllib", "pardisolib")


class LinearSolver:
    """IPOPT's own linear solver (MUMPS unless the options name another): serves every plugin,
    shape and option, adds no option."""

    def conflict(self, plugin: str, options: dict) -> str | None:
        """Why these arguments rule this solver out (None: they do not)."""
        return None

    def fits(self, shape: KktShape) -> bool:
        """Whether ``kkt_solver="auto"`` may give this solver a KKT matrix of this shape."""
        return True

    def missing(self) -> NncasError | None:
        """Why this solver cannot be loaded (None: it can)."""
        return None

    def refuse_unservable(self, options: dict, kkt_solver: str) -> None:
        """Raises :class:`InputError` for IPOPT options this solver cannot honour."""

    def ipopt_options(self) -> dict:
        """The IPOPT options that select this solver."""
        return {}

    def name(self, plugin: str, options: dict) -> str:
        """What factorizes IPOPT's KKT matrix: the options' ``linear_solver`` or IPOPT's default
        "mumps"; empty for other plugins."""
        return str(given_ipopt_options(options).get("linear_solver", "mumps")) if plugin == "ipopt" else ""

    def with_options(self, options: dict) -> dict:
        """``options`` with :meth:`ipopt_options` added; the user's own values stay."""
        extra, options = self.ipopt_options(), dict(options)
        if not extra:
            return options
        if isinstance(options.get("ipopt"), dict):
            options["ipopt"] = {**extra, **options["ipopt"]}
            return options
        return {**{f"ipopt.{key}": value for key, value in extra.items()}, **options}


class DenseLdlt(LinearSolver):
    """nncas's dense LDL^T (:mod:`nncas.kkt.library`) for IPOPT: dense KKT matrices only, no
    other linear solver named in the options, no MC19 scaling."""

    def conflict(self, plugin: str, options: dict) -> str | None:
        if plugin != "ipopt":
            return f"kkt_solver='dense' is for plugin 'ipopt', not {plugin!r}."
        named = [name for name in _USER_SOLVER_OPTIONS if name in given_ipopt_options(options)]
        if named:
            return (f"kkt_solver='dense' and the options' {', '.join(named)} both choose a linear solver; "
                    "drop one of them.")
        return None

    def fits(self, shape: KktShape) -> bool:
        return shape.dense

    def missing(self) -> NncasError | None:
        try:
            load()
        except NncasError as error:
            return error
        return None

    def refuse_unservable(self, options: dict, kkt_solver: str) -> None:
        scaling = given_ipopt_options(options).get("linear_system_scaling", "none")
        if scaling not in SCALINGS:
            raise InputError(f"ipopt.linear_system_scaling={scaling!r} with kkt_solver={kkt_solver!r}, which "
                             f"gives this problem nncas's dense KKT solver: it serves "
                             f"{' or '.join(map(repr, SCALINGS))} (MC19 is HSL's); use one of those, or "
                             "kkt_solver='ipopt' with ipopt.hsllib naming an HSL library.")

    def ipopt_options(self) -> dict:
        return dense_options()

    def name(self, plugin: str, options: dict) -> str:
        return "dense LDLT (nncas)"


#: the linear solvers by ``kkt_solver`` name
SOLVERS: dict[str, LinearSolver] = {"dense": DenseLdlt(), "ipopt": LinearSolver()}
#: the solvers "auto" tries, in order, before IPOPT's own
AUTO_ORDER = ("dense",)
#: the values of ``kkt_solver``: "auto", or a key of :data:`SOLVERS`
CHOICES = ("auto", *SOLVERS)


def solver_for_shape(kkt_solver: str, plugin: str, options: dict | None, shape: KktShape) -> str:
    """The key in :data:`SOLVERS` of the solver these arguments give a KKT matrix of ``shape``:
    the one named, refused when it cannot serve them; for "auto" the first of
    :data:`AUTO_ORDER` that fits the shape and loads (a :class:`DenseSolverMissing` warning for
    one that does not), else IPOPT's own."""
    if not isinstance(kkt_solver, str) or kkt_solver not in CHOICES:
        raise InputError(f"kkt_solver={kkt_solver!r}; use one of {', '.join(map(repr, CHOICES))}.")
    options = options or {}
    given_ipopt_options(options)  # refuses an options['ipopt'] that is no dict, whatever the plugin
    if kkt_solver != "auto":
        solver = SOLVERS[kkt_solver]
        reason = solver.conflict(plugin, options)
        if reason is not None:
            raise InputError(reason)
        solver.ipopt_options()  # refuses a solver that is not built
        solver.refuse_unservable(options, kkt_solver)
        return kkt_solver
    for key in AUTO_ORDER:
        solver = SOLVERS[key]
        if solver.conflict(plugin, options) is not None or not solver.fits(shape):
            continue
        error = solver.missing()
        if error is not None:
            # stacklevel 1: one location, so Python's default filter shows it once per process
            warnings.warn(f"nncas: {error} Until then IPOPT uses its default linear solver (MUMPS), "
                          "several times slower on this dense KKT matrix.", DenseSolverMissing)
            continue
        solver.refuse_unservable(options, kkt_solver)
        return key
    return "ipopt"


def given_ipopt_options(options: dict) -> dict:
    """The IPOPT options in nlpsol ``options``, given nested (``{"ipopt": {...}}``) or flat
    (``"ipopt.name"``)."""
    nested = options.get("ipopt", {})
    if not isinstance(nested, dict):
        raise InputTypeError("options['ipopt'] must be a dict of IPOPT options.")
    flat = {key[len("ipopt."):]: value for key, value in options.items() if key.startswith("ipopt.")}
    return {**nested, **flat}
