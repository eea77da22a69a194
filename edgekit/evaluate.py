"""``edgekit eval``: task quality of a PyTorch model and of its exported files, each in its own runtime.

Question answering: every question of a SQuAD v1.1 file goes through edgekit's one QA pipeline
(:class:`edgekit.qa.QAPipeline`: question-first windows of 384 tokens, stride 128, answers up to
15 tokens), once per model, and is scored by the official v1.1 rules (:mod:`edgekit.squad`).
Sequence classification: accuracy on JSON lines ``{"text", "text_pair"?, "label"}``.

Every exported file is compared with the PyTorch model it was exported from, on the same
questions: besides EM/F1 the table gives the *same-answer rate*, the share of questions whose
answer span is identical to PyTorch's. A quantized file can keep its F1 while changing many
answers (errors in both directions cancel), so both numbers are reported.

The same evaluation is the accuracy gate of ``edgekit export/validate --eval-data``
(:func:`accuracy_gate`): a file whose F1 drops more than the bound below its PyTorch model's is
``parity-failed``, with the numbers in its record's ``quality`` field.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import EdgekitError, UsageError

#: Largest allowed F1 drop (points) of an artifact below its PyTorch model, by precision.
DEFAULT_MAX_F1_DROP = {"fp32": 0.05, "fp16": 0.1}
DEFAULT_MAX_F1_DROP_QUANTIZED = 1.0  # int8-*, palettized, int4 …
#: Largest allowed accuracy drop (points) for sequence classification, by the same rule.


def default_max_drop(precision: str) -> float:
    """The gate's default bound for a precision: fp32 0.05, fp16 0.1, anything quantized 1.0 points."""
    return DEFAULT_MAX_F1_DROP.get(precision, DEFAULT_MAX_F1_DROP_QUANTIZED)


@dataclass
class Prediction:
    text: str
    start: int
    end: int


@dataclass
class EvalResult:
    """The quality of one model or artifact on one data set."""

    name: str                      # the path given
    kind: str                      # "pytorch" or the target name
    precision: str
    task: str
    data: str
    n: int                         # questions (or examples) evaluated
    metrics: dict[str, float]      # exact_match/f1 (QA) or accuracy, in percent
    seconds_per_question: float
    same_answer: float | None = None   # share of answers identical to the PyTorch reference (0..1)
    reference: str | None = None       # the PyTorch model the same-answer rate is measured against
    size_bytes: int | None = None
    status: str | None = None          # the artifact's record status, if any
    notes: list[str] = field(default_factory=list)
    predictions: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def headline(self) -> float:
        return self.metrics.get("f1", self.metrics.get("accuracy", float("nan")))

    def to_dict(self, predictions: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not predictions:
            d.pop("predictions")
        else:
            d["predictions"] = {k: (asdict(v) if isinstance(v, Prediction) else v) for k, v in self.predictions.items()}
        return d


# ---- what to evaluate --------------------------------------------------------------------------

@dataclass
class Subject:
    """A loaded model or artifact: how to call it and what it is."""

    name: str
    kind: str
    precision: str
    task: str
    source: str               # the PyTorch folder (itself, for a PyTorch model)
    tokenizer: Any
    call: Any                 # LogitsFn (QA) or ids,mask,types -> logits (classification)
    max_seq_len: int
    pad_to: int | None
    size_bytes: int | None = None
    status: str | None = None
    buckets: tuple[int, ...] | None = None  # QA on a multi-length file: pad each question to the smallest that fits


def is_model_folder(path: str | Path) -> bool:
    return (Path(path) / "config.json").is_file()


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.glob("*.safetensors")) or sum(
        p.stat().st_size for p in path.glob("*.bin"))


def pytorch_subject(folder: str, task: str, model: Any = None, tokenizer: Any = None,
                    max_seq_len: int = 384) -> Subject:
    """A PyTorch model (edgekit's export-ready modeling) from a checkpoint folder, or an already loaded one."""
    from .modeling import load_model, load_tokenizer
    from .qa import torch_logits_fn

    model = model if model is not None else load_model(folder, task)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(folder)
    size = _dir_size(Path(folder)) if Path(folder).is_dir() else None
    if task == "question-answering":
        call = torch_logits_fn(model)
    else:
        call = _torch_classifier(model)
    return Subject(folder, "pytorch", "fp32", task, folder, tokenizer, call, max_seq_len, None, size)


