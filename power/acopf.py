"""AC optimal power flow in polar form, vectorized with sparse incidence matrices.

For one network (per unit, see ``power.network.per_unit``), with bus voltages
V = vm * exp(j va), branch l from bus f to bus t, series admittance
y = g + j b, end shunts y_fr, y_to and transformer t = tap * exp(j shift)
at the from end (PowerModels' ACP model):

    p_fr = (g+g_fr)/tap^2 vf^2 + (-g tr + b ti)/tap^2 vf vt cos(d) + (-b tr - g ti)/tap^2 vf vt sin(d)
    q_fr = -(b+b_fr)/tap^2 vf^2 - (-b tr - g ti)/tap^2 vf vt cos(d) + (-g tr + b ti)/tap^2 vf vt sin(d)
    p_to = (g+g_to) vt^2 + (-g tr - b ti)/tap^2 vf vt cos(d) - (-b tr + g ti)/tap^2 vf vt sin(d)
    q_to = -(b+b_to) vt^2 - (-b tr + g ti)/tap^2 vf vt cos(d) - (-g tr - b ti)/tap^2 vf vt sin(d)

with tr = tap cos(shift), ti = tap sin(shift), d = va_f - va_t.  Constraints:

    Cf' p_fr + Ct' p_to = Cg pg - Cd pd - gs vm^2      (active power balance)
    Cf' q_fr + Ct' q_to = Cg qg - Cd qd + bs vm^2      (reactive power balance)
    p_fr^2 + q_fr^2 <= rate^2,  p_to^2 + q_to^2 <= rate^2   (finite rates only)
    angmin <= va_f - va_t <= angmax                     (finite limits only)
    va_ref = 0, vmin <= vm <= vmax, pmin <= pg <= pmax, qmin <= qg <= qmax

Objective: sum of generator costs in $/h with P in MW: polynomials directly,
convex piecewise-linear costs by an epigraph variable c_g >= m_s P_g + k_s
for every segment s (end segments extended, as PowerModels does).
"""

from __future__ import annotations

from dataclasses import dataclass

import casadi as ca
import numpy as np
import scipy.sparse as sp

from power.errors import CaseDataError
from power.network import Network, PerUnitNetwork, PiecewiseLinearCost, PolynomialCost, per_unit
from power.nlp import NlpBuilder, NlpSolution
from power.results import SolveSummary


def sparse_dm(matrix: sp.spmatrix) -> ca.DM:
    """scipy sparse -> CasADi DM keeping the sparsity pattern."""
    m = sp.csc_matrix(matrix)
    pattern = ca.Sparsity(m.shape[0], m.shape[1], m.indptr.tolist(), m.indices.tolist())
    return ca.DM(pattern, m.data.tolist())


@dataclass(frozen=True)
class BranchFlows:
    p_fr: ca.SX | ca.MX
    q_fr: ca.SX | ca.MX
    p_to: ca.SX | ca.MX
    q_to: ca.SX | ca.MX
    angle_difference: ca.SX | ca.MX


def branch_flows(pu: PerUnitNetwork, vm, va) -> BranchFlows:
    """Per-unit flows at both ends of every branch (equations in the module doc)."""
    cf, ct = sparse_dm(pu.from_incidence), sparse_dm(pu.to_incidence)
    vf, vt = ca.mtimes(cf, vm), ca.mtimes(ct, vm)
    d = ca.mtimes(cf, va) - ca.mtimes(ct, va)
    tm = pu.tap**2
    tr, ti = pu.tap * np.cos(pu.shift), pu.tap * np.sin(pu.shift)
    g, b = pu.g, pu.b
    vv_cos, vv_sin = vf * vt * ca.cos(d), vf * vt * ca.sin(d)
    return BranchFlows(
        p_fr=(g + pu.g_fr) / tm * vf**2 + (-g * tr + b * ti) / tm * vv_cos + (-b * tr - g * ti) / tm * vv_sin,
        q_fr=-(b + pu.b_fr) / tm * vf**2 - (-b * tr - g * ti) / tm * vv_cos + (-g * tr + b * ti) / tm * vv_sin,
        p_to=(g + pu.g_to) * vt**2 + (-g * tr - b * ti) / tm * vv_cos - (-b * tr + g * ti) / tm * vv_sin,
        q_to=-(b + pu.b_to) * vt**2 - (-b * tr + g * ti) / tm * vv_cos - (-g * tr - b * ti) / tm * vv_sin,
        angle_difference=d,
    )


