"""Sweeps of independent solves on dask.distributed: the task list, a resumable store of result
rows, the cluster, and progress with an estimate of the time left.

A sweep is a list of tasks ``(key, arguments)``. The rows already in the store are skipped; the
others go to a dask cluster as one task each, and every result comes back to the client, which
alone writes files: the store's rows are rewritten whole after every result (temporary file, then
``os.replace``), so an interrupted or killed client leaves every finished row and no partial one,
and a rerun solves only the missing tasks. A worker lost mid-sweep costs only its running tasks:
the scheduler runs them again elsewhere (up to ``distributed.scheduler.allowed-failures`` times),
and each task's future yields one result, so no row is lost or repeated.

The cluster is a ``LocalCluster`` of ``workers`` processes (:func:`local_cluster`) or an existing
one reached at a scheduler address (:func:`connect`). Every worker process gets one torch thread
and one thread in CasADi's BLAS (:class:`WorkerSettings`, registered by :func:`sweep_client`) and runs
one task at a time, however many threads it has: IPOPT solves with torch callbacks do not share a
process well. Per-worker state (a network loaded once, a problem built once) lives in the
worker's process, cached by the task function's module.

Objects every task needs (a network's weights) go to the cluster once, as the result of a task
that returns them (:func:`shared`): a worker lost with them is recomputed from the graph, which a
scattered object would not be.
"""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from distributed import WorkerPlugin

from ..errors import InputError
from .progress import Progress, duration  # noqa: F401 (the sweeps' progress)
from .cli import check_interrupt
from .storage import write_text_atomic

STORE_FORMAT = "nncas-sweep/1"
#: tasks run one at a time in each worker process (module doc)
_TASK_LOCK = threading.Lock()


# ---- the store ---------------------------------------------------------------------------------

@dataclass
class Column:
    """A column of a result table: its name and the type its text is read back as."""

    name: str
    kind: type = float

    def text(self, value) -> str:
        """``value`` as CSV text; floats by ``repr`` (read back bit for bit)."""
        if value is None:
            return ""
        return repr(float(value)) if self.kind is float else str(self.kind(value))

    def read(self, text: str):
        if text == "":
            return None
        return self.kind(text)


