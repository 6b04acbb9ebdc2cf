"""Progress of long work for people: counts, a rate, and an estimate of the time left."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable


def duration(seconds: float) -> str:
    """``seconds`` for people: 42 s, 3 min 05 s, 2 h 07 min."""
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@dataclass
class Progress:
    """Lines ``  done/total rows, rate/s, about T left`` as results come in: at most one per
    ``every`` seconds, and one for the last. The rate counts this run's results only:
    rate = results / elapsed, time left = (total - done) / rate."""

    total: int
    done: int = 0
    log: Callable = print
    every: float = 1.0
    unit: str = "rows"
    _start: float = field(default_factory=time.perf_counter)
    _new: int = 0
    _last: float = -math.inf

    def step(self, count: int = 1, note: str = "") -> None:
        """Count ``count`` results and log a line if one is due."""
        self.advance(count)
        now = time.perf_counter()
        if now - self._last < self.every and self.done < self.total:
            return
        self._last = now
        self.log(f"  {self.done}/{self.total} {self.unit}, {self.rate():.2f}/s, about {duration(self.left())} left"
                 + (f" ({note})" if note else ""))

    def advance(self, count: int = 1) -> None:
        """Count ``count`` results without logging."""
        self.done += count
        self._new += count

    def elapsed(self) -> float:
        return time.perf_counter() - self._start

    def rate(self) -> float:
        """This run's results per second."""
        return self._new / max(self.elapsed(), 1e-9)

    def left(self) -> float:
        """Seconds left at :meth:`rate` (inf before the first result)."""
        rate = self.rate()
        return (self.total - self.done) / rate if rate > 0 else math.inf
