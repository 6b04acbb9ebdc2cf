"""Benchmark results next to each other: OUT.json (header and rows) and OUT.md (the table), and
the description of the machine they came from."""
import argparse
import json
import os
import platform
import sys
from pathlib import Path

import torch

from nncas.apps.storage import check_output_path, write_text_atomic


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one), else its architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """What a benchmark ran on: CPU, cores, torch threads, versions, and the GPU if any."""
    info = {"cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": sys.version.split()[0]}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def whole_numbers(text: str) -> list[int]:
    """argparse type: comma-separated positive whole numbers ("128,512"; "" for none)."""
    try:
        values = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        values = [0]
    if any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of positive whole numbers; give e.g. 128,512")
    return values


def check_report_path(out: str | None) -> None:
    """Refuse, before any measurement, an ``out`` whose OUT.json or OUT.md cannot be written."""
    if out:
        for suffix in (".json", ".md"):
            check_output_path(Path(out).with_suffix(suffix), "--out")


def write_report(out: str | None, header: str, rows: list[dict], table: str) -> None:
    """Write ``OUT.json`` and ``OUT.md`` atomically; nothing when ``out`` is None."""
    if not out:
        return
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out.with_suffix(".json"), json.dumps({"header": header, "rows": rows}, indent=1))
    write_text_atomic(out.with_suffix(".md"), table)
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
