"""Read the GO Competition Challenge 1 input set: PSS/E RAW v33 network,
``.rop`` costs, ``.inl`` participation factors, ``.con`` contingencies.

RAW records are comma separated, ``'quoted'`` strings, ``/`` starts a
comment, a record whose first field is ``0`` ends a section (``Q`` ends the
file).  Sections used: bus, load, fixed shunt, generator, branch, two-winding
transformer, switched shunt (held at its initial susceptance BINIT, as
PowerModelsSecurityConstrained's ``build_c1_scopf`` does); the other sections
must be empty, except area, zone, owner, inter-area and impedance-correction
data, which do not enter the AC power flow and are skipped.

Unit conventions applied here: loads PL/QL (MW/MVAr, constant power), shunts
GL/BL (MW/MVAr at 1 pu), generator PT/PB/QT/QB (MW/MVAr), branch R/X/B per
unit on the system base, ratings in MVA (0 = no limit); transformer CW/CZ
codes 1-3 converted to a system-base per-unit ratio and impedance; the
magnetizing admittance MAG1/MAG2 (CM=1) acts at the from bus voltage.
``.rop`` piecewise-linear cost tables (MW, $/h) are linked generator ->
dispatch table -> cost table; ``.inl`` column R is the participation factor
alpha of the generator response pg_k = pg_0 + alpha * delta_k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from power.errors import CaseDataError, read_case_text
from power.network import (
    Branch,
    Bus,
    Generator,
    Load,
    Network,
    PiecewiseLinearCost,
    Shunt,
    angle_limits_deg,
    check,
)

RAW_SECTIONS = (
    "bus", "load", "fixed shunt", "generator", "branch", "transformer", "area",
    "two-terminal dc", "vsc dc", "impedance correction", "multi-terminal dc",
    "multi-section line", "zone", "inter-area transfer", "owner", "facts",
    "switched shunt", "gne", "induction machine",
)
SKIPPED_SECTIONS = {"area", "zone", "owner", "inter-area transfer", "impedance correction"}

BUS_FIELDS = ("I", "NAME", "BASKV", "IDE", "AREA", "ZONE", "OWNER", "VM", "VA",
              "NVHI", "NVLO", "EVHI", "EVLO")
LOAD_FIELDS = ("I", "ID", "STATUS", "AREA", "ZONE", "PL", "QL", "IP", "IQ", "YP", "YQ")
FIXED_SHUNT_FIELDS = ("I", "ID", "STATUS", "GL", "BL")
GEN_FIELDS = ("I", "ID", "PG", "QG", "QT", "QB", "VS", "IREG", "MBASE", "ZR", "ZX", "RT",
              "XT", "GTAP", "STAT", "RMPCT", "PT", "PB")
BRANCH_FIELDS = ("I", "J", "CKT", "R", "X", "B", "RATEA", "RATEB", "RATEC", "GI", "BI",
                 "GJ", "BJ", "ST")
XFMR_FIELDS_1 = ("I", "J", "K", "CKT", "CW", "CZ", "CM", "MAG1", "MAG2", "NMETR", "NAME", "STAT")
XFMR_FIELDS_2 = ("R1-2", "X1-2", "SBASE1-2")
XFMR_FIELDS_3 = ("WINDV1", "NOMV1", "ANG1", "RATA1", "RATB1", "RATC1")
XFMR_FIELDS_4 = ("WINDV2", "NOMV2")
SWITCHED_SHUNT_FIELDS = ("I", "MODSW", "ADJM", "STAT", "VSWHI", "VSWLO", "SWREM", "RMPCT",
                         "RMIDNT", "BINIT")


def split_record(text: str) -> list[str]:
    """Fields of one PSS/E line: commas outside quotes separate, ``/`` outside
    quotes starts a comment, quotes and surrounding blanks are removed."""
    fields, current, quote = [], [], None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
            else:
                current.append(ch)
        elif ch in "'\"":
            quote = ch
        elif ch == "/":
            break
        elif ch == ",":
            fields.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    last = "".join(current).strip()
    if last or fields:
        fields.append(last)
    return fields


@dataclass(frozen=True)
class Record:
    """One line's fields with the names they are read under."""

    path: str
    line: int
    fields: list[str]
    names: tuple[str, ...]

    def _raw(self, name: str) -> str:
        k = self.names.index(name)
        if k >= len(self.fields) or self.fields[k] == "":
            raise CaseDataError(self.path, self.line, name, "missing")
        return self.fields[k]

    def text(self, name: str) -> str:
        return self._raw(name).strip()

    def float(self, name: str) -> float:
        raw = self._raw(name)
        try:
            value = float(raw)
        except ValueError:
            raise CaseDataError(self.path, self.line, name, f"not a number: {raw!r}") from None
        if not math.isfinite(value):
            raise CaseDataError(self.path, self.line, name, f"not finite: {raw!r}")
        return value

    def int(self, name: str) -> int:
        raw = self._raw(name)
        try:
            return int(raw)
        except ValueError:
            raise CaseDataError(self.path, self.line, name, f"not an integer: {raw!r}") from None