@dataclass
class CsvStore:
    """Rows keyed by the ``key`` columns in ``folder/results.csv``, and in ``folder/sweep.json``
    the settings they were made with (a folder made with other settings is refused).

    ``open()`` creates or reads the folder; ``add(row)`` stores a row (a dict over the column
    names) and rewrites the file whole.
    """

    folder: Path
    columns: list[Column]
    key: tuple[str, ...]
    settings: dict
    what: str = "--out"
    rows: dict = field(default_factory=dict)

    def __post_init__(self):
        self.folder = Path(self.folder)
        names = [c.name for c in self.columns]
        missing = [k for k in self.key if k not in names]
        if missing:
            raise InputError(f"key columns {missing} are not among the columns {names}.")

    @property
    def path(self) -> Path:
        return self.folder / "results.csv"

    @property
    def settings_path(self) -> Path:
        return self.folder / "sweep.json"

    def open(self) -> "CsvStore":
        """Create the folder's files, or read the rows there after checking the settings."""
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"{self.what} {self.folder} is a file; give a folder.")
        stamp = {"format": STORE_FORMAT, "settings": self.settings}
        if self.settings_path.exists():
            try:
                found = json.loads(self.settings_path.read_text())
            except (OSError, ValueError) as err:
                raise InputError(f"{self.settings_path} is not a sweep's settings file ({err}); choose another "
                                 f"{self.what}.") from err
            if found != json.loads(json.dumps(stamp)):
                there = found.get("settings") if isinstance(found.get("settings"), dict) else {}
                here = json.loads(json.dumps(self.settings))
                differ = ", ".join(f"{k} {there.get(k)!r} there, {here.get(k)!r} here"
                                   for k in sorted(set(there) | set(here)) if there.get(k) != here.get(k))
                raise InputError(f"{self.what} {self.folder} holds results made with other settings "
                                 f"({differ or found}); use another {self.what} or the same settings.")
            self._read()
            return self
        if self.path.exists():
            raise InputError(f"{self.what} {self.folder} holds a {self.path.name} that no sweep made (no "
                             f"{self.settings_path.name}); choose another {self.what}.")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.settings_path, json.dumps(stamp, indent=1, sort_keys=True) + "\n")
        except OSError as err:
            raise InputError(f"{self.what} {self.folder} cannot be written ({err.strerror}).") from err
        self._write()
        return self

    def _read(self) -> None:
        names = [c.name for c in self.columns]
        try:
            with open(self.path, newline="") as f:
                reader = csv.reader(f)
                header = next(reader, None)
                if header != names:
                    raise InputError(f"{self.path} has the columns {header}, expected {names}; use another "
                                     f"{self.what}.")
                for number, line in enumerate(reader, start=2):
                    if len(line) != len(names):
                        raise InputError(f"{self.path} line {number} has {len(line)} fields, expected "
                                         f"{len(names)}.")
                    row = {c.name: c.read(t) for c, t in zip(self.columns, line)}
                    self.rows[self.key_of(row)] = row
        except FileNotFoundError:
            self._write()  # the settings were written, the empty table not yet
        except (OSError, ValueError) as err:
            if isinstance(err, InputError):
                raise
            raise InputError(f"{self.path} is not a readable result table ({err}).") from err

    def key_of(self, row: dict) -> tuple:
        return tuple(row[k] for k in self.key)

    def __contains__(self, key) -> bool:
        return tuple(key) in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, row: dict) -> None:
        """Store ``row`` (every column) and rewrite the file: rows sorted by key."""
        missing = [c.name for c in self.columns if c.name not in row]
        if missing:
            raise InputError(f"a row lacks the columns {missing}.")
        key = self.key_of(row)
        if key in self.rows:
            raise InputError(f"{self.path} already holds the row {dict(zip(self.key, key))}.")
        self.rows[key] = {c.name: row[c.name] for c in self.columns}
        self._write()

    def sorted_rows(self) -> list[dict]:
        return [self.rows[k] for k in sorted(self.rows)]

    def _write(self) -> None:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([c.name for c in self.columns])
        for row in self.sorted_rows():
            writer.writerow([c.text(row[c.name]) for c in self.columns])
        write_text_atomic(self.path, out.getvalue())


# ---- the cluster -------------------------------------------------------------------------------

class WorkerSettings(WorkerPlugin):
    """A dask worker plugin: one torch thread and one thread in CasADi's BLAS in every worker
    process (not in the client's, should a worker run there); with ``ignore_interrupts`` (the
    workers of a local cluster), Ctrl-C is left to the client, which shuts them down, instead of
    each worker printing a traceback."""

    name = "nncas-worker-settings"

    def __init__(self, ignore_interrupts: bool = False):
        self.client_pid = os.getpid()
        self.ignore_interrupts = ignore_interrupts

    def setup(self, worker):
        if os.getpid() == self.client_pid:
            return
        import torch

        from ..threads import set_casadi_blas_threads

        torch.set_num_threads(1)
        set_casadi_blas_threads(1)
        if self.ignore_interrupts and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def check_workers(workers, scheduler) -> None:
    """One of ``workers`` (a positive whole number) and ``scheduler`` (an address)."""
    if scheduler is not None:
        if workers is not None:
            raise InputError("give --workers or --scheduler, not both.")
        if not isinstance(scheduler, str) or not scheduler.strip():
            raise InputError(f"--scheduler must be an address such as tcp://127.0.0.1:8786, got {scheduler!r}.")
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"--workers must be a positive whole number, got {workers!r}.")


def connect(scheduler: str):
    """A ``distributed.Client`` of the scheduler at ``scheduler``; an OSError naming the address
    when none answers within dask's connect timeout (``distributed.comm.timeouts.connect``)."""
    from distributed import Client
    try:
        return Client(scheduler)
    except (OSError, TimeoutError, ValueError) as err:
        raise OSError(f"--scheduler {scheduler}: no dask scheduler answers there ({err}).") from err


