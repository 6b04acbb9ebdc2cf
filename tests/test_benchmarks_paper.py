"""The paper-table harness: records survive interruption, reruns skip finished cells, tables."""
import json

import pytest

from benchmarks import paper
from nncas.errors import InputError


def _record(size, formulation, **extra):
    cell = paper.cells("mnist", [size], [formulation], ["torch"], "cpu", 60.0)[0]
    stats = {"status": "Solve_Succeeded", "success": True, "iterations": 10, "total_s": 2.0,
             "per_iteration_s": 0.2, "params": 1000 * size, "n_variables": 5, "n_constraints": 4,
             "jac_nnz": 7, "hess_nnz": 9,
             "shares": {"function": 0.1, "gradient": 0.0, "jacobian": 0.2, "hessian": 0.3, "solver": 0.4}}
    return {**cell, **stats, **extra}


def test_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "results.jsonl"
    paper.append_record(path, _record(128, "full"))
    with open(path, "a") as out:
        out.write('{"problem": "mnist", "size": 5')  # a write cut short by an interruption
    records = paper.load_records(path)
    assert [r["formulation"] for r in records] == ["full"]


def test_rerun_skips_finished_cells_and_retries_errors():
    planned = paper.cells("mnist", [128, 512], ["full", "graybox"], ["torch", "l4casadi"], "cpu", 60.0)
    assert len(planned) == 6  # full, graybox/torch, graybox/l4casadi per size
    records = [_record(128, "full"), {**_record(512, "full"), "status": "error", "error": "boom"}]
    left = paper.pending(planned, records)
    assert len(left) == 5
    assert not any(c["size"] == 128 and c["formulation"] == "full" for c in left)
    assert any(c["size"] == 512 and c["formulation"] == "full" for c in left)


def test_threads_are_part_of_a_cells_identity():
    default = paper.cells("scopf", [100], ["graybox"], ["torch"], "cpu", 60.0)
    one = paper.cells("scopf", [100], ["graybox"], ["torch"], "cpu", 60.0, threads=1)
    assert paper.pending(one, [{**default[0], "status": "Solve_Succeeded"}]) == one


def test_tables_follow_the_papers_layout():
    records = [_record(128, "full"), _record(128, "reduced"),
               {**_record(512, "full"), "status": "time_limit", "time_limit": True}]
    text = paper.tables(records)
    assert "structure (Table 2)" in text and "(Table 3)" in text and "(Table 4)" in text
    assert "| 128 | 128,000 | 2.0 s, 10 it | 2.0 s, 10 it |" in text
    assert "> 60 s" in text
    json.dumps(records)  # records stay JSON


def test_the_hessian_route_is_part_of_a_cells_identity_and_label():
    """A limited-memory cell is not an exact one; old records without the route ran exact."""
    exact, limited = paper.cells("mnist", [128], ["graybox"], ["torch"], "cpu", 60.0,
                                 hessians=("exact", "limited-memory"))
    assert (exact["hessian"], limited["hessian"]) == ("exact", "limited-memory")
    old = {k: v for k, v in _record(128, "graybox").items() if k != "hessian"}
    assert paper.pending([exact, limited], [old]) == [limited]
    full_limited = paper.cells("mnist", [128], ["full"], ["torch"], "cpu", 60.0, hessians=("limited-memory",))[0]
    text = paper.tables([_record(128, "graybox"), {**_record(128, "graybox"), **limited, "peak_rss_gb": 1.25},
                         {**_record(128, "full"), **full_limited}])
    assert "graybox torch/cpu, L-BFGS" in text and "| 1.2 GB |" in text and "| full, L-BFGS |" in text


def test_a_float32_hessian_is_planned_for_torch_gray_boxes_only():
    planned = paper.cells("mnist", [128], ["reduced", "graybox"], ["torch", "l4casadi"], "cpu", 60.0,
                          hessians=("exact", "float32"))
    low = [(c["formulation"], c["backend"]) for c in planned if c["hessian"] == "float32"]
    assert low == [("graybox", "torch")] and len(planned) == 4
    assert "graybox torch/cpu, float32 Hessian" in paper.tables([{**_record(128, "graybox"), **planned[-2]}])


def test_a_warm_start_is_part_of_a_scopf_cells_identity_and_label():
    """A warm cell (the SCOPF alone first) is not a cold one; its label and outcome say so, with
    both solves' iterations; old SCOPF records without the start were cold."""
    cold, warm = paper.cells("scopf", [100], ["graybox"], ["torch"], "cpu", 60.0, starts=("cold", "warm"))
    old = {k: v for k, v in cold.items() if k != "start"}
    assert paper.pending([cold, warm], [{**old, "status": "Solve_Succeeded"}]) == [warm]
    stats = {"status": "Solve_Succeeded", "success": True, "iterations": 38, "total_s": 2.6, "params": 4,
             "scopf_alone_iterations": 116}
    assert "| 100 | 4 | 2.6 s, 116 + 38 it |" in paper.tables([{**warm, **stats}])
    assert "graybox torch/cpu, warm start" in paper.tables([{**warm, **stats}])


def test_a_warm_start_is_refused_for_problem_7():
    with pytest.raises(InputError, match="--problem scopf only"):
        paper.cells("mnist", [128], ["graybox"], ["torch"], "cpu", 60.0, starts=("warm",))