def _rate(mva: float) -> float:
    return mva if mva > 0 else math.inf


def _remaining(k: int) -> str:
    """'X data' or 'X data and the N sections after it', from section ``k`` on."""
    rest = len(RAW_SECTIONS) - k - 1
    return f"{RAW_SECTIONS[k]} data" + (f" and the {rest} sections after it" if rest else "")


def _raw_sections(text: str, path: str) -> tuple[Record, dict[str, list[tuple[int, list[str]]]]]:
    lines = text.splitlines()
    if len(lines) < 3:
        raise CaseDataError(path, None, "case identification", "a RAW file starts with 3 header lines")
    header = Record(path, 1, split_record(lines[0]), ("IC", "SBASE", "REV", "XFRRAT", "NXFRAT", "BASFRQ"))
    rev = header.fields[2].strip() if len(header.fields) > 2 else ""
    if rev not in ("", "33"):
        raise CaseDataError(path, 1, "REV", f"only PSS/E version 33 is supported, got {rev}")
    sections: dict[str, list[tuple[int, list[str]]]] = {name: [] for name in RAW_SECTIONS}
    k, closed = 0, False
    for lineno, raw in enumerate(lines[3:], start=4):
        fields = split_record(raw)
        if not fields:
            continue
        if fields[0] == "Q":
            if k < len(RAW_SECTIONS):
                raise CaseDataError(path, lineno, f"{RAW_SECTIONS[k]} data",
                                    f"Q ends the file before the {_remaining(k)} end; a RAW v33 file "
                                    f"ends each of its {len(RAW_SECTIONS)} sections with a 0 record")
            closed = True
            break
        if k >= len(RAW_SECTIONS):
            raise CaseDataError(path, lineno, "end of file", "a record after the last section; a RAW v33 "
                                "file ends with Q after its induction machine data")
        if fields[0] == "0" and len(fields) == 1:
            k += 1
            continue
        sections[RAW_SECTIONS[k]].append((lineno, fields))
    if not closed:
        where = f"{RAW_SECTIONS[k]} data" if k < len(RAW_SECTIONS) else "end of file"
        missing = (f"the {_remaining(k)} are missing" if k < len(RAW_SECTIONS) else "the closing Q is missing")
        raise CaseDataError(path, len(lines), where, f"the file ends early at line {len(lines)}: {missing} "
                            "(is it cut short?)")
    for name, records in sections.items():
        if records and name not in SKIPPED_SECTIONS and name not in (
                "bus", "load", "fixed shunt", "generator", "branch", "transformer", "switched shunt"):
            raise CaseDataError(path, records[0][0], f"{name} data", "not supported by this reader")
    return header, sections


