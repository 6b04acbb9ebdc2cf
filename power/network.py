"""Network data model in physical units, and the one per-unit conversion.

Readers (``power.matpower``, ``power.psse``) produce a :class:`Network` of
records whose field names carry their units: ``_mw``, ``_mvar``, ``_mva``,
``_deg``, ``_kv``, and ``_pu`` for quantities already per unit on the system
base (impedances, voltage magnitudes).  Each record remembers the file line it
came from, so :func:`check` can name file, line and field when data are
inconsistent.

:func:`per_unit` is the only place where MW/MVAr/MVA/degrees become per-unit
and radian arrays (:class:`PerUnitNetwork`, in-service elements only) for the
formulations in ``power.acopf`` and ``power.scopf``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from power.errors import CaseDataError

REF_BUS = 3
ISOLATED_BUS = 4


DEFAULT_ANGLE_LIMIT_DEG = 60.0


def angle_limits_deg(angmin: float, angmax: float) -> tuple[float, float]:
    """PowerModels' convention for branch angle-difference limits: a limit
    beyond +-90 degrees (MATPOWER's +-360 "none" included), or both limits 0,
    becomes +-60 degrees."""
    if angmin == 0 and angmax == 0:
        return -DEFAULT_ANGLE_LIMIT_DEG, DEFAULT_ANGLE_LIMIT_DEG
    return (max(angmin, -DEFAULT_ANGLE_LIMIT_DEG) if angmin <= -90 else angmin,
            min(angmax, DEFAULT_ANGLE_LIMIT_DEG) if angmax >= 90 else angmax)


@dataclass(frozen=True)
class PolynomialCost:
    """cost = sum_k coeffs_ascending[k] * P**k in $/h, P in MW."""

    coeffs_ascending: tuple[float, ...]


@dataclass(frozen=True)
class PiecewiseLinearCost:
    """Cost through the points (mw[i], usd_per_h[i]); the end segments extend
    linearly beyond the first and last point (as PowerModels does)."""

    mw: tuple[float, ...]
    usd_per_h: tuple[float, ...]

    def segments(self) -> tuple[np.ndarray, np.ndarray]:
        """Slopes ($/MWh) and intercepts ($/h) of the segment lines."""
        x = np.asarray(self.mw)
        y = np.asarray(self.usd_per_h)
        slope = np.diff(y) / np.diff(x)
        return slope, y[:-1] - slope * x[:-1]


Cost = PolynomialCost | PiecewiseLinearCost


@dataclass(frozen=True)
class Bus:
    number: int
    kind: int  # 1 PQ, 2 PV, 3 reference, 4 isolated
    vm_min_pu: float
    vm_max_pu: float
    vm_pu: float = 1.0
    va_deg: float = 0.0
    base_kv: float = 0.0
    area: int = 1
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Load:
    bus: int
    pd_mw: float
    qd_mvar: float
    in_service: bool = True
    id: str = "1"
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Shunt:
    """Constant admittance, given as the power it draws at 1 pu voltage."""

    bus: int
    gs_mw: float
    bs_mvar: float
    in_service: bool = True
    id: str = "1"
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Generator:
    bus: int
    id: str
    pg_mw: float
    qg_mvar: float
    pmin_mw: float
    pmax_mw: float
    qmin_mvar: float
    qmax_mvar: float
    vg_pu: float = 1.0
    in_service: bool = True
    cost: Cost | None = None
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Branch:
    """Pi model with an ideal transformer (ratio tap_ratio, shift_deg) at the
    from end.  End shunts g/b_fr/to_pu are per unit on the system base;
    a rate of ``math.inf`` means no thermal limit."""

    from_bus: int
    to_bus: int
    id: str
    r_pu: float
    x_pu: float
    g_fr_pu: float = 0.0
    b_fr_pu: float = 0.0
    g_to_pu: float = 0.0
    b_to_pu: float = 0.0
    tap_ratio: float = 1.0
    shift_deg: float = 0.0
    rate_a_mva: float = math.inf
    rate_c_mva: float = math.inf
    angmin_deg: float = -math.inf
    angmax_deg: float = math.inf
    in_service: bool = True
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Network:
    name: str
    base_mva: float
    buses: tuple[Bus, ...]
    loads: tuple[Load, ...]
    shunts: tuple[Shunt, ...]
    generators: tuple[Generator, ...]
    branches: tuple[Branch, ...]
    source: str = "<memory>"

    def without_generator(self, index: int) -> "Network":
        """Copy with generator ``index`` out of service (a generator outage)."""
        gens = list(self.generators)
        gens[index] = replace(gens[index], in_service=False)
        return replace(self, generators=tuple(gens))

    def without_branch(self, index: int) -> "Network":
        """Copy with branch ``index`` out of service (a branch outage)."""
        branches = list(self.branches)
        branches[index] = replace(branches[index], in_service=False)
        return replace(self, branches=tuple(branches))


def check(net: Network) -> Network:
    """Raise :class:`CaseDataError` on inconsistent data; return ``net``."""

    def fail(record, field_name: str, message: str):
        raise CaseDataError(net.source, getattr(record, "line", None), field_name, message)

    if not net.base_mva > 0:
        raise CaseDataError(net.source, None, "baseMVA", f"must be positive, got {net.base_mva}")
    numbers: dict[int, Bus] = {}
    for bus in net.buses:
        if bus.number in numbers:
            fail(bus, "bus number", f"bus {bus.number} appears twice")
        numbers[bus.number] = bus
        if bus.kind not in (1, 2, 3, 4):
            fail(bus, "bus type", f"must be 1, 2, 3 or 4, got {bus.kind}")
        if bus.vm_min_pu > bus.vm_max_pu:
            fail(bus, "VMIN", f"{bus.vm_min_pu} exceeds VMAX {bus.vm_max_pu}")
    if not any(b.kind == REF_BUS for b in net.buses):
        raise CaseDataError(net.source, None, "bus type", "no reference bus (type 3)")

    for group, bus_fields in (
        (net.loads, ("bus",)),
        (net.shunts, ("bus",)),
        (net.generators, ("bus",)),
        (net.branches, ("from_bus", "to_bus")),
    ):
        for rec in group:
            for name in bus_fields:
                if getattr(rec, name) not in numbers:
                    fail(rec, name, f"unknown bus {getattr(rec, name)}")

    for gen in net.generators:
        if gen.pmin_mw > gen.pmax_mw:
            fail(gen, "PMIN", f"{gen.pmin_mw} exceeds PMAX {gen.pmax_mw}")
        if gen.qmin_mvar > gen.qmax_mvar:
            fail(gen, "QMIN", f"{gen.qmin_mvar} exceeds QMAX {gen.qmax_mvar}")
        if isinstance(gen.cost, PiecewiseLinearCost):
            x = np.asarray(gen.cost.mw)
            if len(x) < 2 or np.any(np.diff(x) <= 0):
                fail(gen, "cost points", "piecewise-linear MW points must be at least 2 and increasing")
            slope, _ = gen.cost.segments()
            if np.any(np.diff(slope) < -1e-9 * np.maximum(1.0, np.abs(slope[1:]))):
                fail(gen, "cost points", "piecewise-linear cost must be convex (slopes non-decreasing)")

    for br in net.branches:
        if br.r_pu == 0 and br.x_pu == 0:
            fail(br, "BR_X", "branch has zero impedance")
        if br.tap_ratio <= 0:
            fail(br, "TAP", f"tap ratio must be positive, got {br.tap_ratio}")
        if br.angmin_deg > br.angmax_deg:
            fail(br, "ANGMIN", f"{br.angmin_deg} exceeds ANGMAX {br.angmax_deg}")
        if br.rate_a_mva <= 0:
            fail(br, "RATE_A", f"must be positive (or inf for no limit), got {br.rate_a_mva}")
    return net


@dataclass(frozen=True)
class PerUnitNetwork:
    """In-service elements as per-unit/radian arrays (powers / base_mva).

    Index arrays ``*_record`` point back into the Network's tuples; ``*_bus``
    arrays hold positions in the bus arrays (0..nb-1), not bus numbers.
    Incidence matrices: ``gen_incidence`` (nb x ng), ``from_incidence`` and
    ``to_incidence`` (nl x nb), ``load_incidence`` (nb x nd), all 0/1.
    """

    base_mva: float
    bus_number: np.ndarray
    ref_bus: np.ndarray
    vm_min: np.ndarray
    vm_max: np.ndarray
    gs: np.ndarray  # shunt conductance per bus
    bs: np.ndarray  # shunt susceptance per bus
    load_record: np.ndarray
    load_bus: np.ndarray
    pd: np.ndarray  # per load
    qd: np.ndarray
    gen_record: np.ndarray
    gen_bus: np.ndarray
    pmin: np.ndarray
    pmax: np.ndarray
    qmin: np.ndarray
    qmax: np.ndarray
    branch_record: np.ndarray
    from_bus: np.ndarray
    to_bus: np.ndarray
    g: np.ndarray  # series conductance, r / (r^2 + x^2)
    b: np.ndarray  # series susceptance, -x / (r^2 + x^2)
    g_fr: np.ndarray
    b_fr: np.ndarray
    g_to: np.ndarray
    b_to: np.ndarray
    tap: np.ndarray
    shift: np.ndarray
    rate_a: np.ndarray  # inf: unlimited
    rate_c: np.ndarray
    angmin: np.ndarray  # -inf: unlimited
    angmax: np.ndarray

    @property
    def n_bus(self) -> int:
        return len(self.bus_number)

    def _incidence(self, rows: np.ndarray, n_cols: int) -> sp.csc_matrix:
        n = len(rows)
        return sp.csc_matrix((np.ones(n), (np.arange(n), rows)), shape=(n, n_cols))

    @property
    def gen_incidence(self) -> sp.csc_matrix:
        return self._incidence(self.gen_bus, self.n_bus).T.tocsc()

    @property
    def load_incidence(self) -> sp.csc_matrix:
        return self._incidence(self.load_bus, self.n_bus).T.tocsc()

    @property
    def from_incidence(self) -> sp.csc_matrix:
        return self._incidence(self.from_bus, self.n_bus)

    @property
    def to_incidence(self) -> sp.csc_matrix:
        return self._incidence(self.to_bus, self.n_bus)


def per_unit(net: Network) -> PerUnitNetwork:
    """Convert ``net`` (checked with :func:`check`) to per-unit arrays.

    P, Q, S divide by base_mva; angles go to radians; MATPOWER/PSS/E tap and
    shift become t = tap * exp(j shift).  Out-of-service elements, isolated
    buses and anything attached to them are dropped.
    """
    check(net)
    base = net.base_mva
    buses = [b for b in net.buses if b.kind != ISOLATED_BUS]
    pos = {b.number: i for i, b in enumerate(buses)}

    def arr(values, dtype=float):
        return np.array(list(values), dtype=dtype)

    loads = [(i, d) for i, d in enumerate(net.loads) if d.in_service and d.bus in pos]
    gens = [(i, g) for i, g in enumerate(net.generators) if g.in_service and g.bus in pos]
    brs = [
        (i, br) for i, br in enumerate(net.branches)
        if br.in_service and br.from_bus in pos and br.to_bus in pos
    ]
    gs = np.zeros(len(buses))
    bs = np.zeros(len(buses))
    for s in net.shunts:
        if s.in_service and s.bus in pos:
            gs[pos[s.bus]] += s.gs_mw / base
            bs[pos[s.bus]] += s.bs_mvar / base
    z2 = arr(br.r_pu**2 + br.x_pu**2 for _, br in brs)
    return PerUnitNetwork(
        base_mva=base,
        bus_number=arr((b.number for b in buses), int),
        ref_bus=arr((i for i, b in enumerate(buses) if b.kind == REF_BUS), int),
        vm_min=arr(b.vm_min_pu for b in buses),
        vm_max=arr(b.vm_max_pu for b in buses),
        gs=gs,
        bs=bs,
        load_record=arr((i for i, _ in loads), int),
        load_bus=arr((pos[d.bus] for _, d in loads), int),
        pd=arr(d.pd_mw / base for _, d in loads),
        qd=arr(d.qd_mvar / base for _, d in loads),
        gen_record=arr((i for i, _ in gens), int),
        gen_bus=arr((pos[g.bus] for _, g in gens), int),
        pmin=arr(g.pmin_mw / base for _, g in gens),
        pmax=arr(g.pmax_mw / base for _, g in gens),
        qmin=arr(g.qmin_mvar / base for _, g in gens),
        qmax=arr(g.qmax_mvar / base for _, g in gens),
        branch_record=arr((i for i, _ in brs), int),
        from_bus=arr((pos[br.from_bus] for _, br in brs), int),
        to_bus=arr((pos[br.to_bus] for _, br in brs), int),
        g=arr(br.r_pu for _, br in brs) / z2,
        b=-arr(br.x_pu for _, br in brs) / z2,
        g_fr=arr(br.g_fr_pu for _, br in brs),
        b_fr=arr(br.b_fr_pu for _, br in brs),
        g_to=arr(br.g_to_pu for _, br in brs),
        b_to=arr(br.b_to_pu for _, br in brs),
        tap=arr(br.tap_ratio for _, br in brs),
        shift=np.deg2rad(arr(br.shift_deg for _, br in brs)),
        rate_a=arr(br.rate_a_mva / base for _, br in brs),
        rate_c=arr(br.rate_c_mva / base for _, br in brs),
        angmin=np.deg2rad(arr(br.angmin_deg for _, br in brs)),
        angmax=np.deg2rad(arr(br.angmax_deg for _, br in brs)),
    )
