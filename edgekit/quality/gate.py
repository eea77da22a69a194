"""The accuracy gate: an exported file must still do its task on real data.

``edgekit export/validate --eval-data FILE`` (``Gate``): the file and its PyTorch model answer the same
questions (SQuAD F1, or accuracy for sequence classification); a drop beyond the bound turns a
validated record into parity-failed, with the numbers in ``record.quality``. The gate runs on the
staged file, before the install decision: a file it fails is never installed over a validated one,
and the record of a pair that is kept is never touched (DESIGN.md "Install protocol").
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.core.errors import EdgekitError, UsageError
from edgekit.quality.evaluate import (EvalResult, _longest, _torch_threads, artifact_subject, default_max_drop,
                                      evaluate_subject, load_data, pytorch_subject, same_answer_rate)


@dataclass(frozen=True)
class GateOptions:
    """What the gate runs on: ``data`` (SQuAD v1.1 JSON or JSON lines), the largest allowed drop
    (None: by precision, ``default_max_drop``), the first ``n`` questions, runtime ``threads``.
    Checked when made: a bad option is a usage error before any export starts."""

    data: Path
    max_drop: float | None = None
    n: int | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        data = Path(self.data)
        object.__setattr__(self, "data", data)
        if data.is_dir():
            raise UsageError(f"--eval-data {data} is a folder; give a SQuAD v1.1 .json/.json.xz file or JSON lines")
        if not data.is_file():
            raise UsageError(f"--eval-data {data} does not exist")
        if self.n is not None and self.n < 1:
            raise UsageError("--eval-n must be at least 1")
        if self.max_drop is not None and not 0 <= self.max_drop <= 100:
            raise UsageError("--max-f1-drop must be between 0 and 100 (F1 or accuracy points)")
        if self.threads is not None and self.threads < 1:
            raise UsageError("--threads must be at least 1")

    def check(self, task: Any) -> None:
        """Read the data for ``task`` now (a malformed file is a usage error before any export)."""
        task = str(getattr(task, "value", task))
        if task not in ("question-answering", "sequence-classification"):
            raise UsageError(f"--eval-data scores question-answering and sequence-classification exports, not {task}")
        load_data(task, str(self.data) if task == "question-answering" else None,
                  str(self.data) if task != "question-answering" else None, self.n)


BOOTSTRAP_SAMPLES = 2000


def per_question_scores(task: str, data: Any, predictions: dict[str, Any], labels: list[str] | None = None) -> list[float]:
    """Each question's score (SQuAD F1 over its gold answers, or 1/0 for a class), in percent."""
    if task == "question-answering":
        from edgekit.quality import squad

        return [100.0 * squad.max_over_ground_truths(squad.f1_score, predictions[q.id].text, q.answers)
                if q.id in predictions and q.answers else 0.0 for q in data]
    from edgekit.quality.evaluate import _label_index

    return [100.0 * (predictions.get(str(i)) == _label_index(row["label"], labels or [])) for i, row in enumerate(data)]


def mean_score(scores: list[float]) -> float:
    """The metric of per-question scores (:func:`per_question_scores`): their mean; 0 for none."""
    return sum(scores) / max(1, len(scores))


