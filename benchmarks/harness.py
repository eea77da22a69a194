"""What every benchmark script shares: flags, the work folder, random checkpoints, exports through the
pipeline, host and load, and the results writer.

A script keeps its cases and its rendering; everything else is here:

* ``parser``: the shared flags (``--work``, ``--threads``, ``--only``, ``--resume``, ``--out``,
  ``--render-only``, ``--note``, ``--size``), each added only where the script uses it;
* ``workdir``: ``--work`` when given (kept, and reused by the next run), else a temporary folder;
* ``build_checkpoint``: a seeded random BERT / DistilBERT checkpoint with a tokenizer, by arch, task
  and size (nothing is downloaded);
* ``export`` / ``export_many``: files made by edgekit's pipeline (``edgekit.build.plan.plan`` then
  ``run``: the path ``edgekit export`` takes), optionally reusing a validated file already in the folder;
* ``stamp``: the command line, host, load average and date a result came from;
* ``Results``: ``STEM.json`` and the ``STEM.md`` rendered from it, written atomically (optionally under a
  lock, for files several runs fill), and ``render_only`` to rewrite the Markdown from the json alone.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import string
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"

# ---- flags ------------------------------------------------------------------------------------------

_OFF = object()


def parser(doc: str, *, work: Any = _OFF, threads: Any = _OFF, only: Any = _OFF, out: Any = _OFF,
           out_help: str = "where the results go", resume: bool = False, render_only: bool = False,
           note: bool = False, size: bool = False, full_doc: bool = False) -> argparse.ArgumentParser:
    """An argument parser with the shared flags the script asks for (a flag's value is its default;
    ``only``: what the names name). ``full_doc``: the whole docstring as the description."""
    p = argparse.ArgumentParser(description=doc if full_doc else doc.strip().split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    if work is not _OFF:
        where = "a temporary folder, removed afterwards" if work is None else str(work)
        p.add_argument("--work", type=Path, default=None if work is None else Path(work),
                       help=f"where checkpoints, exported files and caches go, kept and reused by the next run "
                            f"(default: {where})")
    if threads is not _OFF:
        p.add_argument("--threads", type=int, default=threads, help="threads for PyTorch and every runtime "
                       f"(default: {threads if threads is not None else 'as PyTorch chooses'})")
    if only is not _OFF:
        p.add_argument("--only", default=None, help=f"comma-separated {only}: run only those (default: all)")
    if resume:
        p.add_argument("--resume", action="store_true", help="skip what the results file already has")
    if size:
        p.add_argument("--size", choices=list(SIZES), default="base",
                       help="checkpoint size: base (the committed results) or tiny (a quick smoke run)")
    if note:
        p.add_argument("--note", action="append", default=[], help="a line for the results file (repeatable)")
    if out is not _OFF:
        p.add_argument("--out", type=Path, default=out, help=f"{out_help} (default: {_shown(out)})")
    if render_only:
        p.add_argument("--render-only", action="store_true",
                       help="re-render the Markdown from the results json; measure nothing")
    return p


#: The real data and QA model beside the repository (absent in a user's fresh clone).
SHARED = ROOT.parent / "shared"
SHARED_QA_MODEL = SHARED / "models" / "minilm-l6-squad"
SHARED_DEV = SHARED / "data" / "squad-v1.1" / "dev-even-articles.json.xz"


def shared_qa(p: argparse.ArgumentParser, n: int) -> argparse.ArgumentParser:
    """``--model``/``--dev``/``--n``: the shared SQuAD model and dev questions (the first ``n``)."""
    p.add_argument("--model", default=str(SHARED_QA_MODEL), help="QA model folder (default: the shared one)")
    p.add_argument("--dev", default=str(SHARED_DEV), help="SQuAD v1.1 dev file (default: the shared one)")
    p.add_argument("--n", type=int, default=n, help=f"questions (default {n})")
    return p


def ints(p: argparse.ArgumentParser, **defaults: int) -> argparse.ArgumentParser:
    """A script's integer knobs: ``ints(p, seq=128, batch_size=8)`` adds ``--seq`` and ``--batch-size``."""
    for name, default in defaults.items():
        p.add_argument("--" + name.replace("_", "-"), type=int, default=default, help=f"(default {default})")
    return p


def names(spec: str | None) -> set[str] | None:
    """``--only a,b`` -> {"a", "b"}; not given -> None (everything)."""
    return {s.strip() for s in spec.split(",") if s.strip()} if spec else None


