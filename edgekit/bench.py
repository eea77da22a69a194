"""Latency: warm-up, repeated timed runs, percentiles, all in one process and one thread setting."""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np


@dataclass
class LatencyStats:
    p50_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    runs: int
    warmup: int
    threads: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def set_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def measure(fn: Callable[[], Any], warmup: int = 3, runs: int = 20, threads: int | None = None) -> LatencyStats:
    """Time ``fn`` after ``warmup`` untimed calls; ``threads`` is recorded, the caller pins it."""
    if runs < 1 or warmup < 0:
        raise ValueError("runs must be >= 1 and warmup >= 0")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    arr = np.asarray(times)
    return LatencyStats(
        p50_ms=float(np.percentile(arr, 50)), p90_ms=float(np.percentile(arr, 90)), mean_ms=float(arr.mean()),
        std_ms=float(statistics.pstdev(times)), min_ms=float(arr.min()), runs=runs, warmup=warmup,
        threads=threads or default_threads(),
    )
