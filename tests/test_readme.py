"""The README's python blocks run as written, each on its own (the classifier and MNIST come
from the cache that tests/test_vision_adversarial.py fills, or are fetched and trained once)."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_the_readme_has_its_two_python_blocks():
    assert len(BLOCKS) == 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs_as_written(index, capsys):
    namespace = {"__name__": f"readme_block_{index}"}
    exec(compile(BLOCKS[index], f"README.md python block {index + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "iterations" in out.lower()
    if "S" in namespace:
        assert namespace["S"].stats()["success"], namespace["S"].stats()["return_status"]
        assert float(namespace["r"]["g"][-1]) >= 0.6 - 1e-6
    else:
        assert namespace["sol"].value(namespace["y"][3]) >= 0.6 - 1e-6