@dataclass(frozen=True)
class AcNetworkBlock:
    """Expressions of one network inside an NLP (names are block prefixes)."""

    name: str
    pu: PerUnitNetwork
    vm: ca.SX | ca.MX
    va: ca.SX | ca.MX
    pg: ca.SX | ca.MX
    qg: ca.SX | ca.MX
    flows: BranchFlows


def add_ac_network(nlp: NlpBuilder, pu: PerUnitNetwork, name: str, pg, qg,
                   rate: np.ndarray, voltage_bounds: bool = True) -> AcNetworkBlock:
    """Add voltage variables ``{name}.vm_pu``, ``{name}.va_rad`` and the power
    balance, thermal and angle-difference constraints of ``pu`` for the given
    generator injections ``pg``, ``qg`` (per unit, one per in-service generator)."""
    nb = pu.n_bus
    va_lb = np.full(nb, -np.inf)
    va_ub = np.full(nb, np.inf)
    va_lb[pu.ref_bus] = va_ub[pu.ref_bus] = 0.0
    vm = nlp.variable(f"{name}.vm_pu", nb,
                      pu.vm_min if voltage_bounds else -np.inf,
                      pu.vm_max if voltage_bounds else np.inf, 1.0)
    va = nlp.variable(f"{name}.va_rad", nb, va_lb, va_ub, 0.0)
    flows = branch_flows(pu, vm, va)

    cf_t = sparse_dm(pu.from_incidence.T)
    ct_t = sparse_dm(pu.to_incidence.T)
    cg, cd = sparse_dm(pu.gen_incidence), sparse_dm(pu.load_incidence)
    pd_bus = np.asarray(cd @ pu.pd).ravel() if len(pu.pd) else np.zeros(nb)
    qd_bus = np.asarray(cd @ pu.qd).ravel() if len(pu.qd) else np.zeros(nb)
    nlp.constrain(f"{name}.p_balance",
                  ca.mtimes(cf_t, flows.p_fr) + ca.mtimes(ct_t, flows.p_to)
                  - ca.mtimes(cg, pg) + pd_bus + pu.gs * vm**2)
    nlp.constrain(f"{name}.q_balance",
                  ca.mtimes(cf_t, flows.q_fr) + ca.mtimes(ct_t, flows.q_to)
                  - ca.mtimes(cg, qg) + qd_bus - pu.bs * vm**2)

    limited = np.flatnonzero(np.isfinite(rate))
    if len(limited):
        pick = sparse_dm(sp.eye(len(rate), format="csc")[limited, :])
        for end, (p, q) in (("fr", (flows.p_fr, flows.q_fr)), ("to", (flows.p_to, flows.q_to))):
            nlp.constrain(f"{name}.thermal_{end}",
                          ca.mtimes(pick, p)**2 + ca.mtimes(pick, q)**2, -np.inf, rate[limited]**2)
    angled = np.flatnonzero(np.isfinite(pu.angmin) | np.isfinite(pu.angmax))
    if len(angled):
        pick = sparse_dm(sp.eye(len(pu.angmin), format="csc")[angled, :])
        nlp.constrain(f"{name}.angle_difference", ca.mtimes(pick, flows.angle_difference),
                      pu.angmin[angled], pu.angmax[angled])
    return AcNetworkBlock(name, pu, vm, va, pg, qg, flows)


def generation_cost(nlp: NlpBuilder, net: Network, pu: PerUnitNetwork, pg, name: str,
                    pg_start: np.ndarray):
    """Total cost in $/h of in-service generators at per-unit output ``pg``.

    Piecewise-linear costs add the epigraph block ``{name}.pwl_cost_usd_per_h``
    (started at the cost of ``pg_start``) and constraint block
    ``{name}.pwl_segments``."""
    costs = [net.generators[r].cost for r in pu.gen_record]
    for r, cost in zip(pu.gen_record, costs):
        if cost is None:
            gen = net.generators[r]
            raise CaseDataError(net.source, gen.line, "cost", f"generator {gen.bus}/{gen.id} has no cost")
    pg_mw = pu.base_mva * pg
    total = 0
    poly = [k for k, c in enumerate(costs) if isinstance(c, PolynomialCost)]
    if poly:
        order = max(len(costs[k].coeffs_ascending) for k in poly)
        coeffs = np.zeros((len(poly), order))
        for row, k in enumerate(poly):
            coeffs[row, : len(costs[k].coeffs_ascending)] = costs[k].coeffs_ascending
        p = pg_mw[poly]
        total = total + float(coeffs[:, 0].sum())
        for power in range(1, order):
            if np.any(coeffs[:, power]):
                total = total + ca.dot(coeffs[:, power], p**power)
    pwl = [k for k, c in enumerate(costs) if isinstance(c, PiecewiseLinearCost)]
    if pwl:
        slopes, intercepts, owner = [], [], []
        for j, k in enumerate(pwl):
            m, c = costs[k].segments()
            slopes.append(m)
            intercepts.append(c)
            owner.append(np.full(len(m), j))
        slopes, intercepts, owner = map(np.concatenate, (slopes, intercepts, owner))
        select = sparse_dm(sp.csc_matrix((np.ones(len(owner)), (np.arange(len(owner)), owner)),
                                         shape=(len(owner), len(pwl))))
        start_mw = pu.base_mva * np.asarray(pg_start)[pwl][owner]
        start = np.full(len(pwl), -np.inf)
        np.maximum.at(start, owner, slopes * start_mw + intercepts)
        epigraph = nlp.variable(f"{name}.pwl_cost_usd_per_h", len(pwl), x0=start)
        nlp.constrain(f"{name}.pwl_segments",
                      slopes * ca.mtimes(select, pg_mw[pwl]) + intercepts - ca.mtimes(select, epigraph),
                      -np.inf, 0.0)
        total = total + ca.sum1(epigraph)
    return total


