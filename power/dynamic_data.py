"""Dynamic data of the generators for :mod:`power.dynamics`, and locating a GO Challenge 1 case.

Per generator (file order of ``Network.generators``):

    h_s        inertia constant H on the machine base (s); 0 marks an inverter-based unit
               (no inertia, no governor: constant power after the event)
    mbase_mva  machine base S; the swing equation uses M = 2 H S / S_base on the system base
    xd_pu      transient reactance x'_d on the machine base
    droop      governor droop R on the machine base (inf: no governor)
    tg_s       governor (valve) time constant; 0 makes the valve follow -omega / R at once
    fh, tr_s   reheat turbine: high-pressure fraction F_H and reheat time constant T_R
    km         mechanical power gain K_m of the governed response

plus the load damping D_L (per unit load change per per-unit frequency change, at every
load) and the nominal frequency.

Defaults for cases without dynamic data (:func:`default_dynamic_data`): H by unit size
(``H_BY_PMAX``), S = 1.1 Pmax, x'_d = 0.3, R = 0.05 (5% droop), T_G = 0.2 s, F_H = 0.3,
T_R = 8 s, K_m = 1, D_L = 1.  Hawaii 37 (:func:`hawaii37_dynamic_data`): H per bus from the
grid's PowerWorld GENROU export; units at buses without a GENROU record are inverter-based.
A JSON file overrides either (:func:`load_dynamic_data`)::

    {"base": "default" | "hawaii37",          (optional; chosen from the case name otherwise)
     "load_damping": 1.5, "f0_hz": 60,        (optional)
     "all": {"droop": 0.04},                  (optional, applied to every synchronous unit)
     "units": [{"bus": 23, "id": "5", "h_s": 5.0}, {"bus": 35, "tg_s": 0.5}]}
                                              (id optional: all units at the bus)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from power.cases import scopf3_case
from power.network import Network
from power.psse import GoC1Case, read_go_c1

# (upper Pmax limit in MW, H in s on the machine base): typical values for small, medium and
# large thermal units (Kundur, Power System Stability and Control, Table 3.2: 2.5-6 s)
H_BY_PMAX = ((10.0, 2.5), (50.0, 3.5), (200.0, 4.5), (np.inf, 5.5))
# H per bus of the Hawaii 37 synthetic grid (GENROU, machine base)
HAWAII37_H_BY_BUS = {2: 3.69, 23: 6.15, 34: 4.35, 35: 5.22, 36: 4.42, 37: 2.48}
UNIT_FIELDS = ("h_s", "mbase_mva", "xd_pu", "droop", "tg_s", "fh", "tr_s", "km")
SYNCHRONOUS_DEFAULTS = {"xd_pu": 0.3, "droop": 0.05, "tg_s": 0.2, "fh": 0.3, "tr_s": 8.0, "km": 1.0}


@dataclass(frozen=True)
class DynamicData:
    """Per-generator arrays (see the module doc) and system constants."""

    h_s: np.ndarray
    mbase_mva: np.ndarray
    xd_pu: np.ndarray
    droop: np.ndarray
    tg_s: np.ndarray
    fh: np.ndarray
    tr_s: np.ndarray
    km: np.ndarray
    load_damping: float = 1.0
    f0_hz: float = 60.0
    source: str = "default"

    @property
    def synchronous(self) -> np.ndarray:
        return self.h_s > 0

    def describe(self) -> dict:
        """JSON-ready copy (for sample and model metadata)."""
        out = {k: getattr(self, k).tolist() for k in UNIT_FIELDS}
        out["droop"] = [d if np.isfinite(d) else None for d in self.droop.tolist()]
        return {**out, "load_damping": self.load_damping, "f0_hz": self.f0_hz, "source": self.source}


def inertia_by_size(pmax_mw: np.ndarray) -> np.ndarray:
    """H (s) from ``H_BY_PMAX``."""
    limits = np.array([limit for limit, _ in H_BY_PMAX])
    values = np.array([h for _, h in H_BY_PMAX])
    return values[np.searchsorted(limits, pmax_mw, side="left")]


def _synchronous(net: Network, h_s: np.ndarray, source: str) -> DynamicData:
    n = len(net.generators)
    pmax = np.array([g.pmax_mw for g in net.generators])
    sync = h_s > 0
    columns = {k: np.full(n, v, dtype=float) for k, v in SYNCHRONOUS_DEFAULTS.items()}
    columns["droop"] = np.where(sync, columns["droop"], np.inf)
    return DynamicData(h_s=h_s.astype(float), mbase_mva=1.1 * np.maximum(pmax, 1.0), source=source,
                       **columns)


def default_dynamic_data(net: Network) -> DynamicData:
    """Every generator synchronous with H by size and the defaults of the module doc."""
    return _synchronous(net, inertia_by_size(np.array([g.pmax_mw for g in net.generators])), "default")


def hawaii37_dynamic_data(net: Network) -> DynamicData:
    """Hawaii 37: H per bus (``HAWAII37_H_BY_BUS``), 5% droop (the GGOV1 value); units at other
    buses (26, 27, 28, 33: wind and solar) are inverter-based."""
    h_s = np.array([HAWAII37_H_BY_BUS.get(g.bus, 0.0) for g in net.generators])
    return _synchronous(net, h_s, "hawaii37")


BASES = {"default": default_dynamic_data, "hawaii37": hawaii37_dynamic_data}


def dynamic_data_for(net: Network, path: str | Path | None = None) -> DynamicData:
    """Hawaii 37 data for a case named ``hawaii37``, else the defaults; then the overrides in
    the JSON file ``path`` if given."""
    if path is not None:
        return load_dynamic_data(path, net)
    return BASES["hawaii37" if net.name.lower().startswith("hawaii37") else "default"](net)


def load_dynamic_data(path: str | Path, net: Network) -> DynamicData:
    """Apply the JSON overrides in ``path`` (format in the module doc)."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read dynamic data {path}: {err}") from err
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: expected a JSON object with keys base, load_damping, f0_hz, all, units.")
    unknown = set(spec) - {"base", "load_damping", "f0_hz", "all", "units"}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; allowed: base, load_damping, f0_hz, "
                         "all, units.")
    base_name = spec.get("base", "hawaii37" if net.name.lower().startswith("hawaii37") else "default")
    if base_name not in BASES:
        raise ValueError(f"{path}: base {base_name!r} is not one of {sorted(BASES)}.")
    data = BASES[base_name](net)
    columns = {k: getattr(data, k).copy() for k in UNIT_FIELDS}
    entries = [(dict(spec.get("all", {})), data.synchronous)]
    for entry in spec.get("units", []):
        entry = dict(entry)
        if "bus" not in entry:
            raise ValueError(f"{path}: every entry of 'units' needs a 'bus' (and optionally an 'id').")
        bus, unit = entry.pop("bus"), entry.pop("id", None)
        rows = np.array([g.bus == bus and (unit is None or g.id == str(unit)) for g in net.generators])
        if not rows.any():
            raise ValueError(f"{path}: no generator {unit!r} at bus {bus} in case {net.name}.")
        entries.append((entry, rows))
    for values, rows in entries:
        bad = set(values) - set(UNIT_FIELDS)
        if bad:
            raise ValueError(f"{path}: unknown unit fields {sorted(bad)}; allowed: {', '.join(UNIT_FIELDS)}.")
        for key, value in values.items():
            columns[key][rows] = np.inf if value is None else float(value)
    out = replace(data, **columns, source=f"{base_name} + {path.name}")
    for key in ("load_damping", "f0_hz"):
        if key in spec:
            out = replace(out, **{key: float(spec[key])})
    _validate(out, path)
    return out


