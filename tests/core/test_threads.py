"""The thread count under load: the free cores, at least one; an explicit number always wins."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.core import threads


@pytest.mark.parametrize("ncores,running,expected", [(2, 1, 2), (2, 2, 1), (2, 4, 1), (8, 3, 6), (1, 5, 1)])
def test_free_cores_under_a_simulated_load(monkeypatch, ncores, running, expected):
    monkeypatch.setattr(threads, "cores", lambda: ncores)
    monkeypatch.setattr(threads, "_running", lambda: running)  # this process counts as one of them
    monkeypatch.setattr(threads, "_own_running", lambda: 1)    # the calling thread only
    assert threads.choose() == expected
    assert threads.choose(3) == 3  # --threads wins


@pytest.mark.parametrize("ncores,running,own,expected", [
    (2, 3, 3, 2),   # idle machine, two of our pool threads still spinning: both cores are free
    (2, 3, 2, 1),   # one other runnable task besides our two threads
    (2, 5, 2, 1),   # three others: still at least one
    (4, 6, 4, 2),   # two others on four cores
    (2, 3, None, 1),  # /proc/self/task unreadable: count this process as one task, as before
    (2, 1, 0, 2),   # a racy snapshot that saw none of our threads running: we are at least one
])
def test_own_runnable_threads_are_not_other_work(monkeypatch, ncores, running, own, expected):
    """Issue 28: the demo benched with 1 thread on an idle machine because PyTorch's intra-op
    threads, spinning after the last op, counted as other work in /proc/loadavg."""
    monkeypatch.setattr(threads, "cores", lambda: ncores)
    monkeypatch.setattr(threads, "_running", lambda: running)
    monkeypatch.setattr(threads, "_own_running", lambda: own)
    assert threads.choose() == expected


def _task(root: Path, tid: int, comm: str, state: str) -> None:
    (root / str(tid)).mkdir()
    (root / str(tid) / "stat").write_bytes(f"{tid} ({comm}) {state} 1 {tid} {tid} 0 -1 4194560 0".encode())


def test_own_running_reads_each_thread_state(monkeypatch, tmp_path):
    _task(tmp_path, 100, "python", "R")
    _task(tmp_path, 101, "pt_main (R) S", "S")  # a name holding ") R" must not read as running
    _task(tmp_path, 102, "torch pool", "R")
    _task(tmp_path, 103, "io", "D")
    monkeypatch.setattr(threads, "TASKS", tmp_path)
    assert threads._own_running() == 2
    monkeypatch.setattr(threads, "TASKS", tmp_path / "missing")
    assert threads._own_running() is None


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_own_running_counts_the_calling_thread():
    assert threads._own_running() >= 1


def test_no_proc_loadavg_means_all_cores(monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 4)
    monkeypatch.setattr(threads, "_running", lambda: None)
    assert threads.choose() == 4


def test_a_worker_share_caps_the_choice_and_pytorch_and_is_undone(monkeypatch):
    import torch

    from edgekit.core import threads

    monkeypatch.setattr(threads, "cores", lambda: 4)
    monkeypatch.setattr(threads, "busy_elsewhere", lambda *a, **k: 0.0)
    before = torch.get_num_threads()
    assert threads.choose() == 4
    with threads.share(2):
        assert threads.choose() == 2 and threads.choose(3) == 3  # the user's number still wins
        assert torch.get_num_threads() <= 2
    assert threads.choose() == 4 and torch.get_num_threads() == before


def test_a_long_loop_follows_the_free_cores(monkeypatch):
    # Issue 28 item 4: training chose its threads once at start; a job starting beside it then starved
    # both pools. The follower re-chooses between steps, no more often than every_s, and resizes PyTorch.
    import torch

    before = torch.get_num_threads()
    now = [0.0]
    free = iter([2, 1, 1, 2])
    monkeypatch.setattr(threads, "choose", lambda t=None: next(free))
    try:
        torch.set_num_threads(2)
        f = threads.Follower(every_s=30.0, clock=lambda: now[0])  # the start takes the first answer: 2
        now[0] = 10.0
        assert f.step() is None and torch.get_num_threads() == 2  # not due yet: choose() is not even asked
        now[0] = 31.0
        assert f.step() == 1 and torch.get_num_threads() == 1  # two other jobs started: down to one thread
        now[0] = 45.0
        assert f.step() is None
        now[0] = 62.0
        assert f.step() is None and torch.get_num_threads() == 1  # still busy: unchanged
        now[0] = 93.0
        assert f.step() == 2 and torch.get_num_threads() == 2  # they ended: both cores again
        assert f.changes == [(31.0, 1), (93.0, 2)]
        assert f.card() == {"at_start": 2, "resized": [(31.0, 1), (93.0, 2)]}
        pinned = threads.Follower(pinned=2, every_s=0.0, clock=lambda: now[0])
        assert pinned.step() is None and torch.get_num_threads() == 2  # the user's --threads is never changed
    finally:
        torch.set_num_threads(before)


def test_a_long_loop_starts_at_the_free_cores_not_at_the_pool_it_inherits(monkeypatch):
    # The busy run of issue 28: two CPU-bound jobs beside training, PyTorch's pool at 2 from the start;
    # the follower only shrank it at its first due step, 32 s in.
    import torch

    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "choose", lambda t=None: 1)
    try:
        torch.set_num_threads(2)
        f = threads.Follower(every_s=30.0, clock=lambda: 0.0)
        assert torch.get_num_threads() == 1 and f.card() == {"at_start": 1, "resized": []}
    finally:
        torch.set_num_threads(before)