@dataclass(frozen=True)
class OpfResult(SolveSummary):
    """Solution in physical units; generators and buses in ``pu`` order."""

    gen_bus: np.ndarray
    gen_id: tuple[str, ...]
    pg_mw: np.ndarray
    qg_mvar: np.ndarray
    bus_number: np.ndarray
    vm_pu: np.ndarray
    va_deg: np.ndarray

    def to_json(self) -> dict:
        return {
            **self.summary(),
            "generators": [
                {"bus": int(b), "id": i, "pg_mw": float(p), "qg_mvar": float(q)}
                for b, i, p, q in zip(self.gen_bus, self.gen_id, self.pg_mw, self.qg_mvar)
            ],
            "buses": [
                {"bus": int(b), "vm_pu": float(v), "va_deg": float(a)}
                for b, v, a in zip(self.bus_number, self.vm_pu, self.va_deg)
            ],
        }


def add_base_case(nlp: NlpBuilder, net: Network, pu: PerUnitNetwork) -> AcNetworkBlock:
    """The AC-OPF of ``pu`` under the name ``base``: generator blocks
    ``base.pg_pu``, ``base.qg_pu`` within their limits (started mid-range),
    :func:`add_ac_network` with rate A, and the generation cost as objective."""
    ng = len(pu.gen_record)
    pg0 = (pu.pmin + pu.pmax) / 2
    pg = nlp.variable("base.pg_pu", ng, pu.pmin, pu.pmax, pg0)
    qg = nlp.variable("base.qg_pu", ng, pu.qmin, pu.qmax, (pu.qmin + pu.qmax) / 2)
    block = add_ac_network(nlp, pu, "base", pg, qg, pu.rate_a)
    nlp.minimize(generation_cost(nlp, net, pu, pg, "base", pg0))
    return block


class AcOpf:
    """AC-OPF of one network as an :class:`NlpBuilder` (see
    :func:`add_base_case` for the block names); add more before :meth:`solve`."""

    def __init__(self, net: Network, sym=ca.SX):
        self.net = net
        self.pu = per_unit(net)
        self.nlp = NlpBuilder(sym)
        self.block = add_base_case(self.nlp, net, self.pu)

    def result(self, sol: NlpSolution) -> OpfResult:
        pu, base = self.pu, self.pu.base_mva
        return OpfResult(
            **SolveSummary.fields_of(self.net.name, sol),
            gen_bus=np.array([self.net.generators[r].bus for r in pu.gen_record]),
            gen_id=tuple(self.net.generators[r].id for r in pu.gen_record),
            pg_mw=base * sol.x["base.pg_pu"], qg_mvar=base * sol.x["base.qg_pu"],
            bus_number=pu.bus_number, vm_pu=sol.x["base.vm_pu"],
            va_deg=np.rad2deg(sol.x["base.va_rad"]),
        )

    def solve(self, options: dict | None = None) -> OpfResult:
        return self.result(self.nlp.solve(options))


def solve_acopf(net: Network, options: dict | None = None) -> OpfResult:
    """Build and solve the AC-OPF of ``net`` with IPOPT."""
    return AcOpf(net).solve(options)


__all__ = ["AcOpf", "OpfResult", "add_ac_network", "add_base_case", "branch_flows", "generation_cost",
           "solve_acopf", "sparse_dm"]
