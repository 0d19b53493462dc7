"""Helpers shared by the benchmark scripts (run them from anywhere; they put the repo on sys.path)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["median_time", "have_test_data"]


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def have_test_data(data: Path) -> bool:
    """Whether ``data/content`` exists; prints the skip message when it does not."""
    if (data / "content").is_dir():
        return True
    print(f"skipped: no test images at {data} (pass --data)")
    return False
