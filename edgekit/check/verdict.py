"""Parity of one exported file: the feeds it runs on and the verdict written into its record."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.check.parity import compare
from edgekit.core import registry
from edgekit.core.config import SeqLen
from edgekit.core.console import console, native_output_to_log
from edgekit.core.errors import EdgekitError, UnsupportedOpError
from edgekit.core.record import ArtifactRecord, Status
from edgekit.core.tasks import Task
from edgekit.core.threads import choose
from edgekit.core.tolerance import Tolerance
from edgekit.model.modeling import EdgeModel


def parity_lengths(seq: SeqLen) -> list[int]:
    """Lengths parity runs at: every enumerated one; for a range its lower end, its upper end and
    the default (or the middle) between them, since a runtime may fail only at one end."""
    if seq.kind == "enumerated":
        return list(seq.values)
    if seq.kind == "range":
        lo, hi = seq.values
        mid = seq.default if lo < seq.default < hi else (lo + hi) // 2
        return sorted({lo, mid, hi})
    return [seq.values[0]]



def parity_feeds(model: EdgeModel, tokenizer: Any, task: Task, seq: SeqLen,
                 n_random: int = 4, n_text: int | None = None) -> tuple[list[dict[str, np.ndarray]], list[bool]]:
    """Random token ids plus, with a tokenizer, the shipped real-text samples (``n_text`` of them,
    default ``samples.TEXT_SAMPLES``), at every parity length; the second list marks the real-text
    feeds."""
    from edgekit.model.inputs import random_feeds
    from edgekit.model.samples import TEXT_SAMPLES, sample_feeds

    special = (0, 101, 102)
    if tokenizer is not None:
        special = (tokenizer.pad_token_id or 0, tokenizer.cls_token_id or 0, tokenizer.sep_token_id or 0)
    feeds, real = [], []
    for s in parity_lengths(seq):
        rnd = random_feeds(model.config.vocab_size, s, model.input_names, n=n_random, special_ids=special)
        text = sample_feeds(tokenizer, task, s, model.input_names, n=n_text or TEXT_SAMPLES) \
            if tokenizer is not None else []
        feeds += rnd + text
        real += [False] * len(rnd) + [True] * len(text)
    return feeds, real


def validate_artifact(
    path: Path, record: ArtifactRecord, model: EdgeModel, tokenizer: Any, tolerance: Tolerance,
    verbose: bool = True, n_random: int = 4, n_text: int | None = None,
    arm64: tuple[str, ...] | None = None,
) -> ArtifactRecord:
    """Fill ``record.parity`` and ``record.status`` by running the artifact in its own runtime.

    ``n_text`` caps the real-text samples (default ``samples.TEXT_SAMPLES``): only for a slow
    runtime in a calibration sweep (benchmarks/tolerances.py), which says so in its result.
    ``arm64``: CPU models to check the file on in its aarch64 runtime under emulation too, on the
    same feeds and bounds (``edgekit.check.arm64``)."""
    conv = registry.get(record.target)
    record.tolerance = tolerance.to_dict()
    reason = conv.validation_unavailable(record)
    if reason:
        record.status, record.reason = Status.VALIDATION_SKIPPED, reason
        if verbose:
            console.print(f"    [yellow]- validation skipped[/]: {reason}")
        return record
    feeds, real = parity_feeds(model, tokenizer, record.task, record.seq_len, n_random=n_random, n_text=n_text)
    index = None
    if record.task == Task.FEATURE_EXTRACTION and tokenizer is not None:
        from edgekit.model.samples import embedding_index

        index = embedding_index(model, tokenizer)
    try:
        with native_output_to_log():
            report = compare(model, lambda: conv.load(path, record, threads=choose()), feeds, record.task, tolerance, verbose=verbose,
                             real=real, index=index)
    except UnsupportedOpError as e:
        record.status, record.reason, record.parity = Status.VALIDATION_SKIPPED, str(e), None
        if verbose:
            console.print(f"    [yellow]- validation skipped[/]: {e}")
        return record
    except EdgekitError:
        raise
    except Exception as e:  # the runtime could not run the file: the artifact failed, say why
        record.status, record.reason, record.parity = Status.PARITY_FAILED, f"runtime error: {type(e).__name__}: {e}", None
        if verbose:
            console.print(f"    [red]✗ runtime error[/]: {e}")
        return record
    record.parity = report
    if report.inputs_note and report.inputs_note not in record.notes:
        record.notes.append(report.inputs_note)
    record.status = Status.VALIDATED if report.passed else Status.PARITY_FAILED
    failed_steps = [f"{s.name}: {s.detail}" for s in report.steps if not s.ok]
    record.reason = None if report.passed else "; ".join(report.failures or failed_steps)
    # A target may have a second, independent client (TFLite: the Task Library) that checks the same file.
    conv.extra_validation(path, record, model, tokenizer, verbose=verbose)
    if arm64:
        from edgekit.check import arm64 as arm64_check

        arm64_check.check(path, record, model, feeds, real, tolerance, tuple(arm64), index=index, verbose=verbose)
    return record