def _shown(path: Any) -> str:
    p = Path(path)
    return os.path.relpath(p, ROOT) if p.is_absolute() and p.is_relative_to(ROOT) else str(p)


@contextlib.contextmanager
def workdir(work: Path | None, prefix: str) -> Iterator[Path]:
    """``work`` (created, kept) or a temporary folder removed afterwards."""
    if work is not None:
        Path(work).mkdir(parents=True, exist_ok=True)
        yield Path(work)
        return
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- host, load, command line -----------------------------------------------------------------------

def load() -> list[float]:
    """The 1/5/15-minute load averages ([] where the platform has none)."""
    from edgekit.measure.bench import load_average

    return load_average() or []


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def host() -> dict[str, Any]:
    from edgekit.measure.bench import cpu_name

    return {"cpu": cpu_name(), "cores": cores(), "platform": platform.platform(),
            "python": platform.python_version()}


def date() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def command(script: str | Path, argv: list[str] | None = None, hide: tuple[str, ...] = ()) -> str:
    """The command line as a reader would type it again, ``nice -n N`` when this process was niced;
    options in ``hide`` (and their values) left out (e.g. ``--note``, printed elsewhere)."""
    args = list(sys.argv[1:] if argv is None else argv)
    shown, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in hide:
            skip = True
        elif not any(a.startswith(h + "=") for h in hide):
            shown.append(a)
    niceness = os.nice(0)
    return ((f"nice -n {niceness} " if niceness > 0 else "") + ".venv/bin/python "
            + shlex.join([_shown(Path(script).resolve()), *shown]))


def stamp(script: str | Path, argv: list[str] | None = None, hide: tuple[str, ...] = ()) -> dict[str, Any]:
    """Where a result came from: command line, date, host, load average now."""
    return {"command": command(script, argv, hide), "date": date(), "host": host(), "load_average": load()}


# ---- the results writer -----------------------------------------------------------------------------

class Results:
    """A benchmark's results: ``STEM.json`` (the data) and, with ``render``, ``STEM.md`` rendered from it.

    Both are written atomically (``edgekit.core.record.atomic_write_text``); ``update`` re-reads and
    rewrites the json under an exclusive lock, for files that several runs fill at once.
    """

    def __init__(self, stem: Path, render: Callable[[dict[str, Any]], str] | None = None, *, indent: int = 2,
                 default: Callable[[Any], Any] | None = None,
                 also: dict[str, Callable[[dict[str, Any]], str]] | None = None, lock: Path | None = None) -> None:
        """``render``: the md from the json's data; ``also``: more files rendered from it, by suffix
        (``{".html": ...}``); ``lock``: the lock file of ``update`` (default: one in the temp folder)."""
        self.stem = Path(stem).with_suffix("") if Path(stem).suffix in (".json", ".md") else Path(stem)
        self.renders = {**({".md": render} if render else {}), **(also or {})}
        self.indent, self.default = indent, default
        self.lock = lock or Path(tempfile.gettempdir()) / f"edgekit-{self.stem.name}.lock"

    @property
    def json(self) -> Path:
        return self.stem.with_name(self.stem.name + ".json")

    @property
    def md(self) -> Path:
        return self.stem.with_name(self.stem.name + ".md")

    def load(self) -> dict[str, Any]:
        return json.loads(self.json.read_text(encoding="utf-8")) if self.json.is_file() else {}

    def write(self, payload: dict[str, Any], stamp: dict[str, Any] | None = None) -> None:
        """The json (``stamp``'s keys added where the payload has none of its own), then the md."""
        from edgekit.core.record import atomic_write_text

        for k, v in (stamp or {}).items():
            payload.setdefault(k, v)
        text = json.dumps(payload, indent=self.indent, default=self.default) + "\n"
        atomic_write_text(self.json, text)
        self.write_md(json.loads(text))  # rendered from what the json holds, as --render-only does

    def write_md(self, data: dict[str, Any]) -> None:
        """Every rendered file (the md, and ``also``'s) from the json's data."""
        from edgekit.core.record import atomic_write_text

        for suffix, render in self.renders.items():
            atomic_write_text(self.stem.with_name(self.stem.name + suffix), render(data))

    def render_only(self) -> int:
        """Rewrite the Markdown from the json as it is (nothing is measured), under ``update``'s lock."""
        if not self.json.is_file():
            print(f"{self.json} does not exist: nothing to render", file=sys.stderr)
            return 2
        with self._locked():
            self.write_md(self.load())
        for suffix in self.renders:
            print(f"rendered {_shown(self.stem.with_name(self.stem.name + suffix))} from {_shown(self.json)}")
        return 0

    @contextlib.contextmanager
    def update(self) -> Iterator[dict[str, Any]]:
        """Load, let the caller change, write: under an exclusive lock, since other runs may write too."""
        with self._locked():
            data = self.load()
            yield data
            self.write(data)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl

        self.lock.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield


