"""Security-constrained AC-OPF of the GO Competition Challenge 1, as
PowerModelsSecurityConstrained's ``build_c1_scopf`` states it.

Base case 0 is the AC-OPF of ``power.acopf`` (voltage, generator, thermal
rate A and angle-difference limits).  Every contingency k (one generator or
branch out) gets its own full AC network with

    pg_k = pg_0 + alpha * delta_k   for responding generators (all in-service
                                    generators in the area of the outage),
    pg_k = pg_0                     for the others,
    vm_k[i] = vm_0[i]               at buses with an in-service generator,
    thermal limits with rate C, angle-difference limits, power balance,

while vm_k, va_k and qg_k are otherwise free (``bounded=false`` there) and
delta_k is one free scalar.  The cost (``.rop`` piecewise linear) is the base
case's only.

:class:`Scopf` exposes the NLP builder (``scopf.nlp``) so callers can add
constraints before :meth:`Scopf.solve`, and the base-case quantities a
transient-frequency surrogate needs, as CasADi expressions in MW / MVAr over
*all* generators and loads of the case, ordered by bus (stable, so file order
within a bus), out-of-service units contributing 0:
``pg_mw_by_bus``, ``qg_mvar_by_bus``, ``pd_mw_by_bus``.

Command line: ``python -m power.scopf --raw R --rop P --inl I --con C
[--json out.json]``; without files it solves the embedded 3-bus example.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import casadi as ca
import numpy as np
import scipy.sparse as sp

from nncas.apps.cli import BAD_INPUT, ArgumentParser, fail, run_main
from nncas.apps.storage import check_output_path
from power.acopf import AcNetworkBlock, add_ac_network, add_base_case, sparse_dm
from power.cases import scopf3_case
from power.network import per_unit
from power.nlp import NlpBuilder, NlpSolution
from power.psse import GoC1Case, read_go_c1
from power.results import SolveSummary, report


def _scatter(n_all: int, rows: np.ndarray) -> ca.DM:
    """(n_all x len(rows)) 0/1 matrix putting entry k at position rows[k]."""
    return sparse_dm(sp.csc_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))),
                                   shape=(n_all, len(rows))))


@dataclass(frozen=True)
class ContingencyBlock:
    label: str
    network: AcNetworkBlock
    delta: ca.SX | ca.MX
    link: np.ndarray  # position in the base pg of each generator of this network
    alpha: np.ndarray  # response factor per generator (0: not responding)


@dataclass(frozen=True)
class ScopfResult(SolveSummary):
    gen_bus: np.ndarray  # all generators of the case, file order
    gen_id: tuple[str, ...]
    pg_mw: np.ndarray  # base case, 0 when out of service
    qg_mvar: np.ndarray
    contingency_pg_mw: dict[str, np.ndarray]  # same order, 0 when out
    delta_pu: dict[str, float]
    solution: NlpSolution

    def to_json(self) -> dict:
        return {
            **self.summary(),
            "generators": [
                {"bus": int(b), "id": i, "pg_mw": float(p), "qg_mvar": float(q),
                 "contingency_pg_mw": {k: float(v[n]) for k, v in self.contingency_pg_mw.items()}}
                for n, (b, i, p, q) in enumerate(zip(self.gen_bus, self.gen_id, self.pg_mw, self.qg_mvar))
            ],
            "delta_pu": self.delta_pu,
        }


class Scopf:
    """Build the Challenge 1 SCOPF of ``case`` (see module doc).

    Variable blocks: ``base.pg_pu``, ``base.qg_pu``, ``base.vm_pu``,
    ``base.va_rad`` and per contingency ``{label}.delta_pu``,
    ``{label}.qg_pu``, ``{label}.vm_pu``, ``{label}.va_rad``.  Use
    ``sym=casadi.MX`` to add MX-only constraints (e.g. l4casadi models).
    """

    def __init__(self, case: GoC1Case, sym=ca.SX):
        self.case = case
        net = case.network
        self.pu = pu = per_unit(net)
        self.nlp = nlp = NlpBuilder(sym)
        self.base = add_base_case(nlp, net, pu)
        pg, qg = self.base.pg, self.base.qg

        gen_area = np.array([self._bus_area(g.bus) for g in net.generators])
        base_position = {record: k for k, record in enumerate(pu.gen_record)}
        self.contingencies: list[ContingencyBlock] = []
        for cont in case.contingencies:
            if cont.label == "base" or any(c.label == cont.label for c in self.contingencies):
                raise ValueError(f"contingency label {cont.label!r} is not unique")
            cpu = per_unit(cont.apply(net))
            if cont.generator is not None:
                areas = {gen_area[cont.generator]}
            else:
                br = net.branches[cont.branch]
                areas = {self._bus_area(br.from_bus), self._bus_area(br.to_bus)}
            responding = np.isin(gen_area[cpu.gen_record], list(areas))
            link = np.array([base_position[r] for r in cpu.gen_record], dtype=int)
            delta = nlp.variable(f"{cont.label}.delta_pu", 1)
            alpha = np.where(responding, case.alpha[cpu.gen_record], 0.0)
            pg_k = pg[link.tolist()] + alpha * delta
            qg_k = nlp.variable(f"{cont.label}.qg_pu", len(link), x0=(cpu.qmin + cpu.qmax) / 2)
            block = add_ac_network(nlp, cpu, cont.label, pg_k, qg_k, cpu.rate_c, voltage_bounds=False)
            gen_buses = np.unique(cpu.gen_bus).tolist()
            nlp.constrain(f"{cont.label}.gen_bus_vm_link",
                          block.vm[gen_buses] - self.base.vm[gen_buses])
            self.contingencies.append(ContingencyBlock(cont.label, block, delta, link, alpha))

        base_mva = pu.base_mva
        gen_bus = np.array([g.bus for g in net.generators])
        load_bus = np.array([d.bus for d in net.loads])
        self.gen_order_by_bus = np.argsort(gen_bus, kind="stable")
        self.load_order_by_bus = np.argsort(load_bus, kind="stable")
        to_all = _scatter(len(net.generators), pu.gen_record)
        self.pg_mw = base_mva * ca.mtimes(to_all, pg)
        self.qg_mvar = base_mva * ca.mtimes(to_all, qg)
        pd_mw = np.zeros(len(net.loads))
        pd_mw[pu.load_record] = base_mva * pu.pd
        self.pd_mw = sym(ca.DM(pd_mw))
        self.pg_mw_by_bus = self.pg_mw[self.gen_order_by_bus.tolist()]
        self.qg_mvar_by_bus = self.qg_mvar[self.gen_order_by_bus.tolist()]
        self.pd_mw_by_bus = self.pd_mw[self.load_order_by_bus.tolist()]

    def _bus_area(self, number: int) -> int:
        return next(b.area for b in self.case.network.buses if b.number == number)

    def result(self, sol: NlpSolution) -> ScopfResult:
        net, pu = self.case.network, self.pu
        base = pu.base_mva
        n = len(net.generators)

        def all_gens(values, records):
            out = np.zeros(n)
            out[records] = values
            return out

        cont_pg = {}
        for c in self.contingencies:
            pg_k = sol.x["base.pg_pu"][c.link] + c.alpha * sol.x[f"{c.label}.delta_pu"][0]
            cont_pg[c.label] = all_gens(base * pg_k, c.network.pu.gen_record)
        return ScopfResult(
            **SolveSummary.fields_of(net.name, sol),
            gen_bus=np.array([g.bus for g in net.generators]),
            gen_id=tuple(g.id for g in net.generators),
            pg_mw=all_gens(base * sol.x["base.pg_pu"], pu.gen_record),
            qg_mvar=all_gens(base * sol.x["base.qg_pu"], pu.gen_record),
            contingency_pg_mw=cont_pg,
            delta_pu={c.label: float(sol.x[f"{c.label}.delta_pu"][0]) for c in self.contingencies},
            solution=sol,
        )

    def solve(self, options: dict | None = None) -> ScopfResult:
        return self.result(self.nlp.solve(options))


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m power.scopf", description=__doc__.split("\n\n")[0])
    files = ("raw", "rop", "inl", "con")
    for name in files:
        parser.add_argument(f"--{name}", help=f"GO Challenge 1 .{name} file")
    parser.add_argument("--json", help="write the solution here (atomically)")
    args = parser.parse_args(argv)
    given = [getattr(args, f) for f in files]
    if any(given) and not all(given):
        parser.error("give all of --raw --rop --inl --con, or none for the embedded example")
    try:
        if args.json:
            check_output_path(args.json, "--json")
        case = read_go_c1(*given) if all(given) else scopf3_case()
        scopf = Scopf(case)
    except BAD_INPUT as err:
        return fail(parser, err, args.debug)
    return report(scopf.solve(), args.json)


if __name__ == "__main__":
    sys.exit(run_main(main))
