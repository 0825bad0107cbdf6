"""The one timing loop of the speed benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def items_per_second(
    step: Callable[[], object],
    items_per_step: int,
    steps: int,
    warmup: int = 0,
    repeats: int = 1,
) -> float:
    """Items (samples, windows, frames) per second of ``step``.

    ``warmup`` untimed calls first, then ``repeats`` timings of ``steps`` calls each; the median
    of their rates.
    """
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(items_per_step * steps / (time.perf_counter() - start))
    return float(statistics.median(rates))