@contextmanager
def interrupts_ignored():
    """Ctrl-C ignored while the block runs (in the main thread; elsewhere a no-op). Processes
    started in it inherit the disposition: a Ctrl-C while they import reaches the parent alone,
    which stops them, instead of printing a traceback per process. A Ctrl-C in the block is lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def sweep_client(workers: int | None = None, scheduler: str | None = None) -> Iterator:
    """A client of a new ``LocalCluster`` of ``workers`` processes with one thread each, or of the
    cluster at ``scheduler``; its workers run :class:`WorkerSettings`. Closed (the local cluster
    shut down) on leaving."""
    check_workers(workers, scheduler)
    if scheduler is not None:
        client, cluster = connect(scheduler), None
    else:
        import logging

        from distributed import Client, LocalCluster
        with interrupts_ignored():
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        client.register_plugin(WorkerSettings(ignore_interrupts=cluster is not None), name=WorkerSettings.name)
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def describe(client) -> str:
    """``N worker(s) at ADDRESS`` for log lines (asked of the scheduler now: the client's cached
    ``scheduler_info`` can predate the workers' registration and say 0)."""
    workers = len(client.nthreads())
    return f"{workers} dask worker{'s' if workers != 1 else ''} at {client.scheduler.address}"


def _identity(value):
    return value


def shared(client, value):
    """``value`` as a future every task can take as an argument: the result of a task that
    returns it, computed once and recomputed if its worker is lost."""
    return client.submit(_identity, value, pure=True)


def _call(function, *args):
    """``function(*args)`` in a worker, one task at a time per process."""
    with _TASK_LOCK:
        return function(*args)


def stream(client, function: Callable, arguments: list[tuple], keys: list) -> Iterator[tuple]:
    """``(key, result)`` for every task ``function(*arguments[i])`` as it finishes, or ``(key,
    exception)`` for a task that raised (or whose workers kept dying); unfinished tasks are
    cancelled when the caller stops (Ctrl-C)."""
    from distributed import as_completed

    futures = [client.submit(_call, function, *args, pure=False) for args in arguments]
    key_of = {f.key: k for f, k in zip(futures, keys)}
    try:
        for future in as_completed(futures):
            key = key_of[future.key]
            if future.status == "error":
                yield key, future.exception()
            else:
                yield key, future.result()
            future.release()
    finally:
        client.cancel([f for f in futures if not f.done()])


# ---- the sweep ---------------------------------------------------------------------------------

@dataclass
class SweepReport:
    """What a sweep did: rows ``added`` this run, rows ``present`` before, tasks that ``failed``
    (key, one-line error), and the seconds it took."""

    total: int
    present: int
    added: int = 0
    failed: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.present + self.added == self.total


def run_sweep(store: CsvStore, tasks: Iterable[tuple], function: Callable, client,
              row_of: Callable = lambda key, result: result, log=print, every: float = 1.0) -> SweepReport:
    """Solve the ``tasks`` ``(key, arguments)`` that ``store`` lacks as ``function(*arguments)``
    on ``client``'s cluster; each result becomes ``store.add(row_of(key, result))`` as it comes."""
    tasks = list(tasks)
    todo = [(key, args) for key, args in tasks if key not in store]
    report = SweepReport(len(tasks), len(tasks) - len(todo))
    start = time.perf_counter()
    if not todo:
        log(f"{store.path}: all {len(tasks)} rows present")
        return report
    log(f"{store.path}: {report.present} of {len(tasks)} rows present, solving {len(todo)} on {describe(client)}")
    progress = Progress(len(tasks), report.present, log, every)
    try:
        for key, outcome in stream(client, function, [args for _, args in todo], [key for key, _ in todo]):
            if isinstance(outcome, BaseException):
                message = " ".join(str(outcome).split()) or type(outcome).__name__
                report.failed.append((key, f"{type(outcome).__name__}: {message}"))
                log(f"  task {key} failed: {type(outcome).__name__}: {message}")
                continue
            store.add(row_of(key, outcome))
            report.added += 1
            progress.step()
            check_interrupt()  # a Ctrl-C that a library swallowed stops the sweep here
    finally:
        report.seconds = time.perf_counter() - start
    return report
