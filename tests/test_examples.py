"""The examples run as a user runs them, and their formulations and routes agree."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("script", ["quickstart.py", "nlpsol_quickstart.py"])
def test_example_formulations_reach_one_optimum(script):
    out = _run(script)
    rows = [line for line in out.splitlines() if re.match(r"^(full|reduced|graybox)\S*\s+(\d|casadi|nncas)", line)]
    assert len(rows) == (4 if script == "quickstart.py" else 6)
    column = 4 if script == "quickstart.py" else 2
    objectives = [float(row.split()[column]) for row in rows]
    tolerance = 1e-5 if script == "quickstart.py" else 1e-6  # l4casadi: float32; IPOPT's default tol
    assert max(objectives) - min(objectives) <= tolerance * max(objectives)
