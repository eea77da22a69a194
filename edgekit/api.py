"""The public API: the functions a Python user needs. The command line is a thin layer over these.

    import edgekit
    records = edgekit.export("path/to/model", target="onnx,ort", precision="int8", out="out/")
    model = edgekit.load("out/" + records[0].artifact)   # the file in its own runtime, callable on text
    model("Where is the tower?", "The tower is in Paris.")  # QA: answers; embeddings: vectors
    edgekit.validate("out/" + records[0].artifact)        # integrity + parity again (what `edgekit validate` runs)
    edgekit.bench("out/" + records[0].artifact)           # latency beside eager PyTorch (what `edgekit bench FILE` runs)
    print(edgekit.report("out/"))                         # the table of every record in the folder

Every call goes through the same stages as the command line (plan -> export/validate -> record ->
report); library logs go to ``OUT/edgekit.log``, never to the console.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from edgekit.core.errors import UsageError


def _quiet(folder: Path | None) -> None:
    from edgekit.core.console import quiet_backends

    quiet_backends(folder)


def export(model: str | Path, target: str, precision: str = "fp32", out: str | Path = "edgekit-out",
           seq_len: str | int | None = None, task: str | None = None, validate: bool = True,
           calibration: str | Path | None = None, eval_data: str | Path | None = None,
           max_f1_drop: float | None = None, tolerance: dict[str, float] | None = None,
           token_types: str = "auto", arm64: Sequence[str] | None = None, jobs: int | str = 1,
           **flags: Any) -> list[Any]:
    """Export a Hugging Face model folder; return the saved ``ArtifactRecord`` of every file written.

    ``target``/``precision``: names, comma lists (``"onnx,ort"``) or ``"all"``. ``seq_len``: ``128``,
    ``"128,256,384"`` or ``"16:512"`` (default: each target's own). ``eval_data``: run the accuracy
    gate on real data (SQuAD v1.1 JSON / JSON lines). ``tolerance``: bound overrides
    (``{"min_cosine": 0.999}``). ``arm64``: QEMU CPU models (``("neoverse-n1", "max")``) to check each
    file on in its aarch64 runtime too (``make arm64-env``). ``flags``: the targets' own options (``ane=True``,
    ``deployment_target="iOS18"``, ``metadata=False`` ...). ``jobs``: processes exporting side by side
    (``"auto"``: the free cores; one with ``eval_data``). ``record.status`` says how each file went.
    """
    from edgekit.build import plan as planner
    from edgekit.core.config import SeqLen
    from edgekit.core.tasks import infer_task
    from edgekit.model.preflight import check_out

    task = task or infer_task(str(model))
    seqs = [SeqLen.parse(seq_len)] if seq_len is not None else None  # None: the target's default
    gate = None
    if eval_data is not None:
        from edgekit.quality.gate import Gate, GateOptions

        options = GateOptions(Path(eval_data), max_f1_drop)
        options.check(task)
        gate = Gate(options)
    planned = planner.plan(target, precision, seqs, task, token_types=token_types, flags=flags,
                           calibration=Path(calibration) if calibration else None)
    if planned and all(j.skipped for j in planned):
        raise UsageError("nothing to export: " + "; ".join(f"{j.label}: {j.skipped}" for j in planned))
    check_out(Path(out))
    _quiet(Path(out))
    result = planner.run(planned, str(model), task, Path(out), token_types=token_types, tolerance=tolerance,
                         validate=validate, gate=gate, verbose=False, arm64=tuple(arm64) if arm64 else None,
                         workers=jobs)
    return list(result.records)


def validate(artifact: str | Path, model: str | Path | None = None, *, tolerance: dict[str, float] | None = None,
             rebind: bool = False, eval_data: str | Path | None = None, max_f1_drop: float | None = None,
             arm64: Sequence[str] | None = None) -> Any:
    """Check an exported file again: integrity of file vs record, parity against its source model
    (or ``model``), optionally the accuracy gate; save and return the record. The same function as
    ``edgekit validate`` (``edgekit.build.validate.validate``): it refuses what the CLI refuses."""
    from edgekit.build.validate import validate as validate_file

    gate = None
    if eval_data is not None:
        from edgekit.core.record import ArtifactRecord
        from edgekit.quality.gate import Gate, GateOptions

        options = GateOptions(Path(eval_data), max_f1_drop)
        if ArtifactRecord.sidecar_path(Path(artifact)).is_file():
            options.check(ArtifactRecord.load(Path(artifact)).task)
        gate = Gate(options)
    _quiet(Path(artifact).parent)
    return validate_file(artifact, model, tolerance=tolerance, rebind=rebind, gate=gate, verbose=False,
                         arm64=tuple(arm64) if arm64 else None)


def bench(artifacts: str | Path | Sequence[str | Path], *, threads: int | None = None, runs: int = 20,
          warmup: int = 3, pin: bool = False) -> list[Any]:
    """Time exported files again in their own runtimes, each beside the eager PyTorch baseline of its
    source; append the measurement to each file's record and return the records. The function
    ``edgekit bench FILE...`` runs: a file whose record does not match its bytes (name, size, sha256,
    precision) is refused before anything is timed (``IntegrityError``); a file that cannot be timed
    here says why in its measurement. ``threads``: default the cores not busy with other work."""
    from edgekit.build.install import recover
    from edgekit.check import integrity
    from edgekit.core.record import ArtifactRecord
    from edgekit.measure.bench import bench_records, check_settings

    paths = [Path(artifacts)] if isinstance(artifacts, (str, Path)) else [Path(a) for a in artifacts]
    if not paths:
        raise UsageError("no files to time")
    check_settings(threads, runs, warmup)
    for p in paths:
        if not p.exists():
            raise UsageError(f"{p} does not exist")
    for p in paths:  # time only files that are what their records say (bench_records re-checks when it saves)
        recover(p.parent)
        integrity.check(p, ArtifactRecord.load(p), what="nothing was timed")
    _quiet(paths[0].parent)
    return bench_records(paths, threads, runs, warmup, pin=pin)


def report(folder: str | Path, fmt: str = "md") -> str:
    """The report of every record in ``folder`` as Markdown (``md``), ``json`` or ``html`` text."""
    from edgekit.measure.render import report as render_folder

    if not Path(folder).is_dir():
        raise UsageError(f"{folder} is not a folder of exported artifacts")
    return render_folder(folder, fmt)


def shrink(model: str | Path, task: str, data: str | Path, eval_data: str | Path, target: str,
           out: str | Path, *, layers: int | str | list[int] | None = None, budget_minutes: float | None = None,
           steps: int | None = None, max_f1_drop: float = 2.0, precision: str = "all", seq_len: str | None = None,
           bundle: str | None = None,
           resume: str | None = None, threads: int | None = None, passes: int = 3, timed_n: int = 100,
           eval_n: int | None = None, eval_max: int | None = None, heldout_n: int | None = None, progress: bool = True,
           training: dict[str, Any] | None = None, arm64: tuple[str, ...] | list[str] | None = None,
           general_data: str | Path | None = None, general_steps: int | None = None,
           command: str | None = None) -> Any:
    """From a fine-tuned teacher to the file to ship: the function ``edgekit shrink`` runs.

    Chooses the student's layer map and checkpoint on a held-out slice of ``data`` (never on
    ``eval_data``), distils it (``steps`` or ``budget_minutes``; ``resume="auto"`` continues a run in
    ``out``), exports teacher and student to ``target`` at every precision (``precision``: a comma
    list or ``"all"``), validates and gates each file, times each on real ``eval_data`` questions in
    its own process (``passes``), and returns the ``ShrinkReport`` written to OUT/report.md|json|html:
    every candidate with F1 (accuracy), ΔF1 vs the teacher and its 95% interval, same-answer rate, MB,
    ms per question, speed-up, and ``report.chosen``: the fastest file whose interval lies within
    ``max_f1_drop``; a file left undecided by its interval (on the first ``eval_n`` questions) that would
    be faster than that one is scored on twice the questions, round by round, up to ``eval_max`` (default:
    all of ``eval_data``). ``seq_len``: the candidates' length buckets (QA, ending at 384, e.g.
    ``"64,128,192,256,320,384"``; default ``128,256,384``); changed with ``resume="auto"`` the files are
    exported and timed again from the kept student. ``bundle="android"``/``"ios"`` bundles that file.
    ``heldout_n``: the rows of ``data`` held out to choose the layer map and the checkpoint (default
    ``shrinker.run.DEFAULT_HELDOUT``, 1,000; at most a fifth of it); the end of the schedule is kept
    unless an earlier checkpoint beats it there by its paired 95% interval. ``arm64``: QEMU CPU models
    (``("neoverse-n1", "max")``) on which every file's parity is also checked in its aarch64 runtime
    (``make arm64-env``); a file that fails there is parity-failed and never chosen. ``training``:
    TaskConfig fields (``batch_size``, ``lr``, ``max_len`` …). ``general_data``: unlabelled text (one
    sentence per line) on which the chosen cut first learns the teacher's final hidden states for
    ``general_steps`` (default ``shrinker.run.DEFAULT_GENERAL_STEPS``) before its task training: the
    DistilBERT recipe's general distillation (``edgekit distill general``). ``command``: the command line the report
    shows (``edgekit shrink`` passes its own; a call from Python shows none). Every option is checked
    before any work (``UsageError``).
    """
    from edgekit.shrinker.run import ShrinkOptions, shrink_run

    # The one mapping from arguments to options: `edgekit shrink` calls this function too.
    opts = ShrinkOptions(model=str(model), task=task, data=str(data), eval_data=str(eval_data), target=target,
                         out=str(out), layers=layers, budget_minutes=budget_minutes, steps=steps,
                         max_f1_drop=max_f1_drop, precision=precision, seq_len=seq_len, bundle=bundle, resume=resume,
                         threads=threads, passes=passes, timed_n=timed_n, eval_n=eval_n, eval_max=eval_max,
                         **({} if heldout_n is None else {"heldout_n": heldout_n}),
                         progress=progress, training=dict(training or {}),
                         arm64=None if arm64 is None else tuple(arm64),
                         general_data=None if general_data is None else str(general_data), general_steps=general_steps)
    return shrink_run(opts, command=command)


@dataclass
class LoadedModel:
    """An exported file in its own runtime, callable on text for its task.

    ``model(question, context)`` -> answers (question answering); ``model(text)`` -> the embedding
    (feature extraction) or the class scores (sequence classification); ``model.runner.run(feeds)``:
    the raw runner (int32 ``[1, S]`` arrays by input name -> arrays by output name). Multi-length files
    run each call at the smallest length that holds it, as the apps do.
    """

    path: Path
    record: Any
    runner: Any
    tokenizer: Any

    @property
    def task(self) -> str:
        return self.record.task.value

    def _length_for(self, n_tokens: int) -> int:
        seq = self.record.seq_len
        if seq.kind == "range":
            lo, hi = seq.values
            return max(lo, min(hi, n_tokens))
        fits = [v for v in sorted(seq.values) if v >= n_tokens]
        return fits[0] if fits else max(seq.values)

    def feeds(self, text: str, pair: str | None = None) -> dict[str, Any]:
        """The runner's inputs for ``text`` (and ``pair``), padded to the smallest length of the file that holds them."""
        import numpy as np

        from edgekit.model.inputs import encode

        n = len(self.tokenizer(text, pair)["input_ids"]) if pair is not None else len(self.tokenizer(text)["input_ids"])
        enc = encode(self.tokenizer, text, pair, self._length_for(n))
        names = tuple(self.runner.input_names)
        feed = {"input_ids": np.asarray(enc["input_ids"], dtype=np.int32),
                "attention_mask": np.asarray(enc["attention_mask"], dtype=np.int32)}
        for name in ("token_type_ids", "segment_ids"):
            if name in names:
                feed[name] = np.asarray(enc["token_type_ids"], dtype=np.int32)
        return {k: v.reshape(1, -1) for k, v in feed.items() if k in names}

    def __call__(self, text: str, context: str | None = None, top_k: int = 1) -> Any:
        if self.task == "question-answering":
            if context is None:
                raise UsageError("a question-answering model takes (question, context)")
            from edgekit.quality.qa import QAConfig, QAPipeline, artifact_logits_fn

            g = self.record.qa_geometry
            cfg = QAConfig.from_geometry(g, top_k=top_k) if self.record.seq_len.kind != "range" else \
                QAConfig(max_seq_len=g.max_len, doc_stride=g.doc_stride, max_answer_len=g.max_answer_len, top_k=top_k)
            return QAPipeline(self.tokenizer, artifact_logits_fn(self.runner), cfg)(text, context)
        out = self.runner.run(self.feeds(text, context))
        if self.task == "feature-extraction":
            return out["embedding"][0] if "embedding" in out else out["last_hidden_state"][0].mean(axis=0)
        return out[next(iter(out))][0]

    def batch(self, texts: Sequence[str]) -> list[Any]:
        """``self(text)`` for each text."""
        return [self(t) for t in texts]


def load(artifact: str | Path, threads: int | None = None, model: str | Path | None = None) -> LoadedModel:
    """An exported file, loaded in its own runtime and callable on text (``LoadedModel``); the
    tokenizer comes from its source model (or ``model``). The file must be what its record says."""
    from edgekit.check import integrity
    from edgekit.core import registry
    from edgekit.core.record import ArtifactRecord
    from edgekit.model.modeling import load_tokenizer

    path = Path(artifact)
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    if not ArtifactRecord.sidecar_path(path).is_file():
        raise UsageError(f"{path} has no record ({path.name}.json); export it with edgekit to get one")
    record = ArtifactRecord.load(path)
    integrity.check(path, record, what="not loaded")
    conv = registry.get(record.target)
    conv.require()
    unavailable = conv.validation_unavailable(record)
    if unavailable:
        raise UsageError(f"{path} cannot run on this machine: {unavailable}")
    _quiet(None)
    from edgekit.core.console import native_output_to_log

    with native_output_to_log():
        runner = conv.load(path, record, threads=threads)
    source = str(model or record.source.source or "")
    tokenizer = load_tokenizer(source) if source else None
    return LoadedModel(path, record, runner, tokenizer)
