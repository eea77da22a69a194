"""``edgekit eval``: task quality of a PyTorch model and of its exported files, each in its own runtime.

Question answering: every question of a SQuAD v1.1 file goes through edgekit's one QA pipeline
(:class:`edgekit.quality.qa.QAPipeline`: question-first windows of the file's QA geometry: ``edgekit.core.geometry``), once per model, and is scored by the official v1.1 rules (:mod:`edgekit.quality.squad`).
Sequence classification: accuracy on JSON lines ``{"text", "text_pair"?, "label"}``.

Every exported file is compared with the PyTorch model it was exported from, on the same
questions: besides EM/F1 the table gives the *same-answer rate*, the share of questions whose
answer span is identical to PyTorch's. A quantized file can keep its F1 while changing many
answers (errors in both directions cancel), so both numbers are reported.

The same evaluation is the accuracy gate of ``edgekit export/validate --eval-data``
(:mod:`edgekit.quality.gate`): a file whose F1 drops more than the bound below its PyTorch model's is
``parity-failed``, with the numbers in its record's ``quality`` field.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit.core.errors import UsageError
from edgekit.core.geometry import DEFAULT_QA_LENGTH

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
    geometry: Any = None      # QA: the file's QAGeometry (stride, answer length); None: the one rule at max_seq_len


def is_model_folder(path: str | Path) -> bool:
    return (Path(path) / "config.json").is_file()


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.glob("*.safetensors")) or sum(
        p.stat().st_size for p in path.glob("*.bin"))


def pytorch_subject(folder: str, task: str, model: Any = None, tokenizer: Any = None,
                    max_seq_len: int = DEFAULT_QA_LENGTH, geometry: Any = None) -> Subject:
    """A PyTorch model (edgekit's export-ready modeling) from a checkpoint folder, or an already loaded one."""
    from edgekit.model.modeling import load_model, load_tokenizer
    from edgekit.quality.qa import torch_logits_fn

    model = model if model is not None else load_model(folder, task)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(folder)
    size = _dir_size(Path(folder)) if Path(folder).is_dir() else None
    if task == "question-answering":
        call = torch_logits_fn(model)
    else:
        call = _torch_classifier(model)
    return Subject(folder, "pytorch", "fp32", task, folder, tokenizer, call, max_seq_len, None, size, geometry=geometry)


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
                     threads: int | None = None, max_seq_len: int | None = None) -> Subject:
    """An exported file in its own runtime, with the tokenizer of the model it came from."""
    from edgekit.core import registry
    from edgekit.model.modeling import load_tokenizer
    from edgekit.quality.qa import artifact_logits_fn
    from edgekit.core.record import ArtifactRecord

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
    from edgekit.core.console import native_output_to_log

    with native_output_to_log():  # converters' runtimes print from native code when they load
        runner = conv.load(path, record, threads=threads)
    seq = record.seq_len
    geometry = record.qa_geometry if record.task.value == "question-answering" else None
    if max_seq_len is None:
        max_seq_len = geometry.max_len if geometry is not None else DEFAULT_QA_LENGTH
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
                   record.size_bytes, record.status.value, buckets, geometry)


# ---- running -----------------------------------------------------------------------------------

def _progress(total: int, desc: str, enabled: bool) -> Any:
    from edgekit.core.console import progress

    # Questions go by fast: a bar on a terminal, nothing in a file or a pipe (no carriage returns there).
    return progress(total, desc, unit="q", enabled=enabled, lines_every_s=None, leave=False)


def qa_config(subject: Subject) -> Any:
    """The QA settings a subject is evaluated with: its file's QA geometry (stride, longest answer),
    windows of ``max_seq_len``; a subject with no geometry takes the one rule at its length."""
    from edgekit.core.geometry import QAGeometry
    from edgekit.quality.qa import QAConfig

    g = subject.geometry
    if g is None or g.max_len != subject.max_seq_len:
        g = QAGeometry.for_lengths([subject.max_seq_len],
                                   max_answer_len=g.max_answer_len if g is not None else None)
    return QAConfig(max_seq_len=subject.max_seq_len, doc_stride=g.doc_stride, max_answer_len=g.max_answer_len,
                    pad_to=subject.pad_to, buckets=subject.buckets)


def predict_squad(subject: Subject, questions: list[Any], progress: bool = True) -> tuple[dict[str, Prediction], float]:
    """Answer every question; returns predictions by id and the wall-clock seconds taken."""
    from edgekit.quality.qa import QAPipeline

    pipe = QAPipeline(subject.tokenizer, subject.call, qa_config(subject))
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
    from edgekit.quality.data import read_records

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
    from edgekit.quality import squad
    from edgekit.core.console import native_output_to_log

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
    from edgekit.quality import squad

    if task == "question-answering":
        if not squad_file:
            raise UsageError("question answering is evaluated on SQuAD v1.1 JSON: pass --squad FILE (.json or .json.xz)")
        return squad_file, squad.load_squad(squad_file, n)
    if not jsonl:
        raise UsageError("sequence classification is evaluated on JSON lines {text, text_pair?, label}: pass --jsonl FILE")
    return jsonl, read_classification(jsonl, n)


# ---- the accuracy gate ---------------------------------------------------------------------------