def _transformer(path: str, rows: list[tuple[int, list[str]]], k: int, base_mva: float,
                 base_kv: dict[int, float]) -> tuple[Branch, int]:
    line, fields = rows[k]
    r1 = Record(path, line, fields, XFMR_FIELDS_1)
    if r1.int("K") != 0:
        raise CaseDataError(path, line, "K", "three-winding transformers are not supported")
    if k + 3 >= len(rows):
        raise CaseDataError(path, line, "transformer", "a two-winding transformer needs 4 lines")
    r2 = Record(path, rows[k + 1][0], rows[k + 1][1], XFMR_FIELDS_2)
    r3 = Record(path, rows[k + 2][0], rows[k + 2][1], XFMR_FIELDS_3)
    r4 = Record(path, rows[k + 3][0], rows[k + 3][1], XFMR_FIELDS_4)
    i, j = r1.int("I"), abs(r1.int("J"))
    for name, bus in (("I", i), ("J", j)):
        if bus not in base_kv:
            raise CaseDataError(path, line, name, f"unknown bus {bus}")

    windv1, windv2 = r3.float("WINDV1"), r4.float("WINDV2")
    cw = r1.int("CW")
    if cw == 1:
        tap = windv1 / windv2
    elif cw == 2:
        tap = (windv1 / base_kv[i]) / (windv2 / base_kv[j])
    elif cw == 3:
        nomv1 = r3.float("NOMV1") or base_kv[i]
        nomv2 = r4.float("NOMV2") or base_kv[j]
        tap = (windv1 * nomv1 / base_kv[i]) / (windv2 * nomv2 / base_kv[j])
    else:
        raise CaseDataError(path, line, "CW", f"must be 1, 2 or 3, got {cw}")

    r, x = r2.float("R1-2"), r2.float("X1-2")
    cz = r1.int("CZ")
    if cz in (2, 3):
        sbase = r2.float("SBASE1-2")
        if sbase <= 0:
            raise CaseDataError(path, rows[k + 1][0], "SBASE1-2", f"must be positive, got {sbase}")
        if cz == 3:  # R is the load loss in W, X the impedance magnitude in pu
            r = r / 1e6 / sbase
            x = math.sqrt(max(x**2 - r**2, 0.0))
        r, x = r * base_mva / sbase, x * base_mva / sbase
    elif cz != 1:
        raise CaseDataError(path, line, "CZ", f"must be 1, 2 or 3, got {cz}")

    mag1, mag2 = r1.float("MAG1"), r1.float("MAG2")
    if r1.int("CM") != 1 and (mag1 or mag2):
        raise CaseDataError(path, line, "CM", "only CM=1 (admittance in pu) is supported")
    angmin, angmax = angle_limits_deg(0.0, 0.0)
    return Branch(
        from_bus=i, to_bus=j, id=r1.text("CKT"), r_pu=r, x_pu=x,
        # scaled by tap^2 so that the pi model's g_fr/tap^2 * vf^2 is MAG1 * vf^2
        g_fr_pu=mag1 * tap**2, b_fr_pu=mag2 * tap**2,
        tap_ratio=tap, shift_deg=r3.float("ANG1"),
        rate_a_mva=_rate(r3.float("RATA1")), rate_c_mva=_rate(r3.float("RATC1")),
        angmin_deg=angmin, angmax_deg=angmax, in_service=r1.int("STAT") == 1, line=line,
    ), k + 4


