"""Read MATPOWER ``.m`` cases (format version 2, as PGLib-OPF writes them).

Two stages: :func:`parse_tables` turns the text into named numeric tables
(each row keeps its line number), then :func:`read_matpower` maps columns to
:class:`power.network.Network` records.  MATPOWER conventions applied here:
PD/QD/GS/BS live on the bus rows (MW, MVAr at 1 pu); TAP = 0 means 1;
RATE_A = 0 means no limit; ANGMIN/ANGMAX follow PowerModels (see
``power.network.angle_limits_deg``);
BR_B is split half and half over the two ends; gencost MODEL 1 is
piecewise linear (NCOST points x1 y1 ... in MW, $/h), MODEL 2 polynomial
(NCOST coefficients, highest order first).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from power.errors import CaseDataError, read_case_text
from power.network import (
    Branch,
    Bus,
    Generator,
    Load,
    Network,
    PiecewiseLinearCost,
    PolynomialCost,
    Shunt,
    angle_limits_deg,
    check,
)

BUS_COLUMNS = ("BUS_I", "BUS_TYPE", "PD", "QD", "GS", "BS", "BUS_AREA", "VM", "VA",
               "BASE_KV", "ZONE", "VMAX", "VMIN")
GEN_COLUMNS = ("GEN_BUS", "PG", "QG", "QMAX", "QMIN", "VG", "MBASE", "GEN_STATUS",
               "PMAX", "PMIN")
BRANCH_COLUMNS = ("F_BUS", "T_BUS", "BR_R", "BR_X", "BR_B", "RATE_A", "RATE_B",
                  "RATE_C", "TAP", "SHIFT", "BR_STATUS", "ANGMIN", "ANGMAX")
GENCOST_COLUMNS = ("MODEL", "STARTUP", "SHUTDOWN", "NCOST")

COLUMNS = {"bus": BUS_COLUMNS, "gen": GEN_COLUMNS, "branch": BRANCH_COLUMNS, "gencost": GENCOST_COLUMNS}

_ASSIGN = re.compile(r"^\s*mpc\.(\w+)\s*=\s*(.*)$")


@dataclass(frozen=True)
class Row:
    line: int
    values: tuple[float, ...]


def parse_tables(text: str, path: str) -> tuple[dict[str, list[Row]], dict[str, tuple[int, str]]]:
    """Numeric matrices ``mpc.NAME = [...]`` and scalars ``mpc.NAME = v;``.

    Returns (tables, scalars); scalars map to (line, raw text).  Cell arrays
    (``{...}``) such as bus names are skipped.
    """
    tables: dict[str, list[Row]] = {}
    scalars: dict[str, tuple[int, str]] = {}
    current: str | None = None  # open matrix name
    closing = ""  # "]" or "}" while inside a block
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("%", 1)[0]
        if not closing:
            m = _ASSIGN.match(line)
            if not m:
                continue
            name, rest = m.group(1), m.group(2).strip()
            if rest.startswith("{"):
                current, closing, line = None, "}", rest[1:]
            elif rest.startswith("["):
                current, closing, line = name, "]", rest[1:]
                tables[name] = []
            else:
                scalars[name] = (lineno, rest.rstrip(";").strip().strip("'\""))
                continue
        body, ended = line, False
        if closing in line:
            body, ended = line.split(closing, 1)[0], True
        if current is not None:
            for piece in body.split(";"):
                tokens = piece.replace(",", " ").split()
                if not tokens:
                    continue
                values = []
                for k, tok in enumerate(tokens):
                    names = COLUMNS.get(current, ())
                    field = f"{current}.{names[k]}" if k < len(names) else f"{current} column {k + 1}"
                    try:
                        value = float(tok)
                    except ValueError:
                        raise CaseDataError(path, lineno, field, f"not a number: {tok!r}") from None
                    if math.isnan(value) or (math.isinf(value) and not _infinity_allowed(current, k)):
                        raise CaseDataError(path, lineno, field, f"{tok} is not a finite number")
                    values.append(value)
                tables[current].append(Row(lineno, tuple(values)))
        if ended:
            current, closing = None, ""
    if closing:
        raise CaseDataError(path, None, "mpc", f"matrix or cell array not closed with {closing!r}")
    return tables, scalars


def _columns(table: str, row: Row, names: tuple[str, ...], path: str) -> dict[str, float]:
    if len(row.values) < len(names):
        raise CaseDataError(path, row.line, table,
                            f"expected at least {len(names)} columns ({', '.join(names)}), "
                            f"got {len(row.values)}")
    return dict(zip(names, row.values))


def _integer(value: float, path: str, line: int, field: str) -> int:
    if value != int(value):
        raise CaseDataError(path, line, field, f"must be an integer, got {value}")
    return int(value)


def _cost(row: Row, path: str, n_points_or_coeffs: int, model: int):
    data = row.values[len(GENCOST_COLUMNS):]
    if model == 1:
        need = 2 * n_points_or_coeffs
        if len(data) < need:
            raise CaseDataError(path, row.line, "gencost.COST",
                                f"NCOST={n_points_or_coeffs} points need {need} values, got {len(data)}")
        return PiecewiseLinearCost(tuple(data[0:need:2]), tuple(data[1:need:2]))
    if model == 2:
        if len(data) < n_points_or_coeffs:
            raise CaseDataError(path, row.line, "gencost.COST",
                                f"NCOST={n_points_or_coeffs} coefficients, got {len(data)}")
        return PolynomialCost(tuple(reversed(data[:n_points_or_coeffs])))
    raise CaseDataError(path, row.line, "gencost.MODEL", f"must be 1 (pwl) or 2 (polynomial), got {model}")


def read_matpower_text(text: str, path: str = "<text>", name: str | None = None) -> Network:
    """Parse MATPOWER case text; ``path`` is only used in error messages."""
    tables, scalars = parse_tables(text, path)
    for required in ("bus", "gen", "branch"):
        if required not in tables:
            raise CaseDataError(path, None, f"mpc.{required}", "table missing")
    if "baseMVA" not in scalars:
        raise CaseDataError(path, None, "mpc.baseMVA", "missing")
    line, raw = scalars["baseMVA"]
    try:
        base_mva = float(raw)
    except ValueError:
        raise CaseDataError(path, line, "mpc.baseMVA", f"not a number: {raw!r}") from None

    buses, loads, shunts = [], [], []
    for row in tables["bus"]:
        c = _columns("bus", row, BUS_COLUMNS, path)
        number = _integer(c["BUS_I"], path, row.line, "bus.BUS_I")
        buses.append(Bus(number=number, kind=_integer(c["BUS_TYPE"], path, row.line, "bus.BUS_TYPE"),
                         vm_min_pu=c["VMIN"], vm_max_pu=c["VMAX"], vm_pu=c["VM"], va_deg=c["VA"],
                         base_kv=c["BASE_KV"], area=int(c["BUS_AREA"]), line=row.line))
        if c["PD"] != 0 or c["QD"] != 0:
            loads.append(Load(bus=number, pd_mw=c["PD"], qd_mvar=c["QD"], line=row.line))
        if c["GS"] != 0 or c["BS"] != 0:
            shunts.append(Shunt(bus=number, gs_mw=c["GS"], bs_mvar=c["BS"], line=row.line))

    gen_rows = tables["gen"]
    cost_rows = tables.get("gencost", [])
    if len(cost_rows) not in (len(gen_rows), 2 * len(gen_rows)):
        where = cost_rows[0].line if cost_rows else None
        raise CaseDataError(path, where, "mpc.gencost",
                            f"{len(cost_rows)} rows for {len(gen_rows)} generators")
    generators = []
    for k, row in enumerate(gen_rows):
        c = _columns("gen", row, GEN_COLUMNS, path)
        cc = _columns("gencost", cost_rows[k], GENCOST_COLUMNS, path)
        model = _integer(cc["MODEL"], path, cost_rows[k].line, "gencost.MODEL")
        ncost = _integer(cc["NCOST"], path, cost_rows[k].line, "gencost.NCOST")
        generators.append(Generator(
            bus=_integer(c["GEN_BUS"], path, row.line, "gen.GEN_BUS"), id=str(k + 1),
            pg_mw=c["PG"], qg_mvar=c["QG"], pmin_mw=c["PMIN"], pmax_mw=c["PMAX"],
            qmin_mvar=c["QMIN"], qmax_mvar=c["QMAX"], vg_pu=c["VG"],
            in_service=c["GEN_STATUS"] > 0, cost=_cost(cost_rows[k], path, ncost, model),
            line=row.line))

    branches = []
    for k, row in enumerate(tables["branch"]):
        c = _columns("branch", row, BRANCH_COLUMNS, path)
        angmin, angmax = angle_limits_deg(c["ANGMIN"], c["ANGMAX"])
        branches.append(Branch(
            from_bus=_integer(c["F_BUS"], path, row.line, "branch.F_BUS"),
            to_bus=_integer(c["T_BUS"], path, row.line, "branch.T_BUS"),
            id=str(k + 1), r_pu=c["BR_R"], x_pu=c["BR_X"],
            b_fr_pu=c["BR_B"] / 2, b_to_pu=c["BR_B"] / 2,
            tap_ratio=c["TAP"] if c["TAP"] != 0 else 1.0, shift_deg=c["SHIFT"],
            rate_a_mva=c["RATE_A"] if c["RATE_A"] > 0 else math.inf,
            rate_c_mva=c["RATE_C"] if c["RATE_C"] > 0 else math.inf,
            angmin_deg=angmin, angmax_deg=angmax, in_service=c["BR_STATUS"] > 0,
            line=row.line))

    return check(Network(name=name or Path(path).stem, base_mva=base_mva, buses=tuple(buses),
                         loads=tuple(loads), shunts=tuple(shunts), generators=tuple(generators),
                         branches=tuple(branches), source=path))


def _infinity_allowed(table: str, column: int) -> bool:
    """Limits may be infinite (no limit); data such as loads, costs or impedances may not."""
    names = COLUMNS.get(table, ())
    name = names[column] if column < len(names) else ""
    return name in {"QMAX", "QMIN", "PMAX", "RATE_A", "RATE_B", "RATE_C", "ANGMIN", "ANGMAX", "VMAX"}


def read_matpower(path: str | Path) -> Network:
    """Read a MATPOWER ``.m`` file into a checked :class:`Network`."""
    path = Path(path)
    return read_matpower_text(read_case_text(path), str(path), path.stem)
