"""The thread count under load: the free cores, at least one; an explicit number always wins."""
from __future__ import annotations

import pytest

from edgekit.core import threads


@pytest.mark.parametrize("ncores,running,expected", [(2, 1, 2), (2, 2, 1), (2, 4, 1), (8, 3, 6), (1, 5, 1)])
def test_free_cores_under_a_simulated_load(monkeypatch, ncores, running, expected):
    monkeypatch.setattr(threads, "cores", lambda: ncores)
    monkeypatch.setattr(threads, "_running", lambda: running)  # this process counts as one of them
    assert threads.choose() == expected
    assert threads.choose(3) == 3  # --threads wins


def test_no_proc_loadavg_means_all_cores(monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 4)
    monkeypatch.setattr(threads, "_running", lambda: None)
    assert threads.choose() == 4
