"""Benchmark sanity (issue 28 item 6): a disturbed measurement is timed again once, and one that
stays disturbed — or whose eager baselines are not monotone in length — is marked unreliable in
the record and the report, and gives no × eager."""
from __future__ import annotations

from pathlib import Path

import pytest

import edgekit
from edgekit.core.record import ArtifactRecord, LatencyStats
from edgekit.measure import bench, tables


def _stats(p50: float, p90: float | None = None) -> LatencyStats:
    return LatencyStats(p50_ms=p50, p90_ms=p90 if p90 is not None else p50, mean_ms=p50, std_ms=0.0, min_ms=p50,
                        runs=5, warmup=0)


def test_spread_and_monotone_rules():
    assert bench.spread_problem(_stats(10, 14), "file") is None
    assert "p90/p50 2.00 > 1.5" in bench.spread_problem(_stats(10, 20), "file")
    assert bench.not_monotone({128: _stats(10), 384: _stats(30)}) is None
    assert bench.not_monotone({128: _stats(10), 384: _stats(9.5)}) is None  # within the slack
    why = bench.not_monotone({128: _stats(208), 384: _stats(23)})
    assert why and "208.0 ms at 128" in why and "23.0 ms at 384" in why


@pytest.fixture
def onnx_files(tiny_model, tmp_path, one_thread):
    pytest.importorskip("onnxruntime")
    model = tiny_model("bert", "feature-extraction")
    out = tmp_path / "out"
    paths = []
    for seq in (16, 32):
        recs = edgekit.export(model, target="onnx", precision="fp32", seq_len=seq, out=out)
        paths.append(out / recs[0].artifact)
    return paths


def test_a_disturbed_measurement_is_timed_again_and_kept_when_clean(onnx_files, monkeypatch):
    calls = []

    def fake_artifact(path, record, threads, runs=20, warmup=3, seq=None):
        calls.append(Path(path).name)
        return _stats(10, 30) if len(calls) == 1 else _stats(10, 11)

    monkeypatch.setattr(bench, "bench_artifact", fake_artifact)
    monkeypatch.setattr(bench, "bench_eager", lambda model, seq, runs=20, warmup=3: _stats(seq, seq))
    monkeypatch.setattr(bench, "_wait_quieter", lambda *a, **k: None)
    recs = bench.bench_records(onnx_files[:1], threads=1, runs=5, warmup=0, verbose=False)
    m = ArtifactRecord.load(onnx_files[0]).last_latency
    assert len(calls) == 2 and m.remeasured and m.unreliable is None
    assert m.speedup == pytest.approx(16 / 10) and recs[0].last_latency.speedup == pytest.approx(1.6)


def test_still_disturbed_or_not_monotone_is_unreliable_in_record_and_report(onnx_files, monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "_wait_quieter", lambda *a, **k: None)
    monkeypatch.setattr(bench, "bench_artifact", lambda path, record, threads, runs=20, warmup=3, seq=None:
                        _stats(5, 15) if seq == 16 else _stats(5, 5.5))
    # the eager baseline of 16 tokens is 10x slower than that of 32: they cannot both be right
    monkeypatch.setattr(bench, "bench_eager", lambda model, seq, runs=20, warmup=3: _stats(200 if seq == 16 else 20))
    bench.bench_records(onnx_files, threads=1, runs=5, warmup=0, verbose=False)
    short, long_ = (ArtifactRecord.load(p).last_latency for p in onnx_files)
    assert short.remeasured and short.unreliable.startswith("file p90/p50 3.00 > 1.5 (also after one re-measurement)")
    assert long_.unreliable and "not monotone" in long_.unreliable and not long_.remeasured
    assert short.speedup is None and long_.speedup is None  # no headline ratio from distrusted numbers
    md = tables.markdown(tables.build([ArtifactRecord.load(p) for p in onnx_files], title="t"))
    assert md.count("| unreliable |") == 2
    assert "Unreliable latency" in md and "not monotone in length" in md


def test_the_other_work_while_a_file_is_timed_is_recorded_and_flags_the_row(onnx_files, monkeypatch):
    """bench snapshots the runnable tasks besides its own threads before and after timing each file
    and keeps the smaller (a competitor that stayed); the report flags the row on that, not on the
    1-minute load average."""
    import edgekit.core.threads as threads

    snapshots = iter([3.0, 1.0, 0.0, 2.0])  # file 1: 3 then 1 -> 1; file 2: 0 then 2 -> 0
    monkeypatch.setattr(threads, "busy_elsewhere", lambda *a, **k: next(snapshots))
    monkeypatch.setattr(bench, "bench_artifact", lambda path, record, threads, runs=20, warmup=3, seq=None:
                        _stats(5, 5.5))
    monkeypatch.setattr(bench, "bench_eager", lambda model, seq, runs=20, warmup=3: _stats(seq, seq))
    bench.bench_records(onnx_files, threads=1, runs=5, warmup=0, verbose=False)
    first, second = (ArtifactRecord.load(p).last_latency for p in onnx_files)
    assert (first.others, second.others) == (1.0, 0.0)
    rows = {r.artifact: r for r in tables.build([ArtifactRecord.load(p) for p in onnx_files], title="t").rows
            if r.artifact}
    assert rows[onnx_files[0].name].busy.startswith("1 other runnable task on")
    assert rows[onnx_files[1].name].busy is None
