"""One run pipeline for ``export``, ``demo`` and ``bench MODEL``: plan -> export/validate -> bench -> report.

``plan`` turns what the user asked for into jobs and checks every one before any work starts: a
job that cannot run (backend missing, a precision or flag the target rejects) either stops the run
with a UsageError (when the user named it) or is kept as a skipped job carrying its reason (in a
sweep: ``--target all`` / ``--precision all``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgekit.core import registry
from edgekit.core.config import ExportOptions, SeqLen
from edgekit.core.errors import EdgekitError, UsageError
from edgekit.core.precision import Precision
from edgekit.core.tasks import Task
from edgekit.build.job import Job, check_options  # noqa: F401 - Job is part of plan's interface


def _names(spec: str | list[str] | None) -> list[str] | None:
    """``"a,b"`` or ``["a", "b"]`` -> names; ``None``/``"all"`` -> None (everything)."""
    if spec is None:
        return None
    items = [v.strip() for part in ([spec] if isinstance(spec, str) else spec) for v in str(part).split(",")]
    items = [v for v in items if v]
    return None if not items or items == ["all"] else items


def plan(targets: str | list[str] | None, precisions: str | list[str] | None, seq_lens: list[SeqLen] | None,
         task: Task | str, *, token_types: str = "auto", flags: dict[str, Any] | None = None,
         calibration: Path | None = None, skip: str | list[str] | None = None,
         n_inputs: int = 2, leave_out: tuple[Precision, ...] = ()) -> list[Job]:
    """Every target x precision x sequence length to export, each checked up front.

    ``seq_lens``: None = each target's own default for the task (``Converter.default_seq_len``).
    ``targets``/``precisions``: names or ``all``/None. A sweep (``all``) keeps what cannot run as a
    skipped job with the reason; a job the user named explicitly raises a UsageError instead.
    ``flags``: target-specific options (``ane``, ``deployment_target``, ``metadata`` ...); in a
    target sweep a flag goes only to the targets that take it. ``skip``: ``target`` or
    ``target:precision`` items to leave out (kept as skipped jobs). ``leave_out``: precisions a
    precision sweep does not include (the demo's: files that cannot reach an app's floor on its model).
    """
    from edgekit.core import registry

    task = Task.parse(task)
    flags = {k: v for k, v in (flags or {}).items()}
    target_names, precision_names = _names(targets), _names(precisions)
    sweep_targets, sweep_precisions = target_names is None, precision_names is None
    table = registry.converters()
    convs = list(table.values()) if sweep_targets else [registry.get(n) for n in target_names]
    left_out = set(_names(skip) or [])
    unknown = {s for s in left_out if s.split(":")[0] not in table}
    if unknown:
        raise UsageError(f"--skip names unknown targets: {sorted(unknown)} (use target or target:precision)")
    if calibration is not None and not sweep_precisions and "int8-static" not in (precision_names or []):
        raise UsageError("--calibration only applies to --precision int8-static")
    jobs: list[Job] = []
    for conv in convs:
        conv_seqs = seq_lens if seq_lens is not None else [SeqLen.parse(conv.default_seq_len(task))]
        missing = conv.missing_module()
        if missing is not None:
            if not sweep_targets:
                conv.require()  # raises MissingDependencyError naming the extra
            jobs += [Job(conv.name, "-", s, skipped=f"backend not installed (no module {missing!r}): "
                                                    f"pip install 'edgekit[{conv.extra}]'") for s in conv_seqs]
            continue
        wanted = [p for p in conv.precisions if p not in leave_out] if sweep_precisions else \
            Precision.select(precision_names, conv.precisions, only_supported=sweep_targets)
        own = flags if not sweep_targets else {k: v for k, v in flags.items() if k in conv.flag_names}
        for seq in conv_seqs:
            for p in wanted:
                # A calibration file belongs to the int8-static jobs of a multi-precision run only.
                calib = calibration if p == Precision.INT8_STATIC else None
                if conv.name in left_out or f"{conv.name}:{p.value}" in left_out:
                    jobs.append(Job(conv.name, p.value, seq, skipped="left out of this run (--skip)"))
                    continue
                try:
                    opts = ExportOptions(target=conv.name, task=task, precision=p, seq_len=seq,
                                         token_types=token_types, calibration=calib, flags=own)
                    check_options(conv, opts, n_inputs)
                except UsageError as e:
                    if not (sweep_targets or sweep_precisions):
                        raise
                    jobs.append(Job(conv.name, p.value, seq, skipped=str(e)))
                    continue
                jobs.append(Job(conv.name, p.value, seq, options=opts))
    return jobs


@dataclass
class RunResult:
    """What a pipeline run produced: the records of the files it exported and the jobs it skipped."""

    out: Path
    records: list[Any] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    models: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    workers: int = 1  # processes that exported the files

    @property
    def paths(self) -> list[Path]:
        return [self.out / r.artifact for r in self.records]


def run(jobs: list[Job], model_path: str, task: Task | str, out: Path, *, token_types: str = "auto",
        tolerance: dict[str, float | None] | None = None, validate: bool = True,
        gate: Callable[..., None] | None = None, verbose: bool = True,
        arm64: tuple[str, ...] | None = None, workers: int | str = 1) -> RunResult:
    """Load the model once, export (and validate) every job that is not skipped into ``out``.

    ``tolerance``: bound overrides (checked here: ``check_overrides``), merged into each target's
    own bound; the one place they are merged. ``gate(path, record, model, tokenizer)``: the accuracy
    gate (``edgekit.quality.gate.Gate``), run on each staged file before it is installed.
    ``workers``: processes that take the jobs side by side, a whole target's files at a time
    (``"auto"``: the free cores, at most one per 3 files; see ``worker_count``); each file is
    exported, checked and installed by one of them exactly as alone, so the verdicts do not depend
    on it. Records come back in the jobs' order.
    """
    from edgekit.core.console import console
    from edgekit.core.tolerance import check_overrides
    from edgekit.model.modeling import load_model, load_tokenizer

    out = Path(out)
    overrides = check_overrides(tolerance or {})
    result = RunResult(out)
    for job in jobs:
        if job.skipped:
            result.skipped.append(job)
            console.print(f"[yellow]skipping {job.label}[/]: {job.skipped}")
    todo = [j for j in jobs if not j.skipped]
    if not todo:
        return result
    task = Task.parse(task)
    from edgekit.model import preflight

    # User errors up front, as messages (exit 2), before the model is loaded.
    lengths = [v for j in todo for v in j.seq_len.values]
    preflight.check_model(model_path)
    preflight.check_seq_len(model_path, lengths)
    preflight.check_out(out)
    n_workers = worker_count(workers, todo, gate)
    if verbose:
        console.print(f"loading {model_path} for {task} …"
                      + (f" ({n_workers} processes take the {len(todo)} files side by side)" if n_workers > 1 else ""))
    model = load_model(model_path, task, token_types=token_types)
    if preflight.max_positions(model_path) is None:  # not a local folder: the loaded model knows its table
        preflight.check_seq_len(model_path, lengths, limit=model.config.max_positions)
    result.models[(str(model_path), task.value, model.config.token_types)] = model
    tokenizer = _tokenizer(model_path, load_tokenizer, say=console.print)
    common = dict(out=out, overrides=overrides, validate=validate, gate=gate, verbose=verbose, arm64=arm64)
    result.workers = n_workers
    if n_workers == 1:
        result.records.extend(_export_one(i, len(todo), job, model, tokenizer, **common)
                              for i, job in enumerate(todo, 1))
        return result
    result.records.extend(_side_by_side(todo, n_workers, model, tokenizer, model_path, task, token_types, common))
    return result


def _tokenizer(model_path: str, load_tokenizer: Callable[[str], Any], say: Callable[[str], Any]) -> Any:
    try:
        return load_tokenizer(model_path)
    except EdgekitError:
        say("[yellow]no tokenizer found: parity uses random token ids only[/]")
        return None


def _export_one(i: int, n: int, job: Job, model: Any, tokenizer: Any, *, out: Path,
                overrides: dict[str, float | None], validate: bool, gate: Callable[..., None] | None,
                verbose: bool, arm64: tuple[str, ...] | None, grouped: bool = False) -> Any:
    """Export, check and install one job: the same steps whichever process runs it.

    ``grouped`` (several processes): the file's lines are written as one block when it is done, so
    the steps of two files never interleave."""
    import contextlib

    from edgekit.build.stage import export_model
    from edgekit.core.console import console

    cap = console.capture() if grouped else None
    try:
        with cap if cap is not None else contextlib.nullcontext():
            if verbose:
                console.rule(f"[{i}/{n}] {job.label}")
            conv = registry.get(job.target)
            assert job.options is not None
            tol = conv.tolerance(job.options.precision).merged(**overrides)
            t0 = time.perf_counter()
            record = export_model(model, job, out, tokenizer=tokenizer, tolerance=tol, validate=validate,
                                  gate=gate, verbose=verbose, arm64=arm64)
            if verbose:  # each file's last line: its verdict and the time it took (conversion, then the checks)
                took = time.perf_counter() - t0
                convert = f" (convert {record.export_seconds:.1f} s)" if record.export_seconds else ""
                console.print(f"    {record.status.symbol} {record.status} · {job.label} · {took:.1f} s{convert}")
            return record
    finally:
        if cap is not None and (text := cap.get()):
            console.file.write(text)  # one write: a whole block
            console.file.flush()


# ---- several processes -------------------------------------------------------------------------

#: Fewer files than this are not worth a second process (it loads torch and the model: ~3-5 s).
MIN_FILES_PER_WORKER = 3


def worker_count(workers: int | str, todo: list[Job], gate: Any = None) -> int:
    """How many processes take ``todo``: ``workers`` when it is a number (at most one per file);
    ``"auto"``: the free cores (``core.threads.choose``), at most one per ``MIN_FILES_PER_WORKER``
    files. Always 1 with an accuracy gate: the gate's PyTorch reference on the whole eval set is
    computed once per process and shared by the files, which a second process would redo."""
    if isinstance(workers, str) and workers != "auto":
        raise UsageError(f"--jobs {workers}: give a number of processes or auto")
    if not isinstance(workers, str) and workers < 1:
        raise UsageError("--jobs must be at least 1")
    if gate is not None:
        return 1
    if workers == "auto":
        from edgekit.core.threads import choose

        return max(1, min(choose(), len(todo) // MIN_FILES_PER_WORKER))
    return max(1, min(int(workers), len(todo)))


def _groups(todo: list[Job]) -> list[list[int]]:
    """Job indices (1-based) in units a worker takes whole: one target's files together, in the plan's
    order, because a process keeps what a target's files share (Core ML's fp16 program, a calibration
    set) for the next file of the same target."""
    units: dict[str, list[int]] = {}
    for i, job in enumerate(todo, 1):
        units.setdefault(job.target, []).append(i)
    return list(units.values())


def _side_by_side(todo: list[Job], n_workers: int, model: Any, tokenizer: Any, model_path: str, task: Task,
                  token_types: str, common: dict[str, Any]) -> list[Any]:
    """Run ``todo`` in this process and ``n_workers - 1`` spawned ones, each taking the next unit of
    ``_groups`` from a shared counter; every process shares the cores (``core.threads.share``)."""
    import multiprocessing as mp

    from edgekit.core import console as cons
    from edgekit.core.threads import choose, share

    per = max(1, choose() // n_workers)
    units = _groups(todo)
    ctx = mp.get_context("spawn")  # not fork: PyTorch's and the runtimes' thread pools do not survive it
    counter = ctx.Value("i", 0)
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, name=f"edgekit-worker-{k}",
                         args=(todo, units, counter, results, model_path, task.value, token_types, common, per,
                               cons.verbose(), cons.log_path()))
             for k in range(1, n_workers)]
    for p in procs:
        p.start()
    records: dict[int, Any] = {}
    failure: BaseException | None = None
    try:
        with share(per):
            for i in _take(units, counter):
                records[i] = _export_one(i, len(todo), todo[i - 1], model, tokenizer, grouped=True, **common)
        failure = _collect(procs, results, records)
    except BaseException:
        with counter.get_lock():  # this process failed (or Ctrl-C): the workers take no further unit
            counter.value = len(units)
        raise
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
    results.close()
    results.join_thread()
    del counter, results
    _stop_resource_tracker()
    if failure is not None:
        raise failure
    missing = [todo[i - 1].label for i in range(1, len(todo) + 1) if i not in records]
    if missing:
        raise EdgekitError(f"a worker process ended without exporting {', '.join(missing)}; see the log")
    return [records[i] for i in range(1, len(todo) + 1)]


def _stop_resource_tracker() -> None:
    """End multiprocessing's resource tracker (started for the shared counter's and the queue's
    semaphores, now released) before returning, so a run leaves no process behind it: the tracker
    would otherwise outlive edgekit by a moment, which a caller timing the process group sees."""
    import gc
    from multiprocessing import resource_tracker

    gc.collect()  # the semaphores' finalizers unregister them first
    try:
        resource_tracker._resource_tracker._stop()  # noqa: SLF001 - no public way to end it
    except Exception:  # noqa: BLE001 - a Python without it: the tracker ends by itself a moment later
        pass


def _collect(procs: list[Any], results: Any, records: dict[int, Any]) -> BaseException | None:
    """The workers' records into ``records`` until each has said it is done, failed, or died; the
    first failure is returned (raised by the caller once every worker has stopped)."""
    import queue

    pending, failure = {p.name for p in procs}, None
    while pending:
        try:
            kind, name, payload = results.get(timeout=2)
        except queue.Empty:
            for p in procs:  # killed (out of memory, a signal) before it could say so
                if p.name in pending and not p.is_alive() and results.empty():
                    pending.discard(p.name)
                    failure = failure or EdgekitError(f"{p.name} died (exit code {p.exitcode}); see the log")
            continue
        if kind == "record":
            records[payload[0]] = payload[1]
            continue
        pending.discard(name)
        if kind == "error":
            failure = failure or payload
    return failure


def _take(units: list[list[int]], counter: Any) -> Any:
    """The job indices of the next units this process takes, until none are left."""
    while True:
        with counter.get_lock():
            u = counter.value
            counter.value += 1
        if u >= len(units):
            return
        yield from units[u]


def _worker(todo: list[Job], units: list[list[int]], counter: Any, results: Any, model_path: str, task: str,
            token_types: str, common: dict[str, Any], per: int, verbose: bool, log: Path | None) -> None:
    """A spawned process of ``_side_by_side``: load the model, then export units until none are left."""
    import multiprocessing as mp

    me = mp.current_process().name
    try:
        from edgekit.core.console import quiet_backends, quiet_libraries
        from edgekit.core.threads import share
        from edgekit.model.modeling import load_model, load_tokenizer

        quiet_libraries(verbose, log)
        quiet_backends(log.parent if log is not None else None)
        with share(per):
            model = load_model(model_path, task, token_types=token_types)
            tokenizer = _tokenizer(model_path, load_tokenizer, say=lambda _: None)
            for i in _take(units, counter):
                results.put(("record", me, (i, _export_one(i, len(todo), todo[i - 1], model, tokenizer,
                                                            grouped=True, **common))))
        results.put(("done", me, None))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises it
        try:
            import pickle

            pickle.dumps(e)
            results.put(("error", me, e))
        except Exception:  # noqa: BLE001 - an exception that does not pickle: its text
            results.put(("error", me, EdgekitError(f"{me}: {type(e).__name__}: {e}")))
