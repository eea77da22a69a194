"""Latency: the one bench loop. Every artifact is timed in its own runtime next to PyTorch eager fp32
of its source model, in one process, with one thread count set once; each run appends a
``record.Measurement`` to the artifact's record (earlier measurements are kept).
"""
from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from edgekit.core.errors import EdgekitError, UsageError
from edgekit.core.record import ArtifactRecord, LatencyStats, Measurement, Status, now


def default_threads() -> int:
    """Threads for a bench run when the user names none: the free cores (``core.threads.choose``)."""
    from edgekit.core.threads import choose

    return choose()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


@contextlib.contextmanager
def pinned_cpus(threads: int, pin: bool) -> Iterator[list[int] | None]:
    """Restrict the process to ``threads`` CPUs (when asked and possible); restore afterwards."""
    if not pin or not hasattr(os, "sched_setaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    cpus = sorted(before)[:threads]
    os.sched_setaffinity(0, cpus)
    try:
        yield cpus
    finally:
        os.sched_setaffinity(0, before)


def measure(fn: Callable[[], Any], warmup: int = 3, runs: int = 20) -> LatencyStats:
    """Time ``fn`` after ``warmup`` untimed calls."""
    if runs < 1 or warmup < 0:
        raise UsageError("--runs must be >= 1 and --warmup >= 0")
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
    )


def _feed(record: ArtifactRecord, seq: int) -> dict[str, np.ndarray]:
    from edgekit.model.inputs import golden_feeds

    names = tuple(t.name for t in record.inputs) or ("input_ids", "attention_mask")
    names = tuple("token_type_ids" if n == "segment_ids" else n for n in names)
    return golden_feeds(record.source.vocab_size or 1000, record.task, seq, names, n_random=1)[0]


def bench_artifact(path: Path, record: ArtifactRecord, threads: int, runs: int = 20, warmup: int = 3,
                   seq: int | None = None) -> LatencyStats:
    """Latency of one artifact in its own runtime on a golden input of the record's default length."""
    from edgekit.core import registry

    runner = registry.get(record.target).load(path, record, threads=threads)
    feed = _feed(record, seq or record.seq_len.default)
    return measure(lambda: runner.run(feed), warmup=warmup, runs=runs)


def bench_eager(model: Any, seq: int, runs: int = 20, warmup: int = 3) -> LatencyStats:
    """PyTorch eager fp32 latency of the source model: the baseline every speed-up is measured against."""
    import torch

    from edgekit.model.inputs import golden_feeds

    feed = golden_feeds(model.config.vocab_size, model.task, seq, model.input_names, n_random=1)[0]
    args = [torch.from_numpy(feed[n]) for n in model.input_names]
    with torch.inference_mode():
        return measure(lambda: model(*args), warmup=warmup, runs=runs)


def _save_measurement(path: Path, timed: ArtifactRecord, m: Measurement, verbose: bool = True) -> None:
    """Append ``m`` to the record now beside ``path``, under its install lock, if that record still
    describes the file that was timed; an export that replaced the pair meanwhile keeps its own
    record (the measurement belongs to a file that is gone, and is dropped with a note)."""
    from edgekit.build.install import locked
    from edgekit.core.console import console

    with locked(path.parent, path.name, quiet=not verbose):
        try:
            current = ArtifactRecord.load(path)
        except (OSError, UsageError):
            current = None
        if current is None or current.sha256 != timed.sha256:
            console.print(f"[yellow]{path.name} was replaced while it was timed[/]: its new record is kept "
                          "and this measurement is not saved")
            return
        current.latency.append(m)
        current.save(path)


def bench_records(paths: list[Path], threads: int | None = None, runs: int = 20, warmup: int = 3, pin: bool = False,
                  models: dict[tuple[str, str, str], Any] | None = None, verbose: bool = True) -> list[ArtifactRecord]:
    """Time each artifact and the eager baseline of its source; append a Measurement to each record.

    ``models``: already loaded source models by (source, task, token_types), to skip reloading.
    A file that cannot be timed gets a Measurement whose ``not_timed`` says why; nothing raises.
    """
    import torch

    from edgekit.core import registry
    from edgekit.core.console import console, native_output_to_log
    from edgekit.model.modeling import load_model

    threads = threads or default_threads()
    if threads < 1:
        raise UsageError("--threads must be at least 1")
    if runs < 1 or warmup < 0:
        raise UsageError("--runs must be >= 1 and --warmup >= 0")
    for folder in sorted({Path(p).parent for p in paths}):
        if not os.access(folder, os.W_OK):  # before anything is timed: the measurements go into the records
            raise UsageError(f"{folder} is not writable: bench appends its measurement to each file's record "
                             "there; copy the files and their .json records to a writable folder")
    models = dict(models or {})
    eager: dict[tuple[str, str, str, int], LatencyStats | None] = {}
    run_id, host = now(), cpu_name()
    records = [ArtifactRecord.load(p) for p in paths]
    with pinned_cpus(threads, pin) as cpus:
        torch.set_num_threads(threads)  # the one place the thread count is set for PyTorch
        for i, (path, rec) in enumerate(zip(paths, records), 1):
            if rec.status == Status.EXPORT_FAILED or not path.exists():
                continue
            seq = rec.seq_len.default
            src = rec.source
            key = (src.source, rec.task.value, src.token_types, seq)
            if key not in eager:
                try:
                    mkey = key[:3]
                    if mkey not in models:
                        tt = src.token_types if src.token_types in ("fold", "keep") else "auto"
                        models[mkey] = load_model(src.source, rec.task, token_types=tt)
                    eager[key] = bench_eager(models[mkey], seq, runs=runs, warmup=warmup)
                    if verbose:
                        console.print(f"[bold]pytorch eager fp32[/] seq {seq}: p50 {eager[key].p50_ms:.1f} ms")
                except EdgekitError as e:
                    eager[key] = None
                    console.print(f"[yellow]no eager baseline for {src.source}[/]: {e}")
            m = Measurement(run=run_id, seq_len=seq, threads=threads, host=host, load_average=load_average(),
                            eager=eager[key], pinned_cpus=cpus)
            if verbose:
                console.print(f"[{i}/{len(paths)}] {rec.artifact}")
            m.not_timed = registry.get(rec.target).benchmark_unavailable()
            if m.not_timed is None:
                try:
                    with native_output_to_log():
                        m.artifact = bench_artifact(path, rec, threads=threads, runs=runs, warmup=warmup, seq=seq)
                except Exception as e:  # noqa: BLE001 - a runtime that cannot run the file is reported, not raised
                    m.not_timed = f"runtime error while timing: {type(e).__name__}: {e}"
            rec.latency.append(m)
            _save_measurement(path, rec, m, verbose)
            if verbose and m.artifact:
                speed = f", {m.speedup:.2f}x eager" if m.speedup else ""
                console.print(f"    p50 {m.artifact.p50_ms:.1f} ms, p90 {m.artifact.p90_ms:.1f} ms "
                              f"({threads} threads){speed}")
            elif verbose:
                console.print(f"    [yellow]not timed[/]: {m.not_timed}")
    return records
