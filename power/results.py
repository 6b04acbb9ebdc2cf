"""Reporting solver results: a one-screen summary and atomic JSON files."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

from nncas.apps.storage import write_text_atomic


def write_json_atomic(path: str | Path, data: dict) -> None:
    """Write ``data`` as JSON whole or not at all (:func:`nncas.apps.storage.write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")


@dataclass(frozen=True)
class SolveSummary:
    """What every solver result starts with, and its one-screen summary."""

    case: str
    status: str
    success: bool
    objective_usd_per_h: float
    iterations: int
    solve_time_s: float
    build_time_s: float

    @staticmethod
    def fields_of(case: str, sol) -> dict:
        """The summary fields of an ``NlpSolution`` ``sol`` of case ``case``."""
        return {"case": case, "status": sol.status, "success": sol.success,
                "objective_usd_per_h": sol.objective, "iterations": sol.iterations,
                "solve_time_s": sol.solve_time_s, "build_time_s": sol.build_time_s}

    def summary(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(SolveSummary)}


def report(result, json_path: str | None) -> int:
    """The command lines' ending: print the summary, write ``result.to_json()`` to
    ``json_path`` if given; exit status 0 when the solver succeeded, else 1."""
    print_summary(result.summary())
    if json_path:
        write_json_atomic(json_path, result.to_json())
        print(f"result: {json_path}")
    return 0 if result.success else 1


def print_summary(summary: dict) -> None:
    """status, objective, iterations and time, one per line."""
    print(f"case: {summary['case']}")
    print(f"status: {summary['status']}")
    print(f"objective: {summary['objective_usd_per_h']:.6f} $/h")
    print(f"iterations: {summary['iterations']}")
    print(f"time: {summary['solve_time_s']:.3f} s solve, {summary['build_time_s']:.3f} s build")
