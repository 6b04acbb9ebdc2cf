"""The README's python blocks run as written, each on its own (the classifier and MNIST come
from the cache that tests/test_vision_adversarial.py fills, or are fetched and trained once),
and both routes report the same problem alike."""
import re
from pathlib import Path

import pytest

import nncas

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


@pytest.fixture(scope="module")
def ran():
    """Each block's namespace after running it in a fresh one."""
    namespaces = []
    for index, block in enumerate(BLOCKS):
        namespace = {"__name__": f"readme_block_{index + 1}"}
        exec(compile(block, f"README.md python block {index + 1}", "exec"), namespace)
        namespaces.append(namespace)
    return namespaces


def test_the_readme_has_its_two_python_blocks():
    assert len(BLOCKS) == 2


def test_the_nlpsol_block_solves_problem_7(ran):
    S, r = ran[0]["S"], ran[0]["r"]
    assert S.stats()["success"], S.stats()["return_status"]
    assert float(r["g"][-1]) >= 0.6 - 1e-6


def test_the_opti_block_solves_problem_7(ran):
    sol, y = ran[1]["sol"], ran[1]["y"]
    assert sol.value(y[3]) >= 0.6 - 1e-6


def test_both_routes_count_one_problem_alike(ran):
    by_nlpsol = nncas.problem_stats(ran[0]["S"], ran[0]["r"])
    by_opti = nncas.problem_stats(ran[1]["opti"], ran[1]["sol"])
    assert (by_nlpsol.n_variables, by_nlpsol.n_constraints) == (by_opti.n_variables, by_opti.n_constraints)
    assert by_nlpsol.objective == pytest.approx(by_opti.objective, rel=1e-6)
