r"""Multi-machine frequency response after a generator trip, and the minimum frequency at every bus.

Around a pre-contingency AC power flow (bus voltages V_b = vm_b e^{j va_b}, outputs pg, qg),
each synchronous machine i (inertia constant H_i > 0) is a voltage E_i behind its transient
reactance x'_i, with E_i = V_b + j x'_i conj(S_i / V_b).  Linearized (all quantities per unit
on the system base, deviations from the pre-contingency state):

    delta_i' = 2 pi f0 omega_i                                         (rotor angle, rad)
    M_i omega_i' = dPm_i - dPe_i,   M_i = 2 H_i S_i / S_base             (swing equation)
    dPe = K (delta - C_g^T theta),  K_i = |E_i| |V_b| cos(angle E_i - va_b) / x'_i
    (J_theta + C_g K C_g^T) theta = C_g K delta - dP_load               (network, linearized AC:
                                                                      J_theta = dP_bus/d va)
    dP_load = P_lost e_trip + D_L pd_bus * omega_bus                   (trip, load damping)
    omega_bus = A omega,  A = (J_theta + C_g K C_g^T)^{-1} C_g K        (frequency divider:
                                                                      Milano & Ortega, 2017)

Governor and reheat turbine (Anderson & Mirheydar's model per machine, with a valve lag and
limits): gain G_i = (S_i / S_base) / R_i,

    T_G v_i' = -G_i omega_i - v_i,   v_i clipped to [pmin_i - pg_i, pmax_i - pg_i]
    T_R q_i' = v_i - q_i,            dPm_i = K_m (F_H v_i + (1 - F_H) q_i)

(T_G = 0: v_i = clip(-G_i omega_i)).  Eliminating theta leaves
M omega' = dPm - L_delta delta - D_omega omega - p_step with constant matrices, integrated by
fixed-step RK4 (the only nonlinearity is the valve limit).  The lost unit's power appears as a
step at its bus; inverter-based units (H = 0) keep their power.  Output: f_bus = f0 (1 + omega_bus)
and its minimum over the horizon (default 30 s).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from power.dynamic_data import DynamicData
from power.network import PerUnitNetwork


@dataclass(frozen=True)
class OperatingPoint:
    """Pre-contingency AC power flow: per bus of ``pu``, per in-service generator of ``pu``."""

    vm_pu: np.ndarray
    va_rad: np.ndarray
    pg_pu: np.ndarray
    qg_pu: np.ndarray


@dataclass(frozen=True)
class FrequencyResponse:
    bus_number: np.ndarray
    nadir_hz: np.ndarray  # minimum frequency per bus over the horizon
    nadir_time_s: np.ndarray
    t_s: np.ndarray | None = None  # recorded times (record_every > 0)
    f_bus_hz: np.ndarray | None = None  # len(t_s) x n_bus
    run_time_s: float = 0.0


@dataclass(frozen=True)
class FrequencyModel:
    """The linearized system of the module doc, ready to integrate."""

    f0_hz: float
    bus_number: np.ndarray
    m: np.ndarray
    l_delta: np.ndarray
    d_omega: np.ndarray
    p_step: np.ndarray
    gain: np.ndarray
    valve_lo: np.ndarray
    valve_hi: np.ndarray
    tg_s: np.ndarray
    fh: np.ndarray
    tr_s: np.ndarray
    km: np.ndarray
    bus_weights: np.ndarray  # A: n_bus x n_machines

    def simulate(self, t_end_s: float = 30.0, dt_s: float = 0.01, record_every: int = 0) -> FrequencyResponse:
        """RK4 over [0, t_end]; ``record_every`` > 0 keeps every k-th bus-frequency sample."""
        if not (np.isfinite(t_end_s) and np.isfinite(dt_s) and 0 < dt_s <= t_end_s):
            raise ValueError(f"simulate: need 0 < dt_s <= t_end_s (seconds), got dt_s={dt_s!r}, "
                             f"t_end_s={t_end_s!r}.")
        start = time.perf_counter()
        n = len(self.m)
        w0 = 2 * np.pi * self.f0_hz
        lag = self.tg_s > 0
        inv_tg = np.where(lag, 1.0 / np.where(lag, self.tg_s, 1.0), 0.0)
        inv_m, inv_tr = 1.0 / self.m, 1.0 / self.tr_s
        hp, lp = self.km * self.fh, self.km * (1 - self.fh)
        lo, hi = self.valve_lo, self.valve_hi

        def rhs(x):
            delta, omega, v, q = x[:n], x[n:2 * n], x[2 * n:3 * n], x[3 * n:]
            demand = -self.gain * omega
            valve = np.where(lag, v, np.clip(demand, lo, hi))
            pe = self.l_delta @ delta + self.d_omega @ omega + self.p_step
            return np.concatenate((w0 * omega, (hp * valve + lp * q - pe) * inv_m,
                                   (demand - v) * inv_tg, (valve - q) * inv_tr))

        steps = int(round(t_end_s / dt_s))
        x = np.zeros(4 * n)
        nadir = np.zeros(len(self.bus_number))
        nadir_step = np.zeros(len(self.bus_number), dtype=int)
        times, trace = [0.0], [np.zeros(len(self.bus_number))]
        for k in range(1, steps + 1):
            k1 = rhs(x)
            k2 = rhs(x + 0.5 * dt_s * k1)
            k3 = rhs(x + 0.5 * dt_s * k2)
            k4 = rhs(x + dt_s * k3)
            x = x + dt_s / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            x[2 * n:3 * n] = np.clip(x[2 * n:3 * n], lo, hi)
            omega_bus = self.bus_weights @ x[n:2 * n]
            lower = omega_bus < nadir
            nadir = np.where(lower, omega_bus, nadir)
            nadir_step = np.where(lower, k, nadir_step)
            if record_every and k % record_every == 0:
                times.append(k * dt_s)
                trace.append(omega_bus)
        f0 = self.f0_hz
        recorded = bool(record_every)
        return FrequencyResponse(
            bus_number=self.bus_number, nadir_hz=f0 * (1 + nadir), nadir_time_s=nadir_step * dt_s,
            t_s=np.array(times) if recorded else None,
            f_bus_hz=f0 * (1 + np.array(trace)) if recorded else None,
            run_time_s=time.perf_counter() - start)


def angle_jacobian(pu: PerUnitNetwork, vm: np.ndarray, va: np.ndarray) -> np.ndarray:
    """J_theta = d P_bus / d va (n_bus x n_bus) of the branch flows of ``power.acopf``."""
    f, t = pu.from_bus, pu.to_bus
    tm = pu.tap**2
    tr, ti = pu.tap * np.cos(pu.shift), pu.tap * np.sin(pu.shift)
    g, b = pu.g, pu.b
    d = va[f] - va[t]
    vv = vm[f] * vm[t]
    # d p_fr / d d and d p_to / d d, with d = va_f - va_t
    dp_fr = vv * (-(-g * tr + b * ti) * np.sin(d) + (-b * tr - g * ti) * np.cos(d)) / tm
    dp_to = vv * (-(-g * tr - b * ti) * np.sin(d) - (-b * tr + g * ti) * np.cos(d)) / tm
    nb = pu.n_bus
    jac = np.zeros((nb, nb))
    for rows, dp in ((f, dp_fr), (t, dp_to)):
        np.add.at(jac, (rows, f), dp)
        np.add.at(jac, (rows, t), -dp)
    return jac


def linearize(pu: PerUnitNetwork, data: DynamicData, point: OperatingPoint, trip: int) -> FrequencyModel:
    """The model of the module doc for the loss of generator ``trip`` (index into the Network's
    generators; it must be in service in ``pu``)."""
    gens = pu.gen_record
    where = np.flatnonzero(gens == trip)
    if len(where) != 1:
        raise ValueError(f"generator {trip} is not in service in this operating point; "
                         "the tripped unit must be online.")
    lost = where[0]
    base = pu.base_mva
    keep = np.flatnonzero((data.h_s[gens] > 0) & (np.arange(len(gens)) != lost))
    if len(keep) == 0:
        raise ValueError("no synchronous machine is left after the trip; give some units h_s > 0.")
    rec, bus = gens[keep], pu.gen_bus[keep]
    s_ratio = data.mbase_mva[rec] / base
    x_sys = data.xd_pu[rec] / s_ratio
    v = point.vm_pu[bus] * np.exp(1j * point.va_rad[bus])
    e = v + 1j * x_sys * np.conj((point.pg_pu[keep] + 1j * point.qg_pu[keep]) / v)
    k = np.abs(e) * np.abs(v) * np.cos(np.angle(e) - np.angle(v)) / x_sys

    nb, nm = pu.n_bus, len(keep)
    cg = np.zeros((nb, nm))
    cg[bus, np.arange(nm)] = 1.0
    y = angle_jacobian(pu, point.vm_pu, point.va_rad) + cg @ np.diag(k) @ cg.T
    y_inv = np.linalg.inv(y)
    weights = y_inv @ cg * k  # A = Y^-1 C_g K
    spread = k[:, None] * (cg.T @ y_inv)  # S = K C_g^T Y^-1: bus power -> machine power
    pd_bus = np.bincount(pu.load_bus, weights=pu.pd, minlength=nb)
    step_bus = np.zeros(nb)
    step_bus[pu.gen_bus[lost]] = point.pg_pu[lost]
    return FrequencyModel(
        f0_hz=data.f0_hz, bus_number=pu.bus_number,
        m=2 * data.h_s[rec] * s_ratio,
        l_delta=np.diag(k) - spread @ cg * k,
        d_omega=spread @ (data.load_damping * pd_bus[:, None] * weights),
        p_step=spread @ step_bus,
        gain=np.where(np.isfinite(data.droop[rec]), s_ratio / data.droop[rec], 0.0),
        valve_lo=np.minimum(pu.pmin[keep] - point.pg_pu[keep], 0.0),
        valve_hi=np.maximum(pu.pmax[keep] - point.pg_pu[keep], 0.0),
        tg_s=data.tg_s[rec], fh=data.fh[rec], tr_s=data.tr_s[rec], km=data.km[rec],
        bus_weights=weights,
    )


def simulate_trip(pu: PerUnitNetwork, data: DynamicData, point: OperatingPoint, trip: int,
                  t_end_s: float = 30.0, dt_s: float = 0.01, record_every: int = 0) -> FrequencyResponse:
    """:func:`linearize`, then :meth:`FrequencyModel.simulate`."""
    return linearize(pu, data, point, trip).simulate(t_end_s, dt_s, record_every)
