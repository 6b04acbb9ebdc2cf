"""A dask scheduler and workers started as processes on 127.0.0.1 (``dask scheduler``, ``dask
worker``), for tests of sweeps on an existing cluster."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

LIMIT_S = 600  # a helper or run that takes longer is a failure, not a measurement (busy CI machines)


def start(command: list[str]) -> subprocess.Popen:
    """``command`` in its own session, able to import the test files (tasks' functions)."""
    path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": path})


@contextmanager
def scheduler_and_workers(folder: Path, workers: int = 2):
    """Yield (scheduler address, worker processes): no nannies, one thread each."""
    dask = str(Path(sys.executable).with_name("dask"))
    file = Path(folder) / "scheduler.json"
    procs = [start([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(file)])]
    try:
        deadline = time.monotonic() + LIMIT_S
        while not file.is_file() and time.monotonic() < deadline and procs[0].poll() is None:
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        started = [start([dask, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                          "--name", f"w{i}"]) for i in range(workers)]
        procs += started
        from distributed import Client
        with Client(address) as client:
            client.wait_for_workers(workers, timeout=LIMIT_S)
        yield address, started
    finally:
        for proc in reversed(procs):  # the workers first: without a scheduler they wait to reconnect
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