def read_raw_text(text: str, path: str = "<text>", name: str | None = None) -> Network:
    """Parse PSS/E RAW v33 text into a checked Network without costs."""
    header, sections = _raw_sections(text, path)
    base_mva = header.float("SBASE")

    def records(section, names):
        return [Record(path, line, fields, names) for line, fields in sections[section]]

    buses = []
    for r in records("bus", BUS_FIELDS):
        buses.append(Bus(number=r.int("I"), kind=r.int("IDE"), vm_min_pu=r.float("NVLO"),
                         vm_max_pu=r.float("NVHI"), vm_pu=r.float("VM"), va_deg=r.float("VA"),
                         base_kv=r.float("BASKV"), area=r.int("AREA"), line=r.line))
    base_kv = {b.number: b.base_kv for b in buses}

    loads = []
    for r in records("load", LOAD_FIELDS):
        for part in ("IP", "IQ", "YP", "YQ"):
            if r.float(part) != 0:
                raise CaseDataError(path, r.line, part, "only constant-power loads are supported")
        loads.append(Load(bus=r.int("I"), id=r.text("ID"), pd_mw=r.float("PL"),
                          qd_mvar=r.float("QL"), in_service=r.int("STATUS") == 1, line=r.line))

    shunts = [Shunt(bus=r.int("I"), id=r.text("ID"), gs_mw=r.float("GL"), bs_mvar=r.float("BL"),
                    in_service=r.int("STATUS") == 1, line=r.line)
              for r in records("fixed shunt", FIXED_SHUNT_FIELDS)]
    shunts += [Shunt(bus=r.int("I"), id="switched", gs_mw=0.0, bs_mvar=r.float("BINIT"),
                     in_service=r.int("STAT") == 1, line=r.line)
               for r in records("switched shunt", SWITCHED_SHUNT_FIELDS)]

    generators = [Generator(bus=r.int("I"), id=r.text("ID"), pg_mw=r.float("PG"),
                            qg_mvar=r.float("QG"), pmin_mw=r.float("PB"), pmax_mw=r.float("PT"),
                            qmin_mvar=r.float("QB"), qmax_mvar=r.float("QT"), vg_pu=r.float("VS"),
                            in_service=r.int("STAT") == 1, line=r.line)
                  for r in records("generator", GEN_FIELDS)]

    branches = []
    angmin, angmax = angle_limits_deg(0.0, 0.0)
    for r in records("branch", BRANCH_FIELDS):
        b = r.float("B")
        branches.append(Branch(
            from_bus=r.int("I"), to_bus=abs(r.int("J")), id=r.text("CKT"),
            r_pu=r.float("R"), x_pu=r.float("X"),
            g_fr_pu=r.float("GI"), b_fr_pu=b / 2 + r.float("BI"),
            g_to_pu=r.float("GJ"), b_to_pu=b / 2 + r.float("BJ"),
            rate_a_mva=_rate(r.float("RATEA")), rate_c_mva=_rate(r.float("RATEC")),
            angmin_deg=angmin, angmax_deg=angmax, in_service=r.int("ST") == 1, line=r.line))
    rows, k = sections["transformer"], 0
    while k < len(rows):
        branch, k = _transformer(path, rows, k, base_mva, base_kv)
        branches.append(branch)

    return check(Network(name=name or Path(path).stem, base_mva=base_mva, buses=tuple(buses),
                         loads=tuple(loads), shunts=tuple(shunts), generators=tuple(generators),
                         branches=tuple(branches), source=path))


ROP_SECTIONS = ("modification code", "bus voltage", "adjustable bus shunt", "bus load",
                "adjustable bus load", "generator dispatch", "active power dispatch",
                "generation reserve", "reactive capability", "adjustable branch reactance",
                "piecewise linear cost")