def _validate(data: DynamicData, where) -> None:
    for f in fields(DynamicData):
        value = getattr(data, f.name)
        if isinstance(value, np.ndarray) and np.any(value < 0):
            raise ValueError(f"{where}: {f.name} must not be negative.")
    sync = data.synchronous
    if np.any(data.mbase_mva[sync] <= 0) or np.any(data.xd_pu[sync] <= 0):
        raise ValueError(f"{where}: synchronous units need mbase_mva > 0 and xd_pu > 0.")
    if np.any(data.droop == 0) or np.any(data.tr_s[sync] <= 0):
        raise ValueError(f"{where}: droop must be positive (null for no governor) and tr_s > 0.")


def load_case(spec: str | Path) -> GoC1Case:
    """``"example"`` (the embedded 3-bus case) or a folder holding exactly one each of
    ``*.raw``, ``*.rop``, ``*.inl`` and ``*.con`` (GO Challenge 1 files)."""
    if str(spec) == "example":
        return scopf3_case()
    folder = Path(spec)
    if not folder.is_dir():
        raise ValueError(f"case {spec!r}: give a folder with .raw/.rop/.inl/.con files, or 'example'.")
    files = []
    for ext in ("raw", "rop", "inl", "con"):
        found = sorted(folder.glob(f"*.{ext}"))
        if len(found) != 1:
            raise ValueError(f"case folder {folder} needs exactly one *.{ext} file, found {len(found)}.")
        files.append(found[0])
    return read_go_c1(*files)


def tripped_generator(case: GoC1Case) -> int:
    """Index of the generator lost in the case's first generator contingency."""
    for cont in case.contingencies:
        if cont.generator is not None:
            return cont.generator
    raise ValueError(f"case {case.network.name} has no generator contingency; the frequency "
                     "simulation needs one (REMOVE UNIT ... FROM BUS ... in the .con file).")