# ---- random checkpoints -----------------------------------------------------------------------------

#: Model shapes by size, in DistilBERT's config names. ``base`` is DistilBERT-base (the committed
#: results); ``tiny`` keeps the 30522-token vocabulary (either tokenizer fits) and shrinks the rest.
SIZES: dict[str, dict[str, int]] = {
    "base": {"vocab_size": 30522, "dim": 768, "n_layers": 6, "n_heads": 12, "hidden_dim": 3072},
    "tiny": {"vocab_size": 30522, "dim": 64, "n_layers": 2, "n_heads": 2, "hidden_dim": 128},
}
HEADS = {"question-answering": "ForQuestionAnswering", "sequence-classification": "ForSequenceClassification",
         "feature-extraction": "Model", "masked-lm": "ForMaskedLM"}
LABELS = {0: "NEGATIVE", 1: "POSITIVE"}
_WORDS = ("the a an of to in and is was for on with as by at from it this that be are or not which where "
          "when what who how tower paris river city world fair built flows through channel english seine "
          "quick brown fox jumps over lazy dog best worst times age wisdom edgekit exports models phones "
          "checks every file short mixed text").split()
_MINILM_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def shape(size: str = "base", layers: int | None = None) -> dict[str, int]:
    """The shape of ``size`` (``layers``: another layer count)."""
    return {**SIZES[size], **({"n_layers": layers} if layers else {})}


def size_of(dims: dict[str, int]) -> str:
    """The name of a shape in ``SIZES`` ("custom" when it is none of them)."""
    return next((name for name, d in SIZES.items() if {k: dims.get(k) for k in d} == d), "custom")


def write_vocab(folder: Path, size: int) -> dict[str, int]:
    """A WordPiece vocabulary of exactly ``size`` entries: specials, characters, words, fillers."""
    specials = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = list(dict.fromkeys(specials + chars + ["##" + c for c in chars] + _WORDS))
    vocab += [f"tok{i}" for i in range(size - len(vocab))]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return {w: i for i, w in enumerate(vocab)}


def build_checkpoint(folder: Path, task: str, *, arch: str = "distilbert", size: str = "base",
                     layers: int | None = None, seed: int = 0, tokenizer: str = "words",
                     perturb: bool = False) -> Path:
    """Save a seeded random ``arch`` (distilbert, bert) checkpoint for ``task`` with a tokenizer; reuse
    one already in ``folder``. ``tokenizer``: ``words`` (a written 30522-entry WordPiece vocabulary) or
    ``minilm`` (the uncased one of the offline all-MiniLM-L6-v2 package: the same size, real words).
    ``perturb``: move LayerNorms and biases off their identity/zero init, as a trained model's are.
    Sequence classifiers get the labels NEGATIVE/POSITIVE."""
    import torch
    import transformers

    folder = Path(folder)
    if (folder / "config.json").is_file() and any((folder / n).is_file() for n in
                                                   ("model.safetensors", "pytorch_model.bin")):
        return folder
    dims = shape(size, layers)
    folder.mkdir(parents=True, exist_ok=True)
    if tokenizer == "words":
        vocab = write_vocab(folder, dims["vocab_size"])
        transformers.BertTokenizerFast(vocab=vocab, do_lower_case=True).save_pretrained(folder)
    elif tokenizer == "minilm":
        from edgekit.model.modeling import embedded_model_path

        src = embedded_model_path("a benchmark checkpoint's tokenizer")
        for name in _MINILM_FILES:
            if (src / name).is_file():
                shutil.copy2(src / name, folder / name)
    else:
        raise ValueError(f"tokenizer {tokenizer!r}: words or minilm")
    labels = ({"id2label": LABELS, "label2id": {v: k for k, v in LABELS.items()}}
              if task == "sequence-classification" else {})
    if arch == "distilbert":
        cfg = transformers.DistilBertConfig(**dims, max_position_embeddings=512, **labels)
        cls = "DistilBert" + HEADS[task]
    elif arch == "bert":
        cfg = transformers.BertConfig(vocab_size=dims["vocab_size"], hidden_size=dims["dim"],
                                      num_hidden_layers=dims["n_layers"], num_attention_heads=dims["n_heads"],
                                      intermediate_size=dims["hidden_dim"], **labels)
        cls = "Bert" + HEADS[task]
    else:
        raise ValueError(f"arch {arch!r}: distilbert or bert")
    torch.manual_seed(seed)
    model = getattr(transformers, cls)(cfg)
    if perturb:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "LayerNorm" in name or "layer_norm" in name or name.endswith("bias"):
                    p.add_(torch.randn_like(p) * 0.05)
    model.eval().save_pretrained(folder)
    return folder


