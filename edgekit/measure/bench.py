"""Latency: the one bench loop. Every artifact is timed in its own runtime next to PyTorch eager fp32
of its source model, in one process, with one thread count set once; each run appends a
``record.Measurement`` to the artifact's record (earlier measurements are kept).
"""
from __future__ import annotations

import contextlib
import itertools
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


def check_settings(threads: int | None, runs: int, warmup: int) -> None:
    """The one check of bench settings (CLI, API and here): a usage error before anything runs."""
    if runs < 1 or warmup < 0:
        raise UsageError("--runs must be >= 1 and --warmup >= 0")
    if threads is not None and threads < 1:
        raise UsageError("--threads must be at least 1")


def measure(fn: Callable[[], Any], warmup: int = 3, runs: int = 20) -> LatencyStats:
    """Time ``fn`` after ``warmup`` untimed calls."""
    check_settings(None, runs, warmup)
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


#: A measurement whose p90 exceeds its p50 by more than this factor was disturbed (other work took the
#: cores for part of the runs): on the quiet 2-core machine the demo's files have p90/p50 of 1.00-1.05
#: and a busy machine's bimodal runs give 1.5-3.
SPREAD_BOUND = 1.5
#: Eager p50 at a longer sequence below this share of the p50 at a shorter one: the baseline is not
#: monotone in length, so at least one of the two is wrong (seen: 208 ms at 128 tokens, 23 ms at 384).
MONOTONE_SLACK = 0.9


def spread_problem(stats: LatencyStats | None, what: str) -> str | None:
    """Why ``stats`` cannot be trusted on its own (p90/p50 beyond ``SPREAD_BOUND``), or None."""
    if stats is None or stats.p50_ms <= 0:
        return None
    ratio = stats.p90_ms / stats.p50_ms
    if ratio > SPREAD_BOUND:
        return f"{what} p90/p50 {ratio:.2f} > {SPREAD_BOUND}"
    return None


def not_monotone(eager: dict[int, LatencyStats | None]) -> str | None:
    """Why one model's eager baselines of one run, by length, cannot all be right, or None."""
    seen = sorted((seq, st.p50_ms) for seq, st in eager.items() if st is not None)
    for (short, a), (long, b) in itertools.pairwise(seen):
        if b < MONOTONE_SLACK * a:
            return (f"eager baseline not monotone in length (p50 {a:.1f} ms at {short} tokens, "
                    f"{b:.1f} ms at {long})")
    return None


def _wait_quieter(seconds: float = 3.0, step: float = 0.5) -> None:
    """Give other work on the cores up to ``seconds`` to finish before a re-measurement."""
    from edgekit.core.threads import busy_elsewhere

    end = time.monotonic() + seconds
    while busy_elsewhere() >= 1 and time.monotonic() < end:
        time.sleep(step)


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


def _update_saved(path: Path, timed: ArtifactRecord, change: Callable[[ArtifactRecord], bool],
                  verbose: bool = True) -> bool:
    """Apply ``change`` to the record now beside ``path`` and save it, under its install lock, if
    that record still describes the file that was timed (``change`` returns False: nothing to save).
    False when the pair was replaced meanwhile or its record cannot be read."""
    from edgekit.build.install import locked

    with locked(path.parent, path.name, quiet=not verbose):
        try:
            current = ArtifactRecord.load(path)
        except (OSError, UsageError):
            return False
        if current.sha256 != timed.sha256:
            return False
        if change(current):
            current.save(path)
        return True


def _save_measurement(path: Path, timed: ArtifactRecord, m: Measurement, verbose: bool = True) -> None:
    """Append ``m`` to the record now beside ``path`` if that record still describes the file that
    was timed; an export that replaced the pair meanwhile keeps its own record (the measurement
    belongs to a file that is gone, and is dropped with a note)."""
    from edgekit.core.console import console

    if not _update_saved(path, timed, lambda current: current.latency.append(m) or True, verbose):
        console.print(f"[yellow]{path.name} was replaced while it was timed[/]: its new record is kept "
                      "and this measurement is not saved")


def _mark_unreliable(path: Path, timed: ArtifactRecord, m: Measurement, verbose: bool = True) -> None:
    """Write ``m.unreliable`` into the saved copy of ``m`` (same run and length)."""
    def mark(current: ArtifactRecord) -> bool:
        for saved in reversed(current.latency):
            if saved.run == m.run and saved.seq_len == m.seq_len:
                saved.unreliable = m.unreliable
                return True
        return False

    _update_saved(path, timed, mark, verbose)


