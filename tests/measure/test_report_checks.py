"""The report's own checks (issue 12): a latency measured under more load than cores is flagged."""
from __future__ import annotations

import os

from edgekit.measure import tables as report
from edgekit.measure.bench import cpu_name
from edgekit.core.record import ArtifactRecord


def _record(name: str, load: float) -> ArtifactRecord:
    stats = {"p50_ms": 10.0, "p90_ms": 12.0, "mean_ms": 10.5, "std_ms": 1.0, "min_ms": 9.0, "runs": 5, "warmup": 1}
    return ArtifactRecord.from_dict({
        "artifact": name, "target": "onnx", "precision": "fp32", "task": "masked-lm", "seq_len": "128",
        "status": "validated", "sha256": "ab", "size_bytes": 100, "source": {"source": "/m"}, "schema": 2,
        "latency": [{"run": "2026-01-01T00:00:00", "seq_len": 128, "threads": 2, "host": cpu_name(),
                     "load_average": [load, load, load], "artifact": stats, "eager": stats}],
    })


def test_row_measured_under_load_above_cores_is_flagged():
    cores = os.cpu_count() or 1
    rep = report.build([_record("busy.onnx", cores + 2.5), _record("quiet.onnx", 0.1)])
    rows = {r.artifact: r for r in rep.rows if r.artifact}
    assert rows["busy.onnx"].busy and f"> {cores} cores" in rows["busy.onnx"].busy
    assert rows["quiet.onnx"].busy is None
    md = report.markdown(rep)
    assert "Measured on a busy machine:" in md and "`busy.onnx`" in md and "`quiet.onnx`: load" not in md


def _with_others(name: str, load: float, others: float) -> ArtifactRecord:
    rec = _record(name, load)
    rec.latency[0].others = others
    return rec


def test_other_work_while_timing_decides_not_the_lagging_load_average():
    """The 1-minute load average counts what this edgekit did just before timing (the demo's export in
    two processes left it at 2.0 on a quiet machine); the runnable tasks besides bench's own threads
    while it timed say whether something else competed."""
    cores = os.cpu_count() or 1
    rep = report.build([_with_others("after-own-work.onnx", cores + 0.5, 0.0),
                        _with_others("competed.onnx", 0.5, 2.0)])
    rows = {r.artifact: r for r in rep.rows if r.artifact}
    assert rows["after-own-work.onnx"].busy is None
    assert rows["competed.onnx"].busy and "2 other runnable tasks" in rows["competed.onnx"].busy
    md = report.markdown(rep)
    assert "`competed.onnx` measured while other work ran" in md and "after-own-work" not in md.split("busy machine")[-1]
