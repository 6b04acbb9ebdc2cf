"""docs/api.md's python blocks run as written, each on its own, and every public name of
nncas is documented (docs/api.md, or docs/errors.md for the exceptions)."""
import re
from pathlib import Path

import pytest

import nncas

DOCS = Path(__file__).resolve().parent.parent / "docs"
API = (DOCS / "api.md").read_text()
BLOCKS = re.findall(r"^```python\n(.*?)^```", API, flags=re.S | re.M)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_the_python_blocks_run(index):
    exec(compile(BLOCKS[index], f"docs/api.md python block {index + 1}", "exec"), {"__name__": f"api_block_{index}"})


def test_there_are_blocks_to_run():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("name", nncas.__all__)
def test_every_public_name_is_documented(name):
    text = API + (DOCS / "errors.md").read_text()
    assert re.search(rf"\b{re.escape(name)}\b", text), f"nncas.{name} is not in docs/api.md or docs/errors.md"
