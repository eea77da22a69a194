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
         n_inputs: int = 2) -> list[Job]:
    """Every target x precision x sequence length to export, each checked up front.

    ``seq_lens``: None = each target's own default for the task (``Converter.default_seq_len``).
    ``targets``/``precisions``: names or ``all``/None. A sweep (``all``) keeps what cannot run as a
    skipped job with the reason; a job the user named explicitly raises a UsageError instead.
    ``flags``: target-specific options (``ane``, ``deployment_target``, ``metadata`` ...); in a
    target sweep a flag goes only to the targets that take it. ``skip``: ``target`` or
    ``target:precision`` items to leave out (kept as skipped jobs).
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
        wanted = list(conv.precisions) if sweep_precisions else \
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

    @property
    def paths(self) -> list[Path]:
        return [self.out / r.artifact for r in self.records]


def run(jobs: list[Job], model_path: str, task: Task | str, out: Path, *, token_types: str = "auto",
        tolerance: dict[str, float | None] | None = None, validate: bool = True,
        gate: Callable[..., None] | None = None, verbose: bool = True,
        arm64: tuple[str, ...] | None = None) -> RunResult:
    """Load the model once, export (and validate) every job that is not skipped into ``out``.

    ``tolerance``: bound overrides (checked here: ``check_overrides``), merged into each target's
    own bound; the one place they are merged. ``gate(path, record, model, tokenizer)``: the accuracy
    gate (``edgekit.quality.gate.Gate``), run on each staged file before it is installed.
    """
    from edgekit.core.console import console
    from edgekit.core.tolerance import check_overrides
    from edgekit.build.stage import export_model
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
    if verbose:
        console.print(f"loading {model_path} for {task} …")
    model = load_model(model_path, task, token_types=token_types)
    if preflight.max_positions(model_path) is None:  # not a local folder: the loaded model knows its table
        preflight.check_seq_len(model_path, lengths, limit=model.config.max_positions)
    result.models[(str(model_path), task.value, model.config.token_types)] = model
    try:
        tokenizer = load_tokenizer(model_path)
    except EdgekitError:
        tokenizer = None
        console.print("[yellow]no tokenizer found: parity uses random token ids only[/]")
    for i, job in enumerate(todo, 1):
        if verbose:
            console.rule(f"[{i}/{len(todo)}] {job.label}")
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
        result.records.append(record)
    return result