def read_rop_text(text: str, path: str, net: Network) -> dict[int, PiecewiseLinearCost]:
    """Piecewise-linear cost per generator index of ``net`` (from a ``.rop``)."""
    lines = text.splitlines()
    section = 0
    dispatch: list[Record] = []
    tables: dict[int, Record] = {}
    costs: dict[int, PiecewiseLinearCost] = {}
    k = 0
    while k < len(lines) and section < len(ROP_SECTIONS):
        fields = split_record(lines[k])
        k += 1
        if not fields:
            continue
        if fields[0] == "0":
            section += 1
            continue
        name = ROP_SECTIONS[section]
        if name == "generator dispatch":
            dispatch.append(Record(path, k, fields, ("BUS", "GENID", "DISP", "DSPTBL")))
        elif name == "active power dispatch":
            r = Record(path, k, fields, ("TBL", "PMAX", "PMIN", "FUELCOST", "CTYP", "STATUS", "CTBL"))
            tables[r.int("TBL")] = r
        elif name == "piecewise linear cost":
            head = Record(path, k, fields, ("LTBL", "LABEL", "NPAIRS"))
            n = head.int("NPAIRS")
            if n < 2 or k + n > len(lines):
                raise CaseDataError(path, k, "NPAIRS", f"{n} points do not fit the table")
            points = [Record(path, k + 1 + m, split_record(lines[k + m]), ("XI", "YI"))
                      for m in range(n)]
            costs[head.int("LTBL")] = PiecewiseLinearCost(
                tuple(p.float("XI") for p in points), tuple(p.float("YI") for p in points))
            k += n
    gen_index = {(g.bus, g.id): i for i, g in enumerate(net.generators)}
    linked: dict[int, PiecewiseLinearCost] = {}
    for r in dispatch:
        key = (r.int("BUS"), r.text("GENID"))
        if key not in gen_index:
            raise CaseDataError(path, r.line, "GENID", f"no generator {key[1]!r} at bus {key[0]}")
        table = tables.get(r.int("DSPTBL"))
        if table is None:
            raise CaseDataError(path, r.line, "DSPTBL", f"no dispatch table {r.int('DSPTBL')}")
        if table.int("CTBL") not in costs:
            raise CaseDataError(path, table.line, "CTBL", f"no cost table {table.int('CTBL')}")
        if gen_index[key] in linked:
            raise CaseDataError(path, r.line, "GENID", f"generator {key[1]!r} at bus {key[0]} has a second "
                                "dispatch record; give one per generator")
        linked[gen_index[key]] = costs[table.int("CTBL")]
    return linked


def read_inl_text(text: str, path: str, net: Network) -> np.ndarray:
    """Participation factor alpha (column R) per generator of ``net``."""
    gen_index = {(g.bus, g.id): i for i, g in enumerate(net.generators)}
    alpha = np.full(len(net.generators), np.nan)
    for lineno, raw in enumerate(text.splitlines(), start=1):
        fields = split_record(raw)
        if not fields:
            continue
        if fields[0] == "0":
            break
        r = Record(path, lineno, fields, ("I", "ID", "H", "PMAX", "PMIN", "R", "D"))
        key = (r.int("I"), r.text("ID"))
        if key not in gen_index:
            raise CaseDataError(path, lineno, "ID", f"no generator {key[1]!r} at bus {key[0]}")
        if not np.isnan(alpha[gen_index[key]]):
            raise CaseDataError(path, lineno, "ID", f"generator {key[1]!r} at bus {key[0]} is listed twice; "
                                "give one participation factor per generator")
        alpha[gen_index[key]] = r.float("R")
        if alpha[gen_index[key]] < 0:
            raise CaseDataError(path, lineno, "R", "participation factor must be >= 0")
    missing = [f"{g.bus}/{g.id}" for g, a in zip(net.generators, alpha) if np.isnan(a)]
    if missing:
        raise CaseDataError(path, None, "R", f"no participation factor for generators {', '.join(missing)}")
    return alpha


@dataclass(frozen=True)
class Contingency:
    """Outage of one generator or one branch (index into the Network's tuple)."""

    label: str
    generator: int | None = None
    branch: int | None = None

    def apply(self, net: Network) -> Network:
        if self.generator is not None:
            return net.without_generator(self.generator)
        return net.without_branch(self.branch)


