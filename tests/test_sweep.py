"""nncas.apps.sweep: the resumable result table, progress lines, and sweeps of real IPOPT solves on a
LocalCluster and on a scheduler and workers started here as processes (one of them killed
mid-sweep)."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import casadi as ca
import pytest
import torch

from dask_processes import LIMIT_S, scheduler_and_workers
from nncas.apps.sweep import Column, CsvStore, Progress, check_workers, duration, run_sweep, sweep_client
from nncas.errors import InputError

COLUMNS = [Column("a", int), Column("status", str), Column("objective", float), Column("x1", float),
           Column("pid", int)]


def solve(a: int, marker_dir: str | None = None) -> dict:
    """min (x0 - 1)^2 + 100 (x1 - x0^2)^2 + x0 x1 / a  s.t.  x0 + x1 <= 1 + 1/a, by IPOPT; with
    ``marker_dir``, a file ``a-pid`` there says which process started it, then 0.3 s pass."""
    if marker_dir is not None:
        Path(marker_dir, f"{a}-{os.getpid()}").touch()
        time.sleep(0.3)
    x = ca.MX.sym("x", 2)
    nlp = {"x": x, "f": (x[0] - 1) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2 + x[0] * x[1] / a, "g": x[0] + x[1]}
    solver = ca.nlpsol("S", "ipopt", nlp, {"ipopt.print_level": 0, "ipopt.sb": "yes", "print_time": False})
    r = solver(x0=[-1.0, 1.0], ubg=1 + 1 / a)
    return {"a": a, "status": solver.stats()["return_status"], "objective": float(r["f"]),
            "x1": float(r["x"][1]), "pid": os.getpid()}


def store(folder, settings=None) -> CsvStore:
    return CsvStore(folder, COLUMNS, ("a",), settings or {"problem": "test"}).open()


def test_store_round_trips_floats_and_keeps_rows_sorted(tmp_path):
    s = store(tmp_path / "out")
    values = [1 / 3, 1e-300, -2.5e17, float("nan")]
    for a, v in zip((3, 1, 2, 0), values):
        s.add({"a": a, "status": "ok, with a comma", "objective": v, "x1": None, "pid": 7})
    again = store(tmp_path / "out")
    assert [r["a"] for r in again.sorted_rows()] == [0, 1, 2, 3]
    read = {r["a"]: r["objective"] for r in again.sorted_rows()}
    assert read[3] == 1 / 3 and read[1] == 1e-300 and read[2] == -2.5e17 and read[0] != read[0]
    assert again.rows[(3,)]["status"] == "ok, with a comma" and again.rows[(3,)]["x1"] is None
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["results.csv", "sweep.json"]


def test_store_refuses_other_settings_duplicates_and_damaged_files(tmp_path):
    s = store(tmp_path / "out", {"problem": "test", "width": 128})
    s.add({"a": 1, "status": "x", "objective": 1.0, "x1": 0.0, "pid": 1})
    with pytest.raises(InputError, match="already holds the row"):
        s.add({"a": 1, "status": "x", "objective": 2.0, "x1": 0.0, "pid": 1})
    with pytest.raises(InputError, match=r"\(width 128 there, 512 here\); use another --out or the same settings"):
        store(tmp_path / "out", {"problem": "test", "width": 512})
    (tmp_path / "out" / "results.csv").write_text("a,status\n1,x\n")
    with pytest.raises(InputError, match="has the columns"):
        store(tmp_path / "out", {"problem": "test", "width": 128})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "results.csv").write_text("someone's table\n")
    with pytest.raises(InputError, match="holds a results.csv that no sweep made"):
        store(tmp_path / "other")
    assert (tmp_path / "other" / "results.csv").read_text() == "someone's table\n"
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="is a file; give a folder"):
        store(tmp_path / "file")
    with pytest.raises(InputError, match="key columns"):
        CsvStore(tmp_path / "k", COLUMNS, ("b",), {})


def test_progress_reports_rate_and_time_left():
    lines = []
    p = Progress(total=10, done=4, log=lines.append, every=0.0)
    p.step()
    p.step()
    assert lines[-1].startswith("  6/10 rows, ") and lines[-1].endswith(" left")
    rate = float(lines[-1].split(", ")[1].removesuffix("/s"))
    assert rate > 0
    quiet = Progress(total=10, log=lines.append, every=3600.0)
    quiet.step()
    quiet.step()
    assert len(lines) == 3  # the first line, then nothing until the last
    quiet.step(8)
    assert lines[-1].startswith("  10/10 rows") and "about 0 s left" in lines[-1]
    assert duration(42.4) == "42 s" and duration(185) == "3 min 05 s" and duration(7620) == "2 h 07 min"


@pytest.mark.parametrize("workers, scheduler, message", [
    (0, None, "--workers must be a positive whole number"),
    (True, None, "--workers must be a positive whole number"),
    (2, "tcp://127.0.0.1:1", "not both"),
    (None, " ", "--scheduler must be an address"),
])
def test_bad_cluster_arguments_are_refused(workers, scheduler, message):
    with pytest.raises(InputError, match=message):
        check_workers(workers, scheduler)


def test_local_cluster_sweep_equals_serial_solves_and_resumes(tmp_path):
    threads = torch.get_num_threads()
    serial = {a: solve(a) for a in (1, 2, 3, 4, 5)}
    lines = []
    with sweep_client(workers=2) as client:
        worker_threads = client.run(torch.get_num_threads)
        s = store(tmp_path / "out")
        report = run_sweep(s, [((a,), (a,)) for a in (1, 2, 3)], solve, client, log=lines.append, every=0.0)
        assert report.added == 3 and report.complete and not report.failed
        resumed = store(tmp_path / "out")
        report = run_sweep(resumed, [((a,), (a,)) for a in (1, 2, 3, 4, 5)], solve, client, log=lines.append)
    assert report.present == 3 and report.added == 2
    assert any("3 of 5 rows present, solving 2 on 2 dask workers" in line for line in lines)
    assert set(worker_threads.values()) == {1} and torch.get_num_threads() == threads
    rows = store(tmp_path / "out").sorted_rows()
    assert [r["a"] for r in rows] == [1, 2, 3, 4, 5]
    for r in rows:
        assert r["status"] == "Solve_Succeeded" and r["pid"] != os.getpid()
        assert r["objective"] == pytest.approx(serial[r["a"]]["objective"], rel=1e-12, abs=1e-12)
        assert r["x1"] == pytest.approx(serial[r["a"]]["x1"], rel=1e-12)


def test_a_failing_task_gives_no_row_and_the_others_go_on(tmp_path):
    with sweep_client(workers=1) as client:
        s = store(tmp_path / "out")
        report = run_sweep(s, [((a,), (a,)) for a in (1, 0, 2)], solve, client, log=lambda *_: None)
    assert report.added == 2 and not report.complete
    assert [k for k, _ in report.failed] == [(0,)] and "ZeroDivisionError" in report.failed[0][1]
    assert sorted(store(tmp_path / "out").rows) == [(1,), (2,)]


@pytest.fixture
def scheduler(tmp_path):
    with scheduler_and_workers(tmp_path, 2) as running:
        yield running


def test_a_worker_killed_mid_sweep_costs_only_its_tasks(tmp_path, scheduler):
    address, workers = scheduler
    victim = workers[0].pid
    markers = tmp_path / "markers"
    markers.mkdir()
    killed = []

    def kill_when_busy():
        deadline = time.monotonic() + LIMIT_S
        while time.monotonic() < deadline:
            started = [p.name for p in markers.iterdir() if p.name.endswith(f"-{victim}")]
            if started:
                os.kill(victim, signal.SIGKILL)
                killed.append(started[0].split("-")[0])
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_when_busy)
    watcher.start()
    try:
        with sweep_client(scheduler=address) as client:
            report = run_sweep(store(tmp_path / "out"), [((a,), (a, str(markers))) for a in range(1, 9)], solve,
                               client, log=lambda *_: None)
    finally:
        watcher.join()
    assert killed, "the worker to kill never started a task"
    assert report.added == 8 and not report.failed
    rows = store(tmp_path / "out").sorted_rows()
    assert [r["a"] for r in rows] == list(range(1, 9))  # every task once: none lost, none repeated
    assert all(r["pid"] == workers[1].pid for r in rows)  # the victim never delivered
    starts = [p.name.split("-")[0] for p in markers.iterdir()]
    assert starts.count(killed[0]) == 2  # its task ran again on the other worker
    for r in rows:
        assert r["objective"] == pytest.approx(solve(r["a"])["objective"], rel=1e-12, abs=1e-12)
