"""``core.console.progress``: a bar on a terminal, plain lines (never a carriage return) in a file."""
from __future__ import annotations

import io

import pytest

from edgekit.core import console as cons


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def to_file():
    # Not monkeypatch.setattr: it would save the property's value (this test's captured stderr) and
    # pin the console to it for every later test. The underlying slot is put back as it was.
    buf = io.StringIO()  # not a TTY, as a log file or a CI transcript
    saved = cons.console._file
    cons.console.file = buf
    yield buf
    cons.console._file = saved


def _on_clock(bar):
    """The bar reading a clock the test moves, started at 0."""
    clock = _Clock()
    bar._clock = clock
    bar._t0 = bar._last = 0.0
    return bar, clock


def test_a_file_gets_periodic_plain_lines_with_rate_and_eta(to_file):
    bar, clock = _on_clock(cons.progress(100, "fine-tuning qa", unit="steps", lines_every_s=60))
    for i in range(100):
        clock.t = 1.5 * (i + 1)  # 1.5 s a step
        bar.set_postfix(loss=f"{1 / (i + 1):.4f}")
        bar.update(1)
    bar.close()
    text = to_file.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    # one line per 60 s of 150 s (at 60 and 120 s) and one at the end
    assert len(lines) == 3, lines
    assert lines[0].startswith("fine-tuning qa: 40/100 steps (40%) · 1.50 s/step · ETA 1:30 · 1:00 elapsed")
    assert lines[-1].startswith("fine-tuning qa: 100/100 steps (100%)") and "loss=0.0100" in lines[-1]


def test_a_resumed_run_counts_its_rate_from_its_own_steps(to_file):
    bar, clock = _on_clock(cons.progress(10, "distilling", unit="steps", initial=6))
    for i in range(4):
        clock.t = 2.0 * (i + 1)
        bar.update(1)
    bar.close()
    assert to_file.getvalue().strip() == "distilling: 10/10 steps (100%) · 2.00 s/step · ETA 0:00 · 0:08 elapsed"


def test_silent_when_disabled_or_asked_for_no_lines(to_file):
    for bar in (cons.progress(5, "x", enabled=False), cons.progress(5, "q", lines_every_s=None)):
        for _ in range(5):
            bar.update(1)
        bar.close()
    assert to_file.getvalue() == ""


def test_no_total_counts_what_went_by(to_file):
    bar = cons.progress(None, "tokenising", unit="texts")
    bar.update(1200)
    bar.close()
    out = to_file.getvalue()
    assert out.startswith("tokenising: 1,200 texts") and "ETA" not in out
