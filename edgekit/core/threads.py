"""How many threads edgekit gives PyTorch and the runtimes: the free cores, not all of them.

On a busy machine (CI runners, laptops, several jobs on two cores) a thread pool sized to every
core starves: its threads wait for each other at every barrier while other processes hold the
cores (measured here: eager latency 3.3 s with 2 threads vs 107 ms with 1 thread at load 4 on 2
cores). So the default is ``cores - other runnable work``, at least 1; an explicit ``--threads``
always wins. Benchmarks still flag a measurement taken at a load above the core count.
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Callable, Iterator


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _running() -> int | None:
    """Runnable tasks right now, from /proc/loadavg's ``running/total`` field (this process included)."""
    try:
        return int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None


#: This process's threads, one folder each (a module constant so tests can point it elsewhere).
TASKS = Path("/proc/self/task")


def _own_running() -> int | None:
    """This process's threads that are runnable right now (state R in /proc/self/task/*/stat):
    the calling thread, and e.g. PyTorch's intra-op threads still spinning after their last op."""
    try:
        tasks = list(TASKS.iterdir())
    except OSError:
        return None
    n = 0
    for t in tasks:
        try:
            stat = (t / "stat").read_bytes()
        except OSError:  # the thread ended meanwhile
            continue
        # "tid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'.
        if stat[stat.rfind(b")") + 2: stat.rfind(b")") + 3] == b"R":
            n += 1
    return n


def busy_elsewhere(samples: int = 3, gap: float = 0.02) -> float:
    """Runnable work besides this process: the median of a few snapshots of the running count
    minus this process's own runnable threads (the 1-minute load average lags by a minute and
    counts this process's own past work). Its own threads, not just 1: PyTorch's pool threads
    spin for a while after an op, and counted as other work they made an idle 2-core machine
    look busy ("Threads: 1" at load 1.2 with nothing else running)."""
    seen = []
    for i in range(samples):
        r = _running()
        if r is None:
            break
        own = _own_running()
        seen.append(max(0, r - max(1, own if own is not None else 1)))
        if i + 1 < samples:
            time.sleep(gap)
    if not seen:
        return 0.0
    seen.sort()
    return float(seen[len(seen) // 2])


#: This process's share of the cores while it is one of several workers of a run (``share``).
_SHARE: dict[str, int | None] = {"cap": None}


def choose(threads: int | None = None) -> int:
    """``threads`` when the user gave it; else the free cores: ``min(cores, max(1, cores - busy))``,
    at most this process's share while it is one of several workers (``share``)."""
    if threads is not None:
        return max(1, int(threads))
    n = cores()
    free = min(n, max(1, n - round(busy_elsewhere())))
    cap = _SHARE["cap"]
    return min(free, cap) if cap else free


@contextlib.contextmanager
def share(n: int) -> Iterator[None]:
    """Within the block this process uses at most ``n`` threads (PyTorch's pool too): it is one of
    several processes of one run, each given its part of the cores, so their pools do not starve
    each other (the snapshot in ``busy_elsewhere`` can miss a worker that is loading a file)."""
    import torch

    before, saved = _SHARE["cap"], torch.get_num_threads()
    _SHARE["cap"] = max(1, n)
    torch.set_num_threads(max(1, min(n, saved)))
    try:
        yield
    finally:
        _SHARE["cap"] = before
        torch.set_num_threads(saved)


class Follower:
    """Keeps PyTorch's pool at the free cores through a long loop (training): ``step()`` between steps
    re-chooses every ``every_s`` seconds and resizes the pool when the answer changed. The count chosen
    at start is right only while the machine stays as it was: a job that starts beside a two-thread
    training run makes both pools wait at every barrier (the starved pool is 10-30x slower), and one
    that ends leaves a core idle. The pool is sized here too, not only at the first due step: the pool
    a loop inherits is PyTorch's (every core) unless something set it, and the busy run of issue 28
    trained its first 32 s on 2 threads beside two CPU-bound jobs. ``pinned``: the caller's
    ``--threads``: the pool is set to it here and never changed."""

    def __init__(self, pinned: int | None = None, every_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        import torch

        torch.set_num_threads(pinned if pinned is not None else choose())
        self.pinned, self.every_s, self.clock = pinned, every_s, clock
        self.t0 = clock()
        self.due = self.t0 + every_s
        self.at_start = torch.get_num_threads()
        #: (seconds since start, new thread count) of each resize, for the card.
        self.changes: list[tuple[float, int]] = []

    def step(self) -> int | None:
        """The new thread count when the pool was resized now, else None."""
        if self.pinned is not None:
            return None
        now = self.clock()
        if now < self.due:
            return None
        self.due = now + self.every_s
        import torch

        want, have = choose(), torch.get_num_threads()
        if want == have:
            return None
        torch.set_num_threads(want)
        self.changes.append((round(now - self.t0, 1), want))
        return want

    def card(self) -> dict[str, object]:
        """What the training card records: the count at start and each resize."""
        return {"at_start": self.at_start, "resized": self.changes}