# ---- exports through the pipeline -------------------------------------------------------------------

def plan_one(target: str, precision: str, seq: str | int, task: Any, *, flags: dict[str, Any] | None = None,
             calibration: Path | None = None, n_inputs: int = 2) -> Any:
    """One planned (and checked) job: ``edgekit.build.plan.plan`` for one target, precision and length,
    for a model with ``n_inputs`` inputs. A combination the target cannot export raises ``UsageError``."""
    from edgekit.build import plan as pipeline
    from edgekit.core.config import SeqLen

    (job,) = pipeline.plan(target, precision, [SeqLen.parse(str(seq))], task, flags=flags or {},
                           calibration=calibration, n_inputs=n_inputs)
    return job


def export_many(model_dir: Path, task: str, out: Path, *, targets: str | list[str] | None = None,
                precisions: str | list[str] | None = None, seqs: list[str | int] | None = None,
                skip: str | None = None, flags: dict[str, Any] | None = None, calibration: Path | None = None,
                gate: Callable[..., None] | None = None, verbose: bool = True) -> Any:
    """Plan and run the pipeline (``edgekit export``'s path: load once, export, validate, record) on a
    model folder; returns its ``RunResult`` (records, skipped jobs, the loaded model)."""
    from edgekit.build import plan as pipeline
    from edgekit.core.config import SeqLen

    jobs = pipeline.plan(targets, precisions, [SeqLen.parse(str(s)) for s in seqs] if seqs else None, task,
                         flags=flags or {}, calibration=calibration, skip=skip)
    return pipeline.run(jobs, str(model_dir), task, Path(out), gate=gate, verbose=verbose)


def export(model_dir: Path, target: str, precision: str, out: Path, *, seq: str | int, task: str,
           flags: dict[str, Any] | None = None, calibration: Path | None = None,
           gate: Callable[..., None] | None = None, reuse: bool = False, verbose: bool = False) -> tuple[Path, Any, Any]:
    """One file through the pipeline: ``(path, record, loaded model)``. ``reuse``: a validated file of
    the same model, target, precision, length and flags already in ``out`` is returned as it is (model
    None) instead of exported again."""
    if reuse:
        found = reusable(model_dir, out, target, precision, seq, task, flags or {})
        if found is not None:
            return Path(out) / found.artifact, found, None
    result = export_many(model_dir, task, out, targets=target, precisions=precision, seqs=[seq], flags=flags,
                         calibration=calibration, gate=gate, verbose=verbose)
    if not result.records:
        raise SystemExit(f"{target} {precision}: not exported: {'; '.join(j.skipped or '' for j in result.skipped)}")
    record = result.records[0]
    return Path(out) / record.artifact, record, next(iter(result.models.values()), None)


def reusable(model_dir: Path, out: Path, target: str, precision: str, seq: str | int, task: str,
             flags: dict[str, Any]) -> Any:
    """The record of a validated file in ``out`` made from ``model_dir`` with these settings, still
    bound to its file; None when there is none."""
    from edgekit.check.integrity import file_problems
    from edgekit.core.record import Status
    from edgekit.measure.tables import collect

    if not Path(out).is_dir():
        return None
    for r in collect(Path(out)):
        if (r.target, r.precision.value, str(r.seq_len), r.task.value) != (target, precision, str(seq), task):
            continue
        if r.status != Status.VALIDATED or any(r.options.get(k) != v for k, v in flags.items()):
            continue
        if Path(r.source.source).resolve() != Path(model_dir).resolve():
            continue
        if not file_problems(Path(out) / r.artifact, r):
            return r
    return None
