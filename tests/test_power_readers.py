"""Readers: what they parse, and the errors (file, line, field) on bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from power.cases import CASE3_M, SCOPF3_CON, SCOPF3_INL, SCOPF3_RAW, SCOPF3_ROP, case3, scopf3_case
from power.errors import CaseDataError
from power.matpower import read_matpower
from power.network import per_unit
from power.psse import read_go_c1

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _line_of(text: str, fragment: str) -> int:
    """1-based number of the only line containing ``fragment``."""
    hits = [k for k, line in enumerate(text.splitlines(), start=1) if fragment in line]
    assert len(hits) == 1, hits
    return hits[0]


def _matpower_error(tmp_path, text: str) -> CaseDataError:
    path = tmp_path / "case.m"
    path.write_text(text)
    with pytest.raises(CaseDataError) as info:
        read_matpower(path)
    assert info.value.path == str(path)
    return info.value


BUS3 = "\t3\t1\t150\t0\t0\t0\t1\t1.0\t0\t138\t1\t1.1\t0.9;"
GEN2 = "\t2\t50\t0\t100\t-100\t1.0\t100\t1\t250\t0;"
BRANCH13 = "\t1\t3\t0\t0.1\t0\t0\t0\t0\t0\t0\t1\t-30\t30;"


@pytest.mark.parametrize("old, new, fragment, field, message", [
    (BUS3, BUS3.replace("1.1\t0.9", "1.1\tlow"), "low", "bus.VMIN", "not a number: 'low'"),
    (BUS3, BUS3.replace("1.1\t0.9", "0.9\t1.1"), "0.9\t1.1;", "VMIN", "exceeds VMAX"),
    (GEN2, "\t2\t50\t0\t100\t-100;", "\t2\t50\t0\t100\t-100;", "gen", "expected at least 10 columns"),
    (BRANCH13, BRANCH13.replace("\t1\t3\t", "\t1\t7\t"), "\t1\t7\t", "to_bus", "unknown bus 7"),
    (BRANCH13, BRANCH13.replace("\t1\t3\t0\t0.1", "\t1\t3\t0\t0"), "\t1\t3\t0\t0\t0\t0\t0\t0\t0\t0\t1", "BR_X",
     "zero impedance"),
    ("\t2\t0\t0\t3\t0.02\t12\t0;", "\t7\t0\t0\t3\t0.02\t12\t0;", "\t7\t0\t0\t3", "gencost.MODEL", "must be 1"),
    ("\t2\t0\t0\t3\t0.02\t12\t0;", "\t2\t0\t0\t3\t0.02\t12.5\t0;\n\t2\t0\t0\t2\t1\t0;", "0.01\t10",
     "mpc.gencost", "3 rows for 2 generators"),
])
def test_matpower_errors_name_file_line_and_field(tmp_path, old, new, fragment, field, message):
    assert old in CASE3_M
    text = CASE3_M.replace(old, new)
    err = _matpower_error(tmp_path, text)
    assert err.line == _line_of(text, fragment)
    assert err.field == field
    assert message in err.message
    assert str(err).startswith(f"{tmp_path / 'case.m'}:{err.line}: {field}: ")


def test_matpower_missing_table_and_unclosed_matrix(tmp_path):
    err = _matpower_error(tmp_path, CASE3_M.replace("mpc.branch", "mpc.branches"))
    assert (err.line, err.field, err.message) == (None, "mpc.branch", "table missing")
    err = _matpower_error(tmp_path, CASE3_M.rstrip().removesuffix("];"))
    assert "not closed" in err.message


def test_matpower_nonconvex_piecewise_cost_is_refused(tmp_path):
    text = CASE3_M.replace("\t2\t0\t0\t3\t0.01\t10\t0;", "\t1\t0\t0\t3\t0\t0\t100\t2000\t250\t2500;")
    err = _matpower_error(tmp_path, text)
    assert err.field == "cost points" and "convex" in err.message
    assert err.line == _line_of(text, "\t1\t100\t0\t100\t-100")  # generator 1's row


def test_matpower_conventions():
    net = case3()
    assert [g.cost.coeffs_ascending for g in net.generators] == [(0.0, 10.0, 0.01), (0.0, 12.0, 0.02)]
    assert all(br.rate_a_mva == math.inf and br.tap_ratio == 1.0 for br in net.branches)
    pu = per_unit(net)
    assert pu.pd.tolist() == [1.5]
    assert pu.angmax == pytest.approx(np.deg2rad([30, 30, 30]))


def test_go_c1_embedded_case_parses():
    case = scopf3_case()
    net = case.network
    assert [(g.bus, g.id) for g in net.generators] == [(1, "A"), (2, "B"), (3, "C")]
    assert [(b.from_bus, b.to_bus) for b in net.branches] == [(1, 2), (1, 3), (2, 3)]
    assert net.branches[1].rate_a_mva == 100.0
    assert net.branches[2].tap_ratio == 1.0 and net.branches[2].x_pu == 0.1  # the transformer
    assert net.generators[2].cost.mw == (0.0, 50.0, 100.0)
    assert case.alpha.tolist() == [1.0, 1.0, 1.0]
    assert [(c.label, c.generator) for c in case.contingencies] == [("GEN_C", 2)]


def _go_files(tmp_path, **texts):
    names = {"raw": SCOPF3_RAW, "rop": SCOPF3_ROP, "inl": SCOPF3_INL, "con": SCOPF3_CON}
    names.update(texts)
    paths = []
    for ext, text in names.items():
        path = tmp_path / f"case.{ext}"
        path.write_text(text)
        paths.append(path)
    return paths


RAW_GEN_C = "    3,'C ',   100.000"
RAW_XFMR = "     2,     3,    0,'1 ',1,1,1"


@pytest.mark.parametrize("ext, old, new, fragment, field, message", [
    ("raw", RAW_GEN_C + ",     0.000,   150.000", RAW_GEN_C + ",     0.000,   lots", "lots", "QT",
     "not a number: 'lots'"),
    ("raw", " 0,   100.00, 33,", " 0,   100.00, 34,", " 0,   100.00, 34,", "REV", "version 33"),
    ("raw", RAW_XFMR, "     2,     3,    1,'1 ',1,1,1", "     2,     3,    1,", "K", "three-winding"),
    ("raw", "    3,'1 ',1,   1,   1,   200.000,    20.000,     0.000",
     "    3,'1 ',1,   1,   1,   200.000,    20.000,     5.000", "200.000,    20.000,     5.000", "IP",
     "constant-power"),
    ("raw", "    1,     3,'1 '", "    1,     9,'1 '", "    1,     9,'1 '", "to_bus", "unknown bus 9"),
    ("rop", "3, C , 1.0, 3", "3, D , 1.0, 3", "3, D , 1.0, 3", "GENID", "no generator 'D' at bus 3"),
    ("rop", "3, 1.0, 0.0, 1.0, 2, 1, 3", "3, 1.0, 0.0, 1.0, 2, 1, 9", "2, 1, 9", "CTBL", "no cost table 9"),
    ("rop", "150.0, 4500.0", "150.0, 9900.0", "150.0, 9900.0", "cost points", "convex"),
    ("inl", "2, B , 4.0, 3.0, 0.0, 1.0, 0.0", "2, B , 4.0, 3.0, 0.0, -1.0, 0.0", "-1.0", "R", ">= 0"),
    ("con", "REMOVE UNIT C FROM BUS 3", "REMOVE UNIT Z FROM BUS 3", "UNIT Z", "UNIT", "no generator 'Z'"),
    ("con", "REMOVE UNIT C FROM BUS 3", "TRIP EVERYTHING", "TRIP", "TRIP", "unexpected record"),
])
def test_go_c1_errors_name_file_line_and_field(tmp_path, ext, old, new, fragment, field, message):
    source = {"raw": SCOPF3_RAW, "rop": SCOPF3_ROP, "inl": SCOPF3_INL, "con": SCOPF3_CON}[ext]
    assert old in source
    text = source.replace(old, new)
    paths = _go_files(tmp_path, **{ext: text})
    with pytest.raises(CaseDataError) as info:
        read_go_c1(*paths)
    err = info.value
    line = _line_of(text, fragment)
    if field == "cost points":  # reported where the generator is defined, in the RAW file
        assert err.path == str(tmp_path / "case.raw")
    else:
        assert err.path == str(tmp_path / f"case.{ext}")
        assert err.line == line
    assert err.field == field
    assert message in err.message


@pytest.mark.parametrize("cut, where, missing", [
    ("0 / END OF BUS DATA", "bus data", "the bus data and the 18 sections after it"),
    ("0 / END OF GENERATOR DATA", "generator data", "the generator data and the 15 sections after it"),
    ("Q", "end of file", "the closing Q"),
])
def test_a_raw_file_cut_short_is_refused(tmp_path, cut, where, missing):
    """A file cut before a section end (or before its closing Q) is never read as a case."""
    lines = SCOPF3_RAW.splitlines()
    stop = next(k for k, line in enumerate(lines) if line.startswith(cut))
    text = "\n".join(lines[:stop]) + "\n"
    paths = _go_files(tmp_path, raw=text)
    with pytest.raises(CaseDataError) as info:
        read_go_c1(*paths)
    assert info.value.path == str(tmp_path / "case.raw") and info.value.line == stop
    assert info.value.field == where and missing in info.value.message and "ends early" in info.value.message


def test_a_raw_file_closed_too_early_is_refused(tmp_path):
    text = SCOPF3_RAW.replace("0 / END OF GENERATOR DATA, BEGIN BRANCH DATA", "Q")
    paths = _go_files(tmp_path, raw=text)
    with pytest.raises(CaseDataError, match="Q ends the file before the generator data"):
        read_go_c1(*paths)


def test_go_c1_missing_participation_factor(tmp_path):
    paths = _go_files(tmp_path, inl=SCOPF3_INL.replace("2, B , 4.0, 3.0, 0.0, 1.0, 0.0\n", ""))
    with pytest.raises(CaseDataError, match=r"case\.inl: R: no participation factor for generators 2/B"):
        read_go_c1(*paths)


@pytest.mark.shared
def test_hawaii37_parses():
    folder = SHARED / "hawaii37"
    if not (folder / "hawaii37.raw").exists():
        pytest.skip("hawaii37 data not present")
    case = read_go_c1(folder / "hawaii37.raw", folder / "hawaii37.rop", folder / "hawaii37.inl",
                      folder / "hawaii37-1gen.con")
    net = case.network
    assert (len(net.buses), len(net.loads), len(net.generators)) == (37, 27, 45)
    assert sum(g.in_service for g in net.generators) == 39
    assert len(net.branches) == 77 + 12  # lines + two-winding transformers
    assert sum(d.pd_mw for d in net.loads) == pytest.approx(1136.29)
    assert net.shunts[0].bs_mvar == 32.0  # switched shunt at BINIT
    outage = net.generators[case.contingencies[0].generator]
    assert (case.contingencies[0].label, outage.bus, outage.id) == ("G1", 23, "5")
    assert case.alpha[case.contingencies[0].generator] == 38.75


@pytest.mark.parametrize("ext, text, field, message", [
    ("con", SCOPF3_CON.replace("END\nEND", "END\nCONTINGENCY GEN_C\nREMOVE UNIT B FROM BUS 2\nEND\nEND"),
     "CONTINGENCY", "contingency label 'GEN_C' is used twice"),
    ("con", "", "CONTINGENCY", "no contingencies"),
    ("inl", SCOPF3_INL.replace("3, C , 4.0, 1.0, 0.0, 1.0, 0.0\n", "3, C , 4.0, 1.0, 0.0, 1.0, 0.0\n"
                               "2, B , 4.0, 3.0, 0.0, 9.0, 0.0\n"), "ID", "listed twice"),
    ("rop", SCOPF3_ROP.replace("3, C , 1.0, 3\n", "3, C , 1.0, 3\n2, B , 1.0, 1\n"), "GENID",
     "has a second dispatch record"),
])
def test_duplicate_and_empty_go_c1_records_are_refused(tmp_path, ext, text, field, message):
    with pytest.raises(CaseDataError) as info:
        read_go_c1(*_go_files(tmp_path, **{ext: text}))
    assert info.value.path == str(tmp_path / f"case.{ext}")
    assert info.value.field == field and message in info.value.message


@pytest.mark.parametrize("old, new, field", [
    ("\t3\t1\t150\t0", "\t3\t1\tNaN\t0", "bus.PD"),
    ("\t1\t100\t0\t100\t-100\t1.0\t100\t1\t250", "\t1\t100\t0\t100\t-100\t1.0\t100\t1\tnan", "gen.PMAX"),
])
def test_matpower_non_finite_data_is_refused(tmp_path, old, new, field):
    assert old in CASE3_M
    err = _matpower_error(tmp_path, CASE3_M.replace(old, new))
    assert err.field == field and "not a finite number" in err.message


def test_files_that_are_not_utf8_name_the_file(tmp_path):
    path = tmp_path / "case.m"
    path.write_bytes(CASE3_M.encode() + b"\xff\xfe")
    with pytest.raises(CaseDataError, match=r"case\.m: encoding: not UTF-8"):
        read_matpower(path)