def _torch_classifier(model: Any) -> Any:
    import numpy as np
    import torch

    keep = "token_type_ids" in model.input_names

    def run(ids: Any, mask: Any, types: Any) -> Any:
        with torch.inference_mode():
            out = model(torch.from_numpy(ids).int(), torch.from_numpy(mask).int(),
                        torch.from_numpy(types).int() if keep else None)
        return np.asarray(out[0].float().numpy())

    return run


def _artifact_classifier(runner: Any) -> Any:
    import numpy as np

    names = tuple(getattr(runner, "input_names", ("input_ids", "attention_mask")))

    def run(ids: Any, mask: Any, types: Any) -> Any:
        feed = {"input_ids": ids.astype(np.int32), "attention_mask": mask.astype(np.int32)}
        for n in ("token_type_ids", "segment_ids"):
            if n in names:
                feed[n] = types.astype(np.int32)
        return np.asarray(runner.run(feed)["logits"])

    return run


def artifact_subject(path: Path, model_override: str | None = None, tokenizer: Any = None, record: Any = None,
                     threads: int | None = None, max_seq_len: int = 384) -> Subject:
    """An exported file in its own runtime, with the tokenizer of the model it came from."""
    from . import registry
    from .modeling import load_tokenizer
    from .qa import artifact_logits_fn
    from .record import ArtifactRecord

    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    if record is None:
        if not ArtifactRecord.sidecar_path(path).is_file():
            raise UsageError(f"{path} is neither a model folder (config.json) nor an exported file with its "
                             f"record ({path.name}.json): export it with `edgekit export`")
        record = ArtifactRecord.load(path)
    if record.status.value == "export-failed":
        raise UsageError(f"{path}: the export failed ({record.reason}); nothing to evaluate")
    source = model_override or record.source.source
    if tokenizer is None:
        if not source or not Path(source).exists() and source.startswith(("/", ".")):
            raise UsageError(f"{path}: its source model {source!r} is not on this machine; pass --model FOLDER "
                             "(the tokenizer and the PyTorch reference come from it)")
        tokenizer = load_tokenizer(source)
    conv = registry.get(record.target)
    conv.require()
    unavailable = conv.validation_unavailable(record)
    if unavailable:
        raise UsageError(f"{path} cannot run on this machine: {unavailable}")
    from .console import native_output_to_log

    with native_output_to_log():  # converters' runtimes print from native code when they load
        runner = conv.load(path, record, threads=threads)
    seq = record.seq_len
    if seq.kind == "range":
        longest, pad_to = min(max_seq_len, seq.max), None
    else:  # fixed and enumerated files take full-length inputs; pad every window to one length they accept
        fits = [v for v in seq.values if v <= max_seq_len]
        longest = max(fits) if fits else min(seq.values)
        pad_to = longest
    task = record.task.value
    buckets = None
    if task == "question-answering" and seq.kind == "enumerated" and len(fits) > 1:
        # A multi-length file is evaluated as the apps run it: each question at the smallest length that
        # holds it (QAConfig.buckets, the apps' pick_seq_len), not every window padded to the longest.
        buckets, pad_to = tuple(fits), None
    call = artifact_logits_fn(runner) if task == "question-answering" else _artifact_classifier(runner)
    return Subject(str(path), record.target, record.precision.value, task, source, tokenizer, call, longest, pad_to,
                   record.size_bytes, record.status.value, buckets)


# ---- running -----------------------------------------------------------------------------------

def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    from .console import console

    # console.file: the user's stderr even inside native_output_to_log (which sends sys.stderr to the log).
    return tqdm(total=total, desc=desc, unit="q", file=console.file, disable=not enabled, dynamic_ncols=True,
                leave=False)