def paired_interval(reference: list[float], artifact: list[float], samples: int = BOOTSTRAP_SAMPLES,
                    seed: int = 0) -> tuple[float, float]:
    """95% paired bootstrap interval of mean(reference - artifact): questions are resampled with
    replacement, each keeping its pair of scores (the two models answered the same question)."""
    import numpy as np

    d = np.asarray(reference, dtype=np.float64) - np.asarray(artifact, dtype=np.float64)
    if d.size == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(samples, d.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return (float(lo), float(hi))


def share_interval(reference: list[float], artifact: list[float]) -> tuple[float, tuple[float, float]] | None:
    """``artifact``'s mean as a share of ``reference``'s on the same items, with the 95% interval of
    :func:`paired_interval` (of reference − artifact) over the reference's mean; None when that mean is 0.
    The one way a student's share of its teacher is stated (MRR, SQuAD F1)."""
    ref = mean_score(reference)
    if ref <= 0:
        return None
    lo, hi = paired_interval(reference, artifact)
    return 1 - (ref - mean_score(artifact)) / ref, (1 - hi / ref, 1 - lo / ref)


def verdict(drop: float, interval: tuple[float, float], bound: float) -> str:
    """``pass`` when the whole interval is within the bound, ``fail`` when it lies beyond it, and
    ``undecided`` when it straddles it."""
    lo, hi = interval
    if hi <= bound + 1e-9:
        return "pass"
    if lo > bound + 1e-9:
        return "fail"
    return "undecided"


class Gate:
    """The accuracy gate of one run: the PyTorch reference is evaluated once and shared by every file.

    Call it on a (staged) file and its record: it fills ``record.quality`` and may turn validated into
    parity-failed; it never saves the record (the caller decides where the record goes).
    """

    def __init__(self, options: GateOptions) -> None:
        self.options = options
        self.reference: EvalResult | None = None

    def __call__(self, path: Path, record: Any, model: Any, tokenizer: Any, verbose: bool = True) -> None:
        if tokenizer is None:
            raise UsageError("the accuracy gate needs the model's tokenizer (none was found next to the model)")
        if self.options.threads:
            _torch_threads(self.options.threads)
        self.reference = accuracy_gate(Path(path), record, model, tokenizer, str(self.options.data),
                                       self.options.max_drop, self.options.n, reference=self.reference,
                                       threads=self.options.threads, verbose=verbose)


def accuracy_gate(path: Path, record: Any, model: Any, tokenizer: Any, eval_data: str, max_drop: float | None = None,
                  n: int | None = None, reference: EvalResult | None = None, progress: bool = True,
                  verbose: bool = True, threads: int | None = None) -> EvalResult:
    """Evaluate an exported file and its PyTorch model on the same data; fail the record on a large drop.

    Fills ``record.quality`` (metric, PyTorch and artifact scores, drop, bound, same-answer rate,
    count) and turns a ``validated`` record into ``parity-failed`` when the drop exceeds
    ``max_drop`` (default by precision: :func:`default_max_drop`). A failed or skipped record
    keeps its status. Returns the PyTorch result so a caller can reuse it for the next file.
    """
    from edgekit.core.console import console
    from edgekit.core.record import Quality, Status

    task = record.task.value
    if task not in ("question-answering", "sequence-classification"):
        raise UsageError(f"--eval-data scores question-answering and sequence-classification exports, not {task}")
    bound = default_max_drop(record.precision.value) if max_drop is None else max_drop
    data_name, data = load_data(task, eval_data if task == "question-answering" else None,
                                eval_data if task != "question-answering" else None, n)
    labels = list(getattr(model.config, "labels", ()) or ())
    if reference is None or reference.n != len(data) or reference.data != data_name:
        src = record.source.source or "pytorch"
        geometry = record.qa_geometry if task == "question-answering" else None
        reference = evaluate_subject(pytorch_subject(src, task, model=model, tokenizer=tokenizer,
                                                     max_seq_len=geometry.max_len if geometry else _longest(record),
                                                     geometry=geometry),
                                     data_name, data, progress, labels)
    if record.status in (Status.EXPORT_FAILED,) or record.status == Status.VALIDATION_SKIPPED:
        record.quality = Quality(skipped=f"the file was not run ({record.status}): no accuracy gate")
        return reference
    try:
        subject = artifact_subject(path, tokenizer=tokenizer, record=record, threads=threads)
        result = evaluate_subject(subject, data_name, data, progress, labels)
    except EdgekitError:
        raise
    except Exception as e:  # noqa: BLE001 - a runtime that cannot answer is a failed gate, said plainly
        record.quality = Quality(error=f"{type(e).__name__}: {e}", data=data_name)
        if record.status == Status.VALIDATED:
            record.status, record.reason = Status.PARITY_FAILED, f"accuracy gate: the file could not be evaluated: {e}"
        return reference
    metric = "f1" if task == "question-answering" else "accuracy"
    drop = reference.metrics[metric] - result.metrics[metric]
    result.same_answer = same_answer_rate(result.predictions, reference.predictions)
    interval = paired_interval(per_question_scores(task, data, reference.predictions, labels),
                               per_question_scores(task, data, result.predictions, labels))
    said = verdict(drop, interval, bound)
    # Undecided keeps the point rule (a drop beyond the bound fails) and says so: the interval only
    # adds a verdict it can stand behind, it never lets a worse point estimate through.
    failed = said == "fail" or (said == "undecided" and drop > bound + 1e-9)
    record.quality = Quality(
        metric=metric, data=data_name, n=len(data), pytorch=round(reference.metrics[metric], 3),
        artifact=round(result.metrics[metric], 3), drop=round(drop, 3), max_drop=bound,
        same_answer=round(result.same_answer, 4), passed=not failed,
        drop_interval=[round(interval[0], 3), round(interval[1], 3)], verdict=said,
        pytorch_metrics={k: round(v, 3) for k, v in reference.metrics.items()},
        artifact_metrics={k: round(v, 3) for k, v in result.metrics.items()},
        seconds_per_question=round(result.seconds_per_question, 4),
    )
    undecided = f"; undecided at {len(data)} — evaluate more questions" if said == "undecided" else ""
    msg = (f"{metric.upper() if metric == 'f1' else metric} {result.metrics[metric]:.2f} vs PyTorch "
           f"{reference.metrics[metric]:.2f} (Δ {-drop:+.2f}, 95% interval of the drop "
           f"[{interval[0]:+.2f}, {interval[1]:+.2f}], bound {bound}), same answer {result.same_answer:.1%}, "
           f"{len(data)} questions{undecided}")
    if failed:
        if record.status == Status.VALIDATED:
            record.status = Status.PARITY_FAILED
            record.reason = f"accuracy gate: {msg}"
        elif record.reason:
            record.reason += f"; accuracy gate: {msg}"
        if verbose:
            console.print(f"    [red]✗ accuracy gate[/]: {msg}")
    elif verbose:
        console.print(f"    [green]✓ accuracy gate[/]: {msg}")
    return reference