def read_con_text(text: str, path: str, net: Network) -> tuple[Contingency, ...]:
    """``CONTINGENCY label`` blocks with ``REMOVE UNIT id FROM BUS i`` or
    ``OPEN BRANCH FROM BUS i TO BUS j CIRCUIT ckt``, each closed by ``END``."""
    gen_index = {(g.bus, g.id): i for i, g in enumerate(net.generators)}
    branch_index = {}
    for k, br in enumerate(net.branches):
        branch_index[(br.from_bus, br.to_bus, br.id)] = k
        branch_index[(br.to_bus, br.from_bus, br.id)] = k
    out: list[Contingency] = []
    label = None
    event: Contingency | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        words = raw.split()
        if not words:
            continue
        up = [w.upper() for w in words]
        try:
            if up[0] == "CONTINGENCY" and label is None:
                label, event = words[1], None
            elif up[0] == "END" and label is not None:
                if event is None:
                    raise CaseDataError(path, lineno, "END", f"contingency {label} has no event")
                if any(c.label == label for c in out):
                    raise CaseDataError(path, lineno, "CONTINGENCY", f"contingency label {label!r} is used twice")
                out.append(event)
                label = None
            elif up[0] == "END":
                break
            elif up[:2] == ["REMOVE", "UNIT"] and label is not None:
                key = (int(words[5]), words[2])
                if key not in gen_index:
                    raise CaseDataError(path, lineno, "UNIT", f"no generator {words[2]!r} at bus {words[5]}")
                event = Contingency(label, generator=gen_index[key])
            elif up[:2] == ["OPEN", "BRANCH"] and label is not None:
                key = (int(words[4]), int(words[7]), words[9])
                if key not in branch_index:
                    raise CaseDataError(path, lineno, "BRANCH", f"no branch {key}")
                event = Contingency(label, branch=branch_index[key])
            else:
                raise CaseDataError(path, lineno, up[0], f"unexpected record: {raw.strip()!r}")
        except (IndexError, ValueError) as exc:
            if isinstance(exc, CaseDataError):
                raise
            raise CaseDataError(path, lineno, up[0], f"malformed record: {raw.strip()!r}") from None
    if label is not None:
        raise CaseDataError(path, None, "END", f"contingency {label} not closed")
    if not out:
        raise CaseDataError(path, None, "CONTINGENCY", "no contingencies; a GO Challenge 1 .con file lists at "
                            "least one (CONTINGENCY label ... END)")
    return tuple(out)


@dataclass(frozen=True)
class GoC1Case:
    """A Challenge 1 scenario: network with costs, participation factors
    (aligned with ``network.generators``) and contingencies."""

    network: Network
    alpha: np.ndarray
    contingencies: tuple[Contingency, ...]


def go_c1_case_from_text(raw: str, rop: str, inl: str, con: str, names=("raw", "rop", "inl", "con"),
                         case_name: str | None = None) -> GoC1Case:
    """Build a :class:`GoC1Case` from the four files' text (``names`` are
    used in error messages)."""
    net = read_raw_text(raw, names[0], case_name)
    costs = read_rop_text(rop, names[1], net)
    missing = [f"{g.bus}/{g.id}" for i, g in enumerate(net.generators) if g.in_service and i not in costs]
    if missing:
        raise CaseDataError(names[1], None, "generator dispatch", f"no cost for generators {', '.join(missing)}")
    gens = tuple(replace(g, cost=costs.get(i)) for i, g in enumerate(net.generators))
    net = check(replace(net, generators=gens))
    return GoC1Case(net, read_inl_text(inl, names[2], net), read_con_text(con, names[3], net))


def read_go_c1(raw: str | Path, rop: str | Path, inl: str | Path, con: str | Path) -> GoC1Case:
    """Read the four Challenge 1 files."""
    paths = [Path(p) for p in (raw, rop, inl, con)]
    return go_c1_case_from_text(*(read_case_text(p) for p in paths), names=tuple(str(p) for p in paths),
                                case_name=paths[0].stem)