def qa_config(max_seq_len: int, pad_to: int | None = None, doc_stride: int = 128, max_answer_len: int = 15,
              buckets: tuple[int, ...] | None = None) -> Any:
    """The evaluation's QA settings: windows of ``max_seq_len`` (384), stride 128, answers up to 15 tokens.

    Shorter files (e.g. 128) keep the stride below a third of the window so a question still fits.
    """
    from .qa import QAConfig

    stride = min(doc_stride, max_seq_len // 4) if max_seq_len < 3 * doc_stride else doc_stride
    return QAConfig(max_seq_len=max_seq_len, doc_stride=stride, max_answer_len=max_answer_len, pad_to=pad_to,
                    buckets=buckets)


def predict_squad(subject: Subject, questions: list[Any], progress: bool = True) -> tuple[dict[str, Prediction], float]:
    """Answer every question; returns predictions by id and the wall-clock seconds taken."""
    from .qa import QAPipeline

    pipe = QAPipeline(subject.tokenizer, subject.call, qa_config(subject.max_seq_len, subject.pad_to, buckets=subject.buckets))
    preds: dict[str, Prediction] = {}
    bar = _progress(len(questions), Path(subject.name).name, progress)
    t0 = time.perf_counter()
    try:
        for q in questions:
            best = pipe(q.question, q.context)
            a = best[0] if best else None
            preds[q.id] = Prediction(a.text, a.start, a.end) if a else Prediction("", 0, 0)
            bar.update(1)
    finally:
        bar.close()
    return preds, time.perf_counter() - t0


def read_classification(path: str | Path, n: int | None = None) -> list[dict]:
    """JSON lines ``{"text", "text_pair"?, "label"}`` (the format of ``edgekit distill task``)."""
    from .distill.task import read_records

    rows = read_records(path, n)
    for r in rows[:1]:
        if "text" not in r or "label" not in r:
            raise UsageError(f"{path}: classification records need 'text' and 'label' (and optionally 'text_pair')")
    return rows


def predict_classes(subject: Subject, rows: list[dict], labels: list[str], progress: bool = True
                    ) -> tuple[dict[str, int], float]:
    import numpy as np

    preds: dict[str, int] = {}
    bar = _progress(len(rows), Path(subject.name).name, progress)
    t0 = time.perf_counter()
    try:
        for i, r in enumerate(rows):
            enc = subject.tokenizer(r["text"], r.get("text_pair"), truncation=True, max_length=subject.max_seq_len,
                                    padding="max_length" if subject.pad_to else False, return_token_type_ids=True)
            arrays = [np.asarray([enc[k]], dtype=np.int32) for k in ("input_ids", "attention_mask", "token_type_ids")]
            logits = subject.call(*arrays)
            preds[str(i)] = int(np.asarray(logits).reshape(-1).argmax())
            bar.update(1)
    finally:
        bar.close()
    return preds, time.perf_counter() - t0


def _label_index(y: Any, labels: list[str]) -> int:
    if isinstance(y, str):
        if y not in labels:
            raise UsageError(f"label {y!r} is not one of the model's labels {labels}")
        return labels.index(y)
    return int(y)


def same_answer_rate(preds: dict[str, Any], reference: dict[str, Any]) -> float:
    """Share of ids whose prediction (answer span, or class) equals the reference's."""
    keys = [k for k in preds if k in reference]
    if not keys:
        return float("nan")

    def key(p: Any) -> Any:
        return (p.start, p.end) if isinstance(p, Prediction) else p

    return sum(key(preds[k]) == key(reference[k]) for k in keys) / len(keys)


def evaluate_subject(subject: Subject, data: str, questions: Any, progress: bool = True,
                     labels: list[str] | None = None) -> EvalResult:
    """EM/F1 (QA) or accuracy (classification) of one subject on already loaded data."""
    from . import squad
    from .console import native_output_to_log

    if subject.task == "question-answering":
        with native_output_to_log():  # runtimes (XNNPACK, ExecuTorch) print on their first call
            preds, secs = predict_squad(subject, questions, progress)
        metrics = squad.evaluate(questions, {k: p.text for k, p in preds.items()})
        metrics = {"exact_match": metrics["exact_match"], "f1": metrics["f1"]}
    elif subject.task == "sequence-classification":
        labels = labels or []
        with native_output_to_log():
            preds, secs = predict_classes(subject, questions, labels, progress)
        gold = [_label_index(r["label"], labels) for r in questions]
        metrics = {"accuracy": 100.0 * sum(preds[str(i)] == g for i, g in enumerate(gold)) / len(gold)}
    else:
        raise UsageError(f"edgekit eval scores question-answering and sequence-classification models, "
                         f"not {subject.task}")
    n = len(questions)
    return EvalResult(subject.name, subject.kind, subject.precision, subject.task, str(data), n, metrics,
                      secs / max(1, n), size_bytes=subject.size_bytes, status=subject.status, predictions=preds)


def load_data(task: str, squad_file: str | None, jsonl: str | None, n: int | None) -> tuple[str, Any]:
    from . import squad

    if task == "question-answering":
        if not squad_file:
            raise UsageError("question answering is evaluated on SQuAD v1.1 JSON: pass --squad FILE (.json or .json.xz)")
        return squad_file, squad.load_squad(squad_file, n)
    if not jsonl:
        raise UsageError("sequence classification is evaluated on JSON lines {text, text_pair?, label}: pass --jsonl FILE")
    return jsonl, read_classification(jsonl, n)


# ---- the accuracy gate ---------------------------------------------------------------------------

def accuracy_gate(path: Path, record: Any, model: Any, tokenizer: Any, eval_data: str, max_drop: float | None = None,
                  n: int | None = None, reference: EvalResult | None = None, progress: bool = True,
                  verbose: bool = True, threads: int | None = None) -> EvalResult:
    """Evaluate an exported file and its PyTorch model on the same data; fail the record on a large drop.

    Fills ``record.quality`` (metric, PyTorch and artifact scores, drop, bound, same-answer rate,
    count) and turns a ``validated`` record into ``parity-failed`` when the drop exceeds
    ``max_drop`` (default by precision: :func:`default_max_drop`). A failed or skipped record
    keeps its status. Returns the PyTorch result so a caller can reuse it for the next file.
    """
    from .console import console
    from .record import Quality, Status

    task = record.task.value
    if task not in ("question-answering", "sequence-classification"):
        raise UsageError(f"--eval-data scores question-answering and sequence-classification exports, not {task}")
    bound = default_max_drop(record.precision.value) if max_drop is None else max_drop
    data_name, data = load_data(task, eval_data if task == "question-answering" else None,
                                eval_data if task != "question-answering" else None, n)
    labels = list(getattr(model.config, "labels", ()) or ())
    if reference is None or reference.n != len(data) or reference.data != data_name:
        src = record.source.source or "pytorch"
        reference = evaluate_subject(pytorch_subject(src, task, model=model, tokenizer=tokenizer,
                                                     max_seq_len=min(384, _longest(record))),
                                     data_name, data, progress, labels)
    if record.status in (Status.EXPORT_FAILED,) or record.status == Status.VALIDATION_SKIPPED:
        record.quality = Quality(skipped=f"the file was not run ({record.status}): no accuracy gate")
        return reference
    try:
        subject = artifact_subject(path, tokenizer=tokenizer, record=record, threads=threads,
                                   max_seq_len=min(384, _longest(record)))
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
    record.quality = Quality(
        metric=metric, data=data_name, n=len(data), pytorch=round(reference.metrics[metric], 3),
        artifact=round(result.metrics[metric], 3), drop=round(drop, 3), max_drop=bound,
        same_answer=round(result.same_answer, 4), passed=drop <= bound + 1e-9,
        pytorch_metrics={k: round(v, 3) for k, v in reference.metrics.items()},
        artifact_metrics={k: round(v, 3) for k, v in result.metrics.items()},
        seconds_per_question=round(result.seconds_per_question, 4),
    )
    msg = (f"{metric.upper() if metric == 'f1' else metric} {result.metrics[metric]:.2f} vs PyTorch "
           f"{reference.metrics[metric]:.2f} (Δ {-drop:+.2f}, bound {bound}), same answer {result.same_answer:.1%}, "
           f"{len(data)} questions")
    if drop > bound + 1e-9:
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


def _torch_threads(threads: int) -> None:
    """PyTorch's threads for the evaluation (the reference model); the files' runtimes get ``threads`` at load."""
    import torch

    torch.set_num_threads(threads)


def _longest(record: Any) -> int:
    return record.seq_len.max


# ---- command line ------------------------------------------------------------------------------

def _infer_subject_task(path: str) -> str:
    from .record import ArtifactRecord
    from .tasks import infer_task

    if is_model_folder(path):
        return infer_task(path)
    try:
        return ArtifactRecord.load(Path(path)).task.value
    except FileNotFoundError:
        raise UsageError(f"{path} is neither a model folder (config.json) nor an exported file with its record "
                         f"({Path(path).name}.json)") from None


def run_eval(paths: list[str], squad_file: str | None = None, jsonl: str | None = None, n: int | None = None,
             model: str | None = None, threads: int | None = None, progress: bool = True) -> list[EvalResult]:
    """Evaluate each path; every artifact's PyTorch source is evaluated too (once) as its reference."""
    from .console import console
    from .modeling import load_model

    if threads:
        _torch_threads(threads)  # the PyTorch reference too: oversubscribed threads on a busy host cost 10x
    tasks = {_infer_subject_task(p) for p in paths}
    if len(tasks) != 1:
        raise UsageError(f"the models given do different tasks ({', '.join(sorted(tasks))}): evaluate them separately")
    task = tasks.pop()
    data_name, data = load_data(task, squad_file, jsonl, n)
    console.print(f"{len(data)} {'questions' if task == 'question-answering' else 'examples'} from {data_name}")

    results: dict[str, EvalResult] = {}
    order: list[str] = []
    loaded: dict[str, Any] = {}

    def pytorch(folder: str) -> EvalResult:
        key = str(Path(folder).resolve()) if Path(folder).exists() else folder
        if key not in results:
            m = load_model(folder, task)
            s = pytorch_subject(folder, task, model=m)
            loaded[key] = s.tokenizer
            results[key] = evaluate_subject(s, data_name, data, progress, list(m.config.labels))
            results[key].same_answer, results[key].reference = 1.0, folder
            order.append(key)
            _say(results[key])
        return results[key]

    for p in paths:
        if is_model_folder(p):
            pytorch(p)
            continue
        from .record import ArtifactRecord

        rec = ArtifactRecord.load(Path(p))
        source = model or rec.source.source
        ref = None
        if source and Path(source).exists():
            ref = pytorch(source)
        s = artifact_subject(Path(p), model_override=source or None, record=rec, threads=threads,
                             tokenizer=loaded.get(str(Path(source).resolve())) if source else None)
        labels = list(rec.source.labels)
        r = evaluate_subject(s, data_name, data, progress, labels)
        if ref is not None:
            r.same_answer, r.reference = same_answer_rate(r.predictions, ref.predictions), source
        else:
            r.notes.append(f"no PyTorch reference: the source model {source!r} is not on this machine (--model)")
        key = str(Path(p).resolve())
        results[key] = r
        order.append(key)
        _say(r)
    return [results[k] for k in order]


def _say(r: EvalResult) -> None:
    from .console import console

    m = ", ".join(f"{k} {v:.2f}" for k, v in r.metrics.items())
    console.print(f"{Path(r.name).name}: {m}, {r.seconds_per_question * 1000:.0f} ms/question")


def to_markdown(results: list[EvalResult]) -> str:
    """One table: what, runtime, precision, metrics, Δ against the PyTorch reference, same-answer rate, speed."""
    if not results:
        return ""
    qa = results[0].task == "question-answering"
    ref = {r.name: r for r in results if r.kind == "pytorch"}
    head = ["model", "runtime", "precision", "n"] + (["EM", "F1", "ΔF1"] if qa else ["accuracy", "Δ"]) + [
        "same answer" if qa else "same class", "s/question", "size MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        metric = "f1" if qa else "accuracy"
        base = None
        if r.reference:
            for name, pr in ref.items():
                if Path(name).resolve() == Path(r.reference).resolve():
                    base = pr
        delta = f"{r.metrics[metric] - base.metrics[metric]:+.2f}" if base is not None else "—"
        vals = [f"{r.metrics['exact_match']:.2f}", f"{r.metrics['f1']:.2f}"] if qa else [f"{r.metrics['accuracy']:.2f}"]
        same = f"{r.same_answer:.1%}" if r.same_answer is not None else "—"
        size = f"{r.size_bytes / 1e6:.1f}" if r.size_bytes else "—"
        lines.append("| " + " | ".join([Path(r.name).name, r.kind, r.precision, str(r.n), *vals, delta, same,
                                         f"{r.seconds_per_question:.3f}", size]) + " |")
    return "\n".join(lines) + "\n"


def add_parser(subparsers: Any) -> None:
    """Register ``eval`` on the top-level ``edgekit`` sub-parsers."""
    p = subparsers.add_parser(
        "eval", help="EM/F1 (SQuAD) or accuracy of a PyTorch model and its exported files, each in its own runtime",
        description="Answer every question of a SQuAD v1.1 file with each model (edgekit's QA pipeline: windows of "
                    "384, stride 128, answers up to 15 tokens) and score it by the official v1.1 rules. Exported "
                    "files run in their own runtime and are compared with the PyTorch model they came from "
                    "(same-answer rate). Sequence classification: accuracy on JSON lines.")
    p.add_argument("models", nargs="+", metavar="MODEL_OR_ARTIFACT",
                   help="PyTorch model folders and/or exported files (with their .json records)")
    p.add_argument("--squad", help="SQuAD v1.1 JSON (.json or .json.xz) for question answering")
    p.add_argument("--jsonl", help="JSON lines {text, text_pair?, label} for sequence classification")
    p.add_argument("--n", type=int, default=None, help="evaluate the first N questions only (default: all)")
    p.add_argument("--model", help="the PyTorch source of the exported files (default: the one in their records)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for PyTorch and the artifacts' runtimes (default: the runtimes' own default)")
    p.add_argument("--json", dest="json_out", help="also write the results (and every prediction) to this JSON file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    from .cli import _add_verbose

    _add_verbose(p)
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from .cli import _quiet_backends

    # Library chatter off the console (into the --json file's folder's edgekit.log when there is one).
    _quiet_backends(Path(args.json_out).parent if args.json_out else None)
    if args.n is not None and args.n < 1:
        raise UsageError("--n must be at least 1")
    results = run_eval(args.models, args.squad, args.jsonl, args.n, args.model, args.threads,
                       progress=not args.no_progress)
    print(to_markdown(results), end="")
    if args.json_out:
        from .record import atomic_write_text

        atomic_write_text(Path(args.json_out), json.dumps(
            {"results": [r.to_dict(predictions=True) for r in results]}, indent=1, ensure_ascii=False) + "\n")
    return 0


# ---- the gate's flags on `edgekit export` and `edgekit validate` ----------------------------------

def add_gate_args(p: argparse.ArgumentParser) -> None:
    """``--eval-data FILE [--max-f1-drop X] [--eval-n N]`` on export/validate."""
    g = p.add_argument_group("accuracy gate (task quality on real data, PyTorch vs the file on the same questions)")
    g.add_argument("--eval-data", help="SQuAD v1.1 JSON (.json/.json.xz) for question answering, or JSON lines "
                                       "{text, text_pair?, label} for sequence classification")
    g.add_argument("--max-f1-drop", type=float, default=None,
                   help="largest allowed drop in F1 (accuracy) points below PyTorch "
                        "(default: fp32 0.05, fp16 0.1, int8/palettized 1.0)")
    g.add_argument("--eval-n", type=int, default=None, help="gate on the first N questions only (default: all)")


def check_gate_args(args: argparse.Namespace) -> None:
    """Fail before any export when the gate's data cannot be read."""
    data = getattr(args, "eval_data", None)
    if data is None:
        if getattr(args, "max_f1_drop", None) is not None or getattr(args, "eval_n", None) is not None:
            raise UsageError("--max-f1-drop and --eval-n need --eval-data FILE")
        return
    if not Path(data).is_file():
        raise UsageError(f"--eval-data {data} does not exist")
    if args.eval_n is not None and args.eval_n < 1:
        raise UsageError("--eval-n must be at least 1")
    if args.max_f1_drop is not None and args.max_f1_drop < 0:
        raise UsageError("--max-f1-drop must be >= 0")


def gate_from_args(args: argparse.Namespace, path: Path, record: Any, model: Any, tokenizer: Any,
                   reference: EvalResult | None = None) -> EvalResult | None:
    """Run :func:`accuracy_gate` when ``--eval-data`` was given and save the record; returns the PyTorch result."""
    data = getattr(args, "eval_data", None)
    if data is None:
        return reference
    if tokenizer is None:
        raise UsageError("the accuracy gate needs the model's tokenizer (none was found next to the model)")
    threads = getattr(args, "threads", None)
    if threads:
        _torch_threads(threads)
    reference = accuracy_gate(Path(path), record, model, tokenizer, data, args.max_f1_drop, args.eval_n,
                              reference=reference, threads=threads)
    record.save(Path(path))
    return reference


def gate_hook(args: argparse.Namespace) -> Callable[[Path, Any, Any, Any], None] | None:
    """The accuracy gate as ``pipeline.run``'s ``after_export`` hook (None without ``--eval-data``).

    The PyTorch model's result is computed once and shared by every file of the run.
    """
    if getattr(args, "eval_data", None) is None:
        return None
    state: dict[str, EvalResult | None] = {"reference": None}

    def hook(path: Path, record: Any, model: Any, tokenizer: Any) -> None:
        state["reference"] = gate_from_args(args, path, record, model, tokenizer, state["reference"])

    return hook
