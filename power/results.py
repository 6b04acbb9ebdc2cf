"""Reporting solver results: a one-screen summary and atomic JSON files."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


def write_json_atomic(path: str | Path, data: dict) -> None:
    """Write ``data`` as JSON via a temporary file in the same folder and
    ``os.replace``, so readers never see a half-written file.  The file gets
    the usual permissions (0666 minus the umask)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


SUMMARY_FIELDS = ("case", "status", "success", "objective_usd_per_h", "iterations",
                  "solve_time_s", "build_time_s")


class SolveSummary:
    """For result records carrying :data:`SUMMARY_FIELDS`: their one-screen summary."""

    def summary(self) -> dict:
        return {name: getattr(self, name) for name in SUMMARY_FIELDS}


def report(result, json_path: str | None) -> int:
    """The command lines' ending: print the summary, write ``result.to_json()`` to
    ``json_path`` if given; exit status 0 when the solver succeeded, else 1."""
    print_summary(result.summary())
    if json_path:
        write_json_atomic(json_path, result.to_json())
    return 0 if result.success else 1


def print_summary(summary: dict) -> None:
    """status, objective, iterations and time, one per line."""
    print(f"case: {summary['case']}")
    print(f"status: {summary['status']}")
    print(f"objective: {summary['objective_usd_per_h']:.6f} $/h")
    print(f"iterations: {summary['iterations']}")
    print(f"time: {summary['solve_time_s']:.3f} s solve, {summary['build_time_s']:.3f} s build")