def bench_records(paths: list[Path], threads: int | None = None, runs: int = 20, warmup: int = 3, pin: bool = False,
                  models: dict[tuple[str, str, str], Any] | None = None, verbose: bool = True) -> list[ArtifactRecord]:
    """Time each artifact and the eager baseline of its source; append a Measurement to each record.

    ``models``: already loaded source models by (source, task, token_types), to skip reloading.
    A file that cannot be timed gets a Measurement whose ``not_timed`` says why; nothing raises.
    Sanity: a measurement whose spread (p90/p50, the file's or its eager baseline's) is beyond
    ``SPREAD_BOUND`` is timed once more after giving other work a few seconds to finish (and says
    so); still beyond it, or from a run whose eager baselines are not monotone in length, it is
    marked ``unreliable`` in the record, and its × eager is not reported.
    """
    import torch

    from edgekit.core import registry
    from edgekit.core.console import console, native_output_to_log
    from edgekit.core import threads as cpu
    from edgekit.model.modeling import load_model

    check_settings(threads or None, runs, warmup)  # 0: the default, as None
    threads = threads or default_threads()
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
            others_before = cpu.busy_elsewhere()
            m = Measurement(run=run_id, seq_len=seq, threads=threads, host=host, load_average=load_average(),
                            eager=eager[key], pinned_cpus=cpus)
            if verbose:
                console.print(f"[{i}/{len(paths)}] {rec.artifact}")
            m.not_timed = registry.get(rec.target).benchmark_unavailable()
            if m.not_timed is None:
                try:
                    with native_output_to_log():
                        m.artifact = bench_artifact(path, rec, threads=threads, runs=runs, warmup=warmup, seq=seq)
                        problem = spread_problem(m.artifact, "file") or spread_problem(m.eager, "eager")
                        if problem:
                            if verbose:
                                console.print(f"    [yellow]{problem}[/]: timing it again once the machine is quieter")
                            _wait_quieter()
                            m.remeasured = True
                            if spread_problem(m.eager, "eager") and key[:3] in models:
                                eager[key] = m.eager = bench_eager(models[key[:3]], seq, runs=runs, warmup=warmup)
                            m.artifact = bench_artifact(path, rec, threads=threads, runs=runs, warmup=warmup,
                                                        seq=seq)
                            again = spread_problem(m.artifact, "file") or spread_problem(m.eager, "eager")
                            if again:
                                m.unreliable = f"{again} (also after one re-measurement)"
                except Exception as e:  # noqa: BLE001 - a runtime that cannot run the file is reported, not raised
                    m.not_timed = f"runtime error while timing: {type(e).__name__}: {e}"
            m.others = min(others_before, cpu.busy_elsewhere())
            rec.latency.append(m)
            _save_measurement(path, rec, m, verbose)
            if verbose and m.artifact:
                speed = f", {m.speedup:.2f}x eager" if m.speedup else ""
                console.print(f"    p50 {m.artifact.p50_ms:.1f} ms, p90 {m.artifact.p90_ms:.1f} ms "
                              f"({threads} threads){speed}")
            elif verbose:
                console.print(f"    [yellow]not timed[/]: {m.not_timed}")
    # One model's baselines of this run must grow with length; when they do not, every measurement
    # compared against them is marked (which of the two lengths was disturbed cannot be told).
    by_model: dict[tuple[str, str, str], dict[int, LatencyStats | None]] = {}
    for (source, task, tt, seq), st in eager.items():
        by_model.setdefault((source, task, tt), {})[seq] = st
    bad = {k: why for k, v in by_model.items() if (why := not_monotone(v))}
    for path, rec in zip(paths, records):
        m = rec.last_latency
        if not bad or m is None or m.run != run_id or m.artifact is None:
            continue
        why = bad.get((rec.source.source, rec.task.value, rec.source.token_types))
        if why and not m.unreliable:
            m.unreliable = why
            _mark_unreliable(path, rec, m, verbose)
    if bad and verbose:
        for why in bad.values():
            console.print(f"[yellow]{why}[/]: those files' × eager is not reported (marked unreliable in their records)")
    return records