def _torch_threads(threads: int) -> None:
    """PyTorch's threads for the evaluation (the reference model); the files' runtimes get ``threads`` at load."""
    import torch

    torch.set_num_threads(threads)


def _longest(record: Any) -> int:
    return record.seq_len.max


def _infer_subject_task(path: str) -> str:
    from edgekit.core.record import ArtifactRecord
    from edgekit.core.tasks import infer_task
    from edgekit.model.checkpoint import is_task_checkpoint, read_task_checkpoint

    if is_model_folder(path):
        return infer_task(path)
    if is_task_checkpoint(path):
        return read_task_checkpoint(path).task
    try:
        return ArtifactRecord.load(Path(path)).task.value
    except FileNotFoundError:
        raise UsageError(f"{path} is neither a model folder (config.json), a training checkpoint (student.safetensors "
                         f"and state.json) nor an exported file with its record ({Path(path).name}.json)") from None


def run_eval(paths: list[str], squad_file: str | None = None, jsonl: str | None = None, n: int | None = None,
             model: str | None = None, threads: int | None = None, progress: bool = True) -> list[EvalResult]:
    """Evaluate each path; every artifact's PyTorch source is evaluated too (once) as its reference.

    A path may be a PyTorch model folder, an exported file (with its record) or a task-training checkpoint
    (``OUT/checkpoints/step-N``: scored as the model its weights and its initial folder make)."""
    import tempfile

    from edgekit.model.checkpoint import is_task_checkpoint

    if any(is_task_checkpoint(p) and not is_model_folder(p) for p in paths):
        with tempfile.TemporaryDirectory(prefix="edgekit-checkpoints-") as tmp:
            return _run_eval(paths, squad_file, jsonl, n, model, threads, progress, Path(tmp))
    return _run_eval(paths, squad_file, jsonl, n, model, threads, progress, None)


def _run_eval(paths: list[str], squad_file: str | None, jsonl: str | None, n: int | None, model: str | None,
              threads: int | None, progress: bool, tmp: Path | None) -> list[EvalResult]:
    from edgekit.core.console import console
    from edgekit.model.checkpoint import checkpoint_model, is_task_checkpoint
    from edgekit.model.modeling import load_model

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
    from edgekit.core.record import ArtifactRecord

    # A PyTorch folder windows text as the files exported from it do (their records' QA geometry),
    # so the same-answer rate compares like with like; files of several geometries get one
    # PyTorch row each.
    geometries: dict[str, set] = {}
    if task == "question-answering":
        for p in paths:
            if not is_model_folder(p) and not is_task_checkpoint(p):
                rec = ArtifactRecord.load(Path(p))
                src = model or rec.source.source
                if src:
                    geometries.setdefault(str(Path(src).resolve()), set()).add(rec.qa_geometry)

    def own_geometry(folder: str) -> Any:
        found = geometries.get(str(Path(folder).resolve()), set())
        return next(iter(found)) if len(found) == 1 else None

    def pytorch(folder: str, geometry: Any = None, name: str | None = None) -> EvalResult:
        # An artifact's PyTorch reference windows text as the file does (its record's QA geometry).
        geometry = geometry if geometry is not None else own_geometry(folder)
        key = str(Path(name or folder).resolve()) if Path(name or folder).exists() else folder
        if geometry is not None:
            key += f"#{geometry.lengths}/{geometry.doc_stride}/{geometry.max_answer_len}"
        if key not in results:
            m = load_model(folder, task)
            s = pytorch_subject(folder, task, model=m, geometry=geometry,
                                max_seq_len=geometry.max_len if geometry is not None else DEFAULT_QA_LENGTH)
            loaded[key] = s.tokenizer
            results[key] = evaluate_subject(s, data_name, data, progress, list(m.config.labels))
            results[key].same_answer, results[key].reference = 1.0, name or folder
            if name:  # a training checkpoint, scored through the folder its weights make
                results[key].name = name
            order.append(key)
            _say(results[key])
        return results[key]

    for i, p in enumerate(paths):
        if is_model_folder(p):
            pytorch(p)
            continue
        if is_task_checkpoint(p):
            assert tmp is not None
            pytorch(str(checkpoint_model(p, tmp / f"checkpoint-{i}")), name=p)
            continue
        rec = ArtifactRecord.load(Path(p))
        source = model or rec.source.source
        ref = None
        if source and Path(source).exists():
            ref = pytorch(source, rec.qa_geometry if task == "question-answering" else None)
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


def _label(name: str) -> str:
    """A row's name: the file or folder name; a checkpoint (``OUT/checkpoints/step-N``) as ``OUT/step-N``,
    so the checkpoints of two runs stay apart."""
    p = Path(name)
    return f"{p.parent.parent.name}/{p.name}" if p.parent.name == "checkpoints" and p.parent.parent.name else p.name


def _say(r: EvalResult) -> None:
    from edgekit.core.console import console

    m = ", ".join(f"{k} {v:.2f}" for k, v in r.metrics.items())
    console.print(f"{_label(r.name)}: {m}, {r.seconds_per_question * 1000:.0f} ms/question")


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
        lines.append("| " + " | ".join([_label(r.name), r.kind, r.precision, str(r.n), *vals, delta, same,
                                         f"{r.seconds_per_question:.3f}", size]) + " |")
    return "\n".join(lines) + "\n"
