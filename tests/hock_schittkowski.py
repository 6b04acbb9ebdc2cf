"""Problems of the Hock–Schittkowski collection (W. Hock, K. Schittkowski, "Test Examples for
Nonlinear Programming Codes", 1981) as CasADi expressions, written from the published problem
statements, with their standard start points and published optimal values.

``PROBLEMS[name](kind)`` builds one in ``kind`` (``casadi.SX`` or ``casadi.MX``) as a
:class:`Problem`; ``Problem.nlp`` is the nlp dict and ``Problem.bounds`` the solver's keyword
arguments. ``unique`` is False where the collection lists several minima of different value
(a local solver may end in another one).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import asin, inf, log, pi, sqrt

import casadi as ca
import numpy as np


@dataclass
class Problem:
    """min f(x) s.t. lbg <= g(x) <= ubg, lbx <= x <= ubx, from x0; published optimum f_star."""

    name: str
    x: object
    f: object
    g: list = field(default_factory=list)
    lbg: list = field(default_factory=list)
    ubg: list = field(default_factory=list)
    lbx: np.ndarray = None
    ubx: np.ndarray = None
    x0: np.ndarray = None
    f_star: float = 0.0
    unique: bool = True

    @property
    def nlp(self) -> dict:
        return {"x": self.x, "f": self.f, "g": ca.vertcat(*self.g) if self.g else type(self.x)(0, 1)}

    @property
    def bounds(self) -> dict:
        return {"x0": self.x0, "lbx": self.lbx, "ubx": self.ubx, "lbg": np.array(self.lbg, float),
                "ubg": np.array(self.ubg, float)}


PROBLEMS = {}


def hs(n, x0, f_star, lbx=-inf, ubx=inf, unique=True):
    """Registers ``build(x) -> (f, rows)``; a row is ``(lo, expression, hi)``."""

    def register(build):
        def problem(kind=ca.SX):
            x = kind.sym("x", n)
            f, rows = build([x[i] for i in range(n)])
            return Problem(build.__name__, x, f, [r[1] for r in rows], [r[0] for r in rows], [r[2] for r in rows],
                           np.broadcast_to(np.asarray(lbx, float), (n,)).copy(),
                           np.broadcast_to(np.asarray(ubx, float), (n,)).copy(),
                           np.asarray(x0, float), f_star, unique)

        PROBLEMS[build.__name__] = problem
        return build

    return register


def ge(e, lo=0.0):
    """The row e >= lo."""
    return (lo, e, inf)


def eq(e, value=0.0):
    """The row e == value."""
    return (value, e, value)


def rosenbrock(x):
    return 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2


@hs(2, [-2, 1], 0.0, lbx=[-inf, -1.5])
def hs001(x):
    return rosenbrock(x), []


@hs(2, [-2, 1], 0.0504261879, lbx=[-inf, 1.5], unique=False)
def hs002(x):
    return rosenbrock(x), []


@hs(2, [10, 1], 0.0, lbx=[-inf, 0])
def hs003(x):
    return x[1] + 1e-5 * (x[1] - x[0]) ** 2, []


@hs(2, [1.125, 0.125], 8 / 3, lbx=[1, 0])
def hs004(x):
    return (x[0] + 1) ** 3 / 3 + x[1], []


@hs(2, [0, 0], -sqrt(3) / 2 - pi / 3, lbx=[-1.5, -3], ubx=[4, 3])
def hs005(x):
    return ca.sin(x[0] + x[1]) + (x[0] - x[1]) ** 2 - 1.5 * x[0] + 2.5 * x[1] + 1, []


@hs(2, [-1.2, 1], 0.0)
def hs006(x):
    return (1 - x[0]) ** 2, [eq(10 * (x[1] - x[0] ** 2))]


@hs(2, [2, 2], -sqrt(3))
def hs007(x):
    return ca.log(1 + x[0] ** 2) - x[1], [eq((1 + x[0] ** 2) ** 2 + x[1] ** 2 - 4)]


@hs(2, [2, 1], -1.0)
def hs008(x):
    return -1 + 0 * x[0], [eq(x[0] ** 2 + x[1] ** 2 - 25), eq(x[0] * x[1] - 9)]


@hs(2, [0, 0], -0.5)
def hs009(x):
    return ca.sin(pi * x[0] / 12) * ca.cos(pi * x[1] / 16), [eq(4 * x[0] - 3 * x[1])]


@hs(2, [-10, 10], -1.0)
def hs010(x):
    return x[0] - x[1], [ge(-3 * x[0] ** 2 + 2 * x[0] * x[1] - x[1] ** 2 + 1)]


@hs(2, [4.9, 0.1], -8.498464223)
def hs011(x):
    return (x[0] - 5) ** 2 + x[1] ** 2 - 25, [ge(-x[0] ** 2 + x[1])]


@hs(2, [0, 0], -30.0)
def hs012(x):
    return 0.5 * x[0] ** 2 + x[1] ** 2 - x[0] * x[1] - 7 * x[0] - 7 * x[1], [ge(25 - 4 * x[0] ** 2 - x[1] ** 2)]


@hs(2, [2, 2], 9 - 23 * sqrt(7) / 8)
def hs014(x):
    return (x[0] - 2) ** 2 + (x[1] - 1) ** 2, [eq(x[0] - 2 * x[1] + 1), ge(-x[0] ** 2 / 4 - x[1] ** 2 + 1)]


@hs(2, [-2, 1], 306.5, ubx=[0.5, inf], unique=False)
def hs015(x):
    return rosenbrock(x), [ge(x[0] * x[1] - 1), ge(x[0] + x[1] ** 2)]


@hs(2, [-2, 1], 0.25, lbx=[-0.5, -inf], ubx=[0.5, 1])
def hs016(x):
    return rosenbrock(x), [ge(x[0] + x[1] ** 2), ge(x[0] ** 2 + x[1])]


@hs(2, [-2, 1], 1.0, lbx=[-0.5, -inf], ubx=[0.5, 1])
def hs017(x):
    return rosenbrock(x), [ge(x[1] ** 2 - x[0]), ge(x[0] ** 2 - x[1])]


@hs(2, [2, 2], 5.0, lbx=[2, 0], ubx=[50, 50])
def hs018(x):
    return 0.01 * x[0] ** 2 + x[1] ** 2, [ge(x[0] * x[1] - 25), ge(x[0] ** 2 + x[1] ** 2 - 25)]


@hs(2, [20.1, 5.84], -6961.81381, lbx=[13, 0], ubx=[100, 100])
def hs019(x):
    return ((x[0] - 10) ** 3 + (x[1] - 20) ** 3,
            [ge((x[0] - 5) ** 2 + (x[1] - 5) ** 2 - 100), ge(-(x[1] - 5) ** 2 - (x[0] - 6) ** 2 + 82.81)])


@hs(2, [-2, 1], 81.5 - 25 * sqrt(3), lbx=[-0.5, -inf], ubx=[0.5, inf], unique=False)
def hs020(x):
    return rosenbrock(x), [ge(x[0] + x[1] ** 2), ge(x[0] ** 2 + x[1]), ge(x[0] ** 2 + x[1] ** 2 - 1)]


@hs(2, [-1, -1], -99.96, lbx=[2, -50], ubx=[50, 50])
def hs021(x):
    return 0.01 * x[0] ** 2 + x[1] ** 2 - 100, [ge(10 * x[0] - x[1] - 10)]


@hs(2, [2, 2], 1.0)
def hs022(x):
    return (x[0] - 2) ** 2 + (x[1] - 1) ** 2, [ge(-x[0] - x[1] + 2), ge(-x[0] ** 2 + x[1])]


@hs(2, [3, 1], 2.0, lbx=-50, ubx=50)
def hs023(x):
    return x[0] ** 2 + x[1] ** 2, [ge(x[0] + x[1] - 1), ge(x[0] ** 2 + x[1] ** 2 - 1), ge(9 * x[0] ** 2 + x[1] ** 2 - 9),
                                   ge(x[0] ** 2 - x[1]), ge(x[1] ** 2 - x[0])]


@hs(2, [1, 0.5], -1.0, lbx=0)
def hs024(x):
    s = sqrt(3)
    return (((x[0] - 3) ** 2 - 9) * x[1] ** 3 / (27 * s),
            [ge(x[0] / s - x[1]), ge(x[0] + s * x[1]), ge(-x[0] - s * x[1] + 6)])


@hs(3, [-2.6, 2, 2], 0.0)
def hs026(x):
    return (x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 4, [eq((1 + x[1] ** 2) * x[0] + x[2] ** 4 - 3)]


@hs(3, [2, 2, 2], 0.04)
def hs027(x):
    return 0.01 * (x[0] - 1) ** 2 + (x[1] - x[0] ** 2) ** 2, [eq(x[0] + x[2] ** 2 + 1)]


@hs(3, [-4, 1, 1], 0.0)
def hs028(x):
    return (x[0] + x[1]) ** 2 + (x[1] + x[2]) ** 2, [eq(x[0] + 2 * x[1] + 3 * x[2] - 1)]


@hs(3, [1, 1, 1], -16 * sqrt(2))
def hs029(x):
    return -x[0] * x[1] * x[2], [ge(-x[0] ** 2 - 2 * x[1] ** 2 - 4 * x[2] ** 2 + 48)]


@hs(3, [1, 1, 1], 1.0, lbx=[1, -10, -10], ubx=10)
def hs030(x):
    return x[0] ** 2 + x[1] ** 2 + x[2] ** 2, [ge(x[0] ** 2 + x[1] ** 2 - 1)]


@hs(3, [1, 1, 1], 6.0, lbx=[-10, 1, -10], ubx=[10, 10, 1])
def hs031(x):
    return 9 * x[0] ** 2 + x[1] ** 2 + 9 * x[2] ** 2, [ge(x[0] * x[1] - 1)]


@hs(3, [0.1, 0.7, 0.2], 1.0, lbx=0)
def hs032(x):
    return ((x[0] + 3 * x[1] + x[2]) ** 2 + 4 * (x[0] - x[1]) ** 2,
            [ge(6 * x[1] + 4 * x[2] - x[0] ** 3 - 3), eq(1 - x[0] - x[1] - x[2])])


@hs(3, [0, 0, 3], sqrt(2) - 6, lbx=0, ubx=[inf, inf, 5])
def hs033(x):
    return ((x[0] - 1) * (x[0] - 2) * (x[0] - 3) + x[2],
            [ge(x[2] ** 2 - x[1] ** 2 - x[0] ** 2), ge(x[0] ** 2 + x[1] ** 2 + x[2] ** 2 - 4)])


@hs(3, [0, 1.05, 2.9], -log(log(10)), lbx=0, ubx=[100, 100, 10])
def hs034(x):
    return -x[0], [ge(x[1] - ca.exp(x[0])), ge(x[2] - ca.exp(x[1]))]


@hs(3, [0.5, 0.5, 0.5], 1 / 9, lbx=0)
def hs035(x):
    return (9 - 8 * x[0] - 6 * x[1] - 4 * x[2] + 2 * x[0] ** 2 + 2 * x[1] ** 2 + x[2] ** 2 + 2 * x[0] * x[1]
            + 2 * x[0] * x[2], [ge(3 - x[0] - x[1] - 2 * x[2])])


@hs(3, [10, 10, 10], -3300.0, lbx=0, ubx=[20, 11, 42])
def hs036(x):
    return -x[0] * x[1] * x[2], [ge(72 - x[0] - 2 * x[1] - 2 * x[2])]


@hs(3, [10, 10, 10], -3456.0, lbx=0, ubx=42)
def hs037(x):
    return -x[0] * x[1] * x[2], [ge(72 - x[0] - 2 * x[1] - 2 * x[2]), ge(x[0] + 2 * x[1] + 2 * x[2])]


@hs(4, [-3, -1, -3, -1], 0.0, lbx=-10, ubx=10)
def hs038(x):
    return (100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2 + 90 * (x[3] - x[2] ** 2) ** 2 + (1 - x[2]) ** 2
            + 10.1 * ((x[1] - 1) ** 2 + (x[3] - 1) ** 2) + 19.8 * (x[1] - 1) * (x[3] - 1), [])


@hs(4, [2, 2, 2, 2], -1.0)
def hs039(x):
    return -x[0], [eq(x[1] - x[0] ** 3 - x[2] ** 2), eq(x[0] ** 2 - x[1] - x[3] ** 2)]


@hs(4, [0.8, 0.8, 0.8, 0.8], -0.25)
def hs040(x):
    return (-x[0] * x[1] * x[2] * x[3],
            [eq(x[0] ** 3 + x[1] ** 2 - 1), eq(x[0] ** 2 * x[3] - x[2]), eq(x[3] ** 2 - x[1])])


@hs(4, [2, 2, 2, 2], 52 / 27, lbx=0, ubx=[1, 1, 1, 2])
def hs041(x):
    return 2 - x[0] * x[1] * x[2], [eq(x[0] + 2 * x[1] + 2 * x[2] - x[3])]


@hs(4, [1, 1, 1, 1], 28 - 10 * sqrt(2))
def hs042(x):
    return ((x[0] - 1) ** 2 + (x[1] - 2) ** 2 + (x[2] - 3) ** 2 + (x[3] - 4) ** 2,
            [eq(x[0] - 2), eq(x[2] ** 2 + x[3] ** 2 - 2)])


@hs(4, [0, 0, 0, 0], -44.0)
def hs043(x):
    x1, x2, x3, x4 = x
    return (x1 ** 2 + x2 ** 2 + 2 * x3 ** 2 + x4 ** 2 - 5 * x1 - 5 * x2 - 21 * x3 + 7 * x4,
            [ge(8 - x1 ** 2 - x2 ** 2 - x3 ** 2 - x4 ** 2 - x1 + x2 - x3 + x4),
             ge(10 - x1 ** 2 - 2 * x2 ** 2 - x3 ** 2 - 2 * x4 ** 2 + x1 + x4),
             ge(5 - 2 * x1 ** 2 - x2 ** 2 - x3 ** 2 - 2 * x1 + x2 + x4)])


@hs(4, [0, 0, 0, 0], -15.0, lbx=0, unique=False)
def hs044(x):
    x1, x2, x3, x4 = x
    return (x1 - x2 - x3 - x1 * x3 + x1 * x4 + x2 * x3 - x2 * x4,
            [ge(8 - x1 - 2 * x2), ge(12 - 4 * x1 - x2), ge(12 - 3 * x1 - 4 * x2), ge(8 - 2 * x3 - x4),
             ge(8 - x3 - 2 * x4), ge(5 - x3 - x4)])


@hs(5, [2, 2, 2, 2, 2], 1.0, lbx=0, ubx=[1, 2, 3, 4, 5])
def hs045(x):
    return 2 - x[0] * x[1] * x[2] * x[3] * x[4] / 120, []


@hs(5, [sqrt(2) / 2, 1.75, 0.5, 2, 2], 0.0)
def hs046(x):
    x1, x2, x3, x4, x5 = x
    return ((x1 - x2) ** 2 + (x3 - 1) ** 2 + (x4 - 1) ** 4 + (x5 - 1) ** 6,
            [eq(x1 ** 2 * x4 + ca.sin(x4 - x5) - 1), eq(x2 + x3 ** 4 * x4 ** 2 - 2)])


@hs(5, [2, sqrt(2), -1, 2 - sqrt(2), 0.5], 0.0)
def hs047(x):
    x1, x2, x3, x4, x5 = x
    return ((x1 - x2) ** 2 + (x2 - x3) ** 3 + (x3 - x4) ** 4 + (x4 - x5) ** 4,
            [eq(x1 + x2 ** 2 + x3 ** 3 - 3), eq(x2 - x3 ** 2 + x4 - 1), eq(x1 * x5 - 1)])


@hs(5, [3, 5, -3, 2, -2], 0.0)
def hs048(x):
    x1, x2, x3, x4, x5 = x
    return ((x1 - 1) ** 2 + (x2 - x3) ** 2 + (x4 - x5) ** 2,
            [eq(x1 + x2 + x3 + x4 + x5 - 5), eq(x3 - 2 * (x4 + x5) + 3)])


@hs(5, [10, 7, 2, -3, 0.8], 0.0)
def hs049(x):
    x1, x2, x3, x4, x5 = x
    return ((x1 - x2) ** 2 + (x3 - 1) ** 2 + (x4 - 1) ** 4 + (x5 - 1) ** 6,
            [eq(x1 + x2 + x3 + 4 * x4 - 7), eq(x3 + 5 * x5 - 6)])


@hs(5, [35, -31, 11, 5, -5], 0.0)
def hs050(x):
    x1, x2, x3, x4, x5 = x
    return ((x1 - x2) ** 2 + (x2 - x3) ** 2 + (x3 - x4) ** 4 + (x4 - x5) ** 2,
            [eq(x1 + 2 * x2 + 3 * x3 - 6), eq(x2 + 2 * x3 + 3 * x4 - 6), eq(x3 + 2 * x4 + 3 * x5 - 6)])


@hs(5, [2.5, 0.5, 2, -1, 0.5], 0.0)
def hs051(x):
    x1, x2, x3, x4, x5 = x
    return ((x1 - x2) ** 2 + (x2 + x3 - 2) ** 2 + (x4 - 1) ** 2 + (x5 - 1) ** 2,
            [eq(x1 + 3 * x2 - 4), eq(x3 + x4 - 2 * x5), eq(x2 - x5)])


def _hs052_rows(x):
    x1, x2, x3, x4, x5 = x
    return [eq(x1 + 3 * x2), eq(x3 + x4 - 2 * x5), eq(x2 - x5)]


@hs(5, [2, 2, 2, 2, 2], 1859 / 349)
def hs052(x):
    x1, x2, x3, x4, x5 = x
    return (4 * x1 - x2) ** 2 + (x2 + x3 - 2) ** 2 + (x4 - 1) ** 2 + (x5 - 1) ** 2, _hs052_rows(x)


@hs(5, [2, 2, 2, 2, 2], 176 / 43, lbx=-10, ubx=10)
def hs053(x):
    x1, x2, x3, x4, x5 = x
    return (x1 - x2) ** 2 + (x2 + x3 - 2) ** 2 + (x4 - 1) ** 2 + (x5 - 1) ** 2, _hs052_rows(x)


@hs(6, [1, 2, 0, 0, 0, 2], 19 / 3, lbx=0, ubx=[1, inf, inf, 1, inf, inf], unique=False)
def hs055(x):
    x1, x2, x3, x4, x5, x6 = x
    return (x1 + 2 * x2 + 4 * x5 + ca.exp(x1 * x4),
            [eq(x1 + 2 * x2 + 5 * x5 - 6), eq(x1 + x2 + x3 - 3), eq(x4 + x5 + x6 - 2), eq(x1 + x4 - 1),
             eq(x2 + x5 - 2), eq(x3 + x6 - 2)])


_A56, _B56 = asin(sqrt(1 / 4.2)), asin(sqrt(5 / 7.2))


@hs(7, [1, 1, 1, _A56, _A56, _A56, _B56], -3.456)
def hs056(x):
    x1, x2, x3, x4, x5, x6, x7 = x
    return (-x1 * x2 * x3,
            [eq(x1 - 4.2 * ca.sin(x4) ** 2), eq(x2 - 4.2 * ca.sin(x5) ** 2), eq(x3 - 4.2 * ca.sin(x6) ** 2),
             eq(x1 + 2 * x2 + 2 * x3 - 7.2 * ca.sin(x7) ** 2)])


@hs(3, [2, 2, 2], 0.0325682002513, lbx=-10, ubx=10)
def hs060(x):
    x1, x2, x3 = x
    return ((x1 - 1) ** 2 + (x1 - x2) ** 2 + (x2 - x3) ** 4,
            [eq(x1 * (1 + x2 ** 2) + x3 ** 4 - 4 - 3 * sqrt(2))])


@hs(3, [0, 0, 0], -143.6461422)
def hs061(x):
    x1, x2, x3 = x
    return (4 * x1 ** 2 + 2 * x2 ** 2 + 2 * x3 ** 2 - 33 * x1 + 16 * x2 - 24 * x3,
            [eq(3 * x1 - 2 * x2 ** 2 - 7), eq(4 * x1 - x3 ** 2 - 11)])


@hs(3, [0.7, 0.2, 0.1], -26272.51448, lbx=0, ubx=1)
def hs062(x):
    x1, x2, x3 = x
    return (-32.174 * (255 * ca.log((x1 + x2 + x3 + 0.03) / (0.09 * x1 + x2 + x3 + 0.03))
                       + 280 * ca.log((x2 + x3 + 0.03) / (0.07 * x2 + x3 + 0.03))
                       + 290 * ca.log((x3 + 0.03) / (0.13 * x3 + 0.03))),
            [eq(x1 + x2 + x3 - 1)])


@hs(3, [2, 2, 2], 961.7151721, lbx=0)
def hs063(x):
    x1, x2, x3 = x
    return (1000 - x1 ** 2 - 2 * x2 ** 2 - x3 ** 2 - x1 * x2 - x1 * x3,
            [eq(8 * x1 + 14 * x2 + 7 * x3 - 56), eq(x1 ** 2 + x2 ** 2 + x3 ** 2 - 25)])


@hs(3, [1, 1, 1], 6299.842428, lbx=1e-5)
def hs064(x):
    x1, x2, x3 = x
    return (5 * x1 + 50000 / x1 + 20 * x2 + 72000 / x2 + 10 * x3 + 144000 / x3,
            [ge(1 - 4 / x1 - 32 / x2 - 120 / x3)])


@hs(3, [-5, 5, 0], 0.9535288567, lbx=[-4.5, -4.5, -5], ubx=[4.5, 4.5, 5])
def hs065(x):
    x1, x2, x3 = x
    return ((x1 - x2) ** 2 + (x1 + x2 - 10) ** 2 / 9 + (x3 - 5) ** 2, [ge(48 - x1 ** 2 - x2 ** 2 - x3 ** 2)])


@hs(3, [0, 1.05, 2.9], 0.5181632741, lbx=0, ubx=[100, 100, 10])
def hs066(x):
    x1, x2, x3 = x
    return 0.2 * x3 - 0.8 * x1, [ge(x2 - ca.exp(x1)), ge(x3 - ca.exp(x2))]


@hs(4, [1, 5, 5, 1], 17.0140173, lbx=1, ubx=5)
def hs071(x):
    x1, x2, x3, x4 = x
    return (x1 * x4 * (x1 + x2 + x3) + x3,
            [ge(x1 * x2 * x3 * x4 - 25), eq(x1 ** 2 + x2 ** 2 + x3 ** 2 + x4 ** 2 - 40)])


@hs(4, [1, 1, 1, 1], 727.67937, lbx=0.001, ubx=[4e5, 3e5, 2e5, 1e5])
def hs072(x):
    x1, x2, x3, x4 = x
    return (1 + x1 + x2 + x3 + x4,
            [ge(0.0401 - 4 / x1 - 2.25 / x2 - 1 / x3 - 0.25 / x4),
             ge(0.010085 - 0.16 / x1 - 0.36 / x2 - 0.64 / x3 - 0.64 / x4)])


@hs(4, [1, 1, 1, 1], 29.894378, lbx=0)
def hs073(x):
    x1, x2, x3, x4 = x
    return (24.55 * x1 + 26.75 * x2 + 39 * x3 + 40.5 * x4,
            [ge(2.3 * x1 + 5.6 * x2 + 11.1 * x3 + 1.3 * x4 - 5),
             ge(12 * x1 + 11.9 * x2 + 41.8 * x3 + 52.1 * x4 - 21
                - 1.645 * ca.sqrt(0.28 * x1 ** 2 + 0.19 * x2 ** 2 + 20.5 * x3 ** 2 + 0.62 * x4 ** 2)),
             eq(x1 + x2 + x3 + x4 - 1)])


def _hs074(a):
    def build(x):
        x1, x2, x3, x4 = x
        return (3 * x1 + 1e-6 * x1 ** 3 + 2 * x2 + 2e-6 / 3 * x2 ** 3,
                [ge(x4 - x3 + a), ge(x3 - x4 + a),
                 eq(1000 * ca.sin(-x3 - 0.25) + 1000 * ca.sin(-x4 - 0.25) + 894.8 - x1),
                 eq(1000 * ca.sin(x3 - 0.25) + 1000 * ca.sin(x3 - x4 - 0.25) + 894.8 - x2),
                 eq(1000 * ca.sin(x4 - 0.25) + 1000 * ca.sin(x4 - x3 - 0.25) + 1294.8)])
    return build


@hs(4, [0, 0, 0, 0], 5126.4981, lbx=[0, 0, -0.55, -0.55], ubx=[1200, 1200, 0.55, 0.55])
def hs074(x):
    return _hs074(0.55)(x)


@hs(4, [0, 0, 0, 0], 5174.4129, lbx=[0, 0, -0.48, -0.48], ubx=[1200, 1200, 0.48, 0.48])
def hs075(x):
    return _hs074(0.48)(x)


@hs(4, [0.5, 0.5, 0.5, 0.5], -4.681818181, lbx=0)
def hs076(x):
    x1, x2, x3, x4 = x
    return (x1 ** 2 + 0.5 * x2 ** 2 + x3 ** 2 + 0.5 * x4 ** 2 - x1 * x3 + x3 * x4 - x1 - 3 * x2 + x3 - x4,
            [ge(5 - x1 - 2 * x2 - x3 - x4), ge(4 - 3 * x1 - x2 - 2 * x3 + x4), ge(x2 + 4 * x3 - 1.5)])


@hs(5, [2, 2, 2, 2, 2], 0.24150513)
def hs077(x):
    x1, x2, x3, x4, x5 = x
    return ((x1 - 1) ** 2 + (x1 - x2) ** 2 + (x3 - 1) ** 2 + (x4 - 1) ** 4 + (x5 - 1) ** 6,
            [eq(x1 ** 2 * x4 + ca.sin(x4 - x5) - 2 * sqrt(2)), eq(x2 + x3 ** 4 * x4 ** 2 - 8 - sqrt(2))])


def _hs078_rows(x):
    x1, x2, x3, x4, x5 = x
    return [eq(x1 ** 2 + x2 ** 2 + x3 ** 2 + x4 ** 2 + x5 ** 2 - 10), eq(x2 * x3 - 5 * x4 * x5),
            eq(x1 ** 3 + x2 ** 3 + 1)]


@hs(5, [-2, 1.5, 2, -1, -1], -2.91970041)
def hs078(x):
    return x[0] * x[1] * x[2] * x[3] * x[4], _hs078_rows(x)


@hs(5, [2, 2, 2, 2, 2], 0.0787768209)
def hs079(x):
    x1, x2, x3, x4, x5 = x
    return ((x1 - 1) ** 2 + (x1 - x2) ** 2 + (x2 - x3) ** 2 + (x3 - x4) ** 4 + (x4 - x5) ** 4,
            [eq(x1 + x2 ** 2 + x3 ** 3 - 2 - 3 * sqrt(2)), eq(x2 - x3 ** 2 + x4 + 2 - 2 * sqrt(2)),
             eq(x1 * x5 - 2)])


@hs(5, [-2, 2, 2, -1, -1], 0.0539498478, lbx=[-2.3, -2.3, -3.2, -3.2, -3.2], ubx=[2.3, 2.3, 3.2, 3.2, 3.2])
def hs080(x):
    return ca.exp(x[0] * x[1] * x[2] * x[3] * x[4]), _hs078_rows(x)


@hs(5, [-2, 2, 2, -1, -1], 0.0539498478, lbx=[-2.3, -2.3, -3.2, -3.2, -3.2], ubx=[2.3, 2.3, 3.2, 3.2, 3.2])
def hs081(x):
    return ca.exp(x[0] * x[1] * x[2] * x[3] * x[4]) - 0.5 * (x[0] ** 3 + x[1] ** 3 + 1) ** 2, _hs078_rows(x)


@hs(5, [78, 33, 27, 27, 27], -30665.53867, lbx=[78, 33, 27, 27, 27], ubx=[102, 45, 45, 45, 45])
def hs083(x):
    x1, x2, x3, x4, x5 = x
    return (5.3578547 * x3 ** 2 + 0.8356891 * x1 * x5 + 37.293239 * x1 - 40792.141,
            [(0, 85.334407 + 0.0056858 * x2 * x5 + 0.0006262 * x1 * x4 - 0.0022053 * x3 * x5, 92),
             (90, 80.51249 + 0.0071317 * x2 * x5 + 0.0029955 * x1 * x2 + 0.0021813 * x3 ** 2, 110),
             (20, 9.300961 + 0.0047026 * x3 * x5 + 0.0012547 * x1 * x3 + 0.0019085 * x3 * x4, 25)])


@hs(7, [1, 2, 0, 4, 0, 1, 1], 680.6300573)
def hs100(x):
    x1, x2, x3, x4, x5, x6, x7 = x
    return ((x1 - 10) ** 2 + 5 * (x2 - 12) ** 2 + x3 ** 4 + 3 * (x4 - 11) ** 2 + 10 * x5 ** 6 + 7 * x6 ** 2 + x7 ** 4
            - 4 * x6 * x7 - 10 * x6 - 8 * x7,
            [ge(127 - 2 * x1 ** 2 - 3 * x2 ** 4 - x3 - 4 * x4 ** 2 - 5 * x5),
             ge(282 - 7 * x1 - 3 * x2 - 10 * x3 ** 2 - x4 + x5),
             ge(196 - 23 * x1 - x2 ** 2 - 6 * x6 ** 2 + 8 * x7),
             ge(-4 * x1 ** 2 - x2 ** 2 + 3 * x1 * x2 - 2 * x3 ** 2 - 5 * x6 + 11 * x7)])


@hs(8, [6, 3, 0.4, 0.2, 6, 6, 1, 0.5], 3.9511634396, lbx=0.1, ubx=10)
def hs104(x):
    x1, x2, x3, x4, x5, x6, x7, x8 = x
    f = 0.4 * x1 ** 0.67 * x7 ** -0.67 + 0.4 * x2 ** 0.67 * x8 ** -0.67 + 10 - x1 - x2
    return f, [ge(1 - 0.0588 * x5 * x7 - 0.1 * x1), ge(1 - 0.0588 * x6 * x8 - 0.1 * x1 - 0.1 * x2),
               ge(1 - 4 * x3 / x5 - 2 * x3 ** -0.71 / x5 - 0.0588 * x3 ** -1.3 * x7),
               ge(1 - 4 * x4 / x6 - 2 * x4 ** -0.71 / x6 - 0.0588 * x4 ** -1.3 * x8), (0.1, f, 4.2)]


@hs(8, [5000, 5000, 5000, 200, 350, 150, 225, 425], 7049.248,
    lbx=[100, 1000, 1000, 10, 10, 10, 10, 10], ubx=[10000, 10000, 10000, 1000, 1000, 1000, 1000, 1000])
def hs106(x):
    x1, x2, x3, x4, x5, x6, x7, x8 = x
    return (x1 + x2 + x3,
            [ge(1 - 0.0025 * (x4 + x6)), ge(1 - 0.0025 * (x5 + x7 - x4)), ge(1 - 0.01 * (x8 - x5)),
             ge(x1 * x6 - 833.33252 * x4 - 100 * x1 + 83333.333), ge(x2 * x7 - 1250 * x5 - x2 * x4 + 1250 * x4),
             ge(x3 * x8 - 1250000 - x3 * x5 + 2500 * x5)])


@hs(9, [1] * 9, -sqrt(3) / 2, lbx=[-inf] * 8 + [0], unique=False)
def hs108(x):
    x1, x2, x3, x4, x5, x6, x7, x8, x9 = x
    return (-0.5 * (x1 * x4 - x2 * x3 + x3 * x9 - x5 * x9 + x5 * x8 - x6 * x7),
            [ge(1 - x3 ** 2 - x4 ** 2), ge(1 - x9 ** 2), ge(1 - x5 ** 2 - x6 ** 2), ge(1 - x1 ** 2 - (x2 - x9) ** 2),
             ge(1 - (x1 - x5) ** 2 - (x2 - x6) ** 2), ge(1 - (x1 - x7) ** 2 - (x2 - x8) ** 2),
             ge(1 - (x3 - x5) ** 2 - (x4 - x6) ** 2), ge(1 - (x3 - x7) ** 2 - (x4 - x8) ** 2),
             ge(1 - x7 ** 2 - (x8 - x9) ** 2), ge(x1 * x4 - x2 * x3), ge(x3 * x9), ge(-x5 * x9),
             ge(x5 * x8 - x6 * x7)])


@hs(10, [9] * 10, -45.77846971, lbx=2.001, ubx=9.999)
def hs110(x):
    product = x[0]
    for xi in x[1:]:
        product = product * xi
    return sum(ca.log(xi - 2) ** 2 + ca.log(10 - xi) ** 2 for xi in x) - product ** 0.2, []


_C112 = [-6.089, -17.164, -34.054, -5.914, -24.721, -14.986, -24.1, -10.708, -26.662, -22.179]


@hs(10, [0.1] * 10, -47.76109026, lbx=1e-6)
def hs112(x):
    total = sum(x)
    x1, x2, x3, x4, x5, x6, x7, x8, x9, x10 = x
    return (sum(xj * (c + ca.log(xj / total)) for xj, c in zip(x, _C112)),
            [eq(x1 + 2 * x2 + 2 * x3 + x6 + x10 - 2), eq(x4 + 2 * x5 + x6 + x7 - 1),
             eq(x3 + x7 + x8 + 2 * x9 + x10 - 1)])


@hs(10, [2, 3, 5, 5, 1, 2, 7, 3, 6, 10], 24.3062091)
def hs113(x):
    x1, x2, x3, x4, x5, x6, x7, x8, x9, x10 = x
    return (x1 ** 2 + x2 ** 2 + x1 * x2 - 14 * x1 - 16 * x2 + (x3 - 10) ** 2 + 4 * (x4 - 5) ** 2 + (x5 - 3) ** 2
            + 2 * (x6 - 1) ** 2 + 5 * x7 ** 2 + 7 * (x8 - 11) ** 2 + 2 * (x9 - 10) ** 2 + (x10 - 7) ** 2 + 45,
            [ge(105 - 4 * x1 - 5 * x2 + 3 * x7 - 9 * x8), ge(-10 * x1 + 8 * x2 + 17 * x7 - 2 * x8),
             ge(8 * x1 - 2 * x2 - 5 * x9 + 2 * x10 + 12),
             ge(-3 * (x1 - 2) ** 2 - 4 * (x2 - 3) ** 2 - 2 * x3 ** 2 + 7 * x4 + 120),
             ge(-5 * x1 ** 2 - 8 * x2 - (x3 - 6) ** 2 + 2 * x4 + 40),
             ge(-0.5 * (x1 - 8) ** 2 - 2 * (x2 - 4) ** 2 - 3 * x5 ** 2 + x6 + 30),
             ge(-x1 ** 2 - 2 * (x2 - 2) ** 2 + 2 * x1 * x2 - 14 * x5 + 6 * x6),
             ge(3 * x1 - 6 * x2 - 12 * (x9 - 8) ** 2 + 7 * x10)])
