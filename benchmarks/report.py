"""Benchmark results next to each other: OUT.json (header and rows) and OUT.md (the table)."""
import json
from pathlib import Path

from nncas.storage import write_text_atomic


def write_report(out: str | None, header: str, rows: list[dict], table: str) -> None:
    """Write ``OUT.json`` and ``OUT.md`` atomically; nothing when ``out`` is None."""
    if not out:
        return
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out.with_suffix(".json"), json.dumps({"header": header, "rows": rows}, indent=1))
    write_text_atomic(out.with_suffix(".md"), table)
