"""``edgekit bundle``: everything a demo app needs, in one folder.

For ``--app android`` (TFLite file on LiteRT) or ``--app ios`` (Core ML ``.mlpackage``), the folder gets:

* ``model.tflite`` / ``model.mlpackage``: the exported question-answering artifact (exported
  here, or an existing one passed with ``--artifact``), and ``export_record.json``, its record;
* ``vocab.txt``: the WordPiece vocabulary, one token a line, line number = id;
* ``golden.json``: tokenisation cases, decoder cases, model cases (ids/mask -> PyTorch outputs,
  with the tolerance from the export record) and end-to-end QA cases from ``edgekit.qa``;
* ``model_card.json`` (read by the apps) and ``MODEL_CARD.md`` (read by people).

The apps replay golden.json on the device; see android-demo/README.md and ios-demo/README.md.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ExportError, UsageError, unknown_choice

APPS = {"android": ("tflite", "model.tflite"), "ios": ("coreml", "model.mlpackage")}
RANDOM_HEAD_NOTE = (
    "The question-answering head of this model is randomly initialised (no QA-fine-tuned checkpoint "
    "is available offline): answers are arbitrary spans, but parity with Python is exact."
)


@dataclass(frozen=True)
class BundleOptions:
    app: str
    model: str
    out: Path
    precision: str = "fp32"
    seq_len: int = 256
    doc_stride: int | None = None
    max_answer_len: int = 15
    artifact: Path | None = None
    validate: bool = True

    def __post_init__(self) -> None:
        if self.app not in APPS:
            raise unknown_choice("app", self.app, APPS)
        if self.seq_len < 32:
            raise UsageError(f"--seq-len {self.seq_len} leaves no room for a question and context; use 64 or more")
        if self.doc_stride is not None and not 0 <= self.doc_stride < self.seq_len // 2:
            raise UsageError(f"--doc-stride must be in [0, {self.seq_len // 2})")
        if self.artifact is not None and not Path(self.artifact).exists():
            raise UsageError(f"--artifact {self.artifact} does not exist")

    @property
    def stride(self) -> int:
        # transformers' rule for its QA pipeline was min(max_seq_len // 2, 128); a quarter keeps
        # windows mostly new text at the short lengths phones use.
        return self.doc_stride if self.doc_stride is not None else min(self.seq_len // 4, 128)


def check_tokenizer(tokenizer: Any) -> dict[str, Any]:
    """The apps implement BERT WordPiece only: refuse anything else before exporting."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise UsageError("the model's tokenizer is not a fast tokenizer: the apps need tokenizer.json or vocab.txt")
    norm, model, pre = backend.normalizer, backend.model, backend.pre_tokenizer
    if type(model).__name__ != "WordPiece" or type(norm).__name__ != "BertNormalizer" \
            or type(pre).__name__ != "BertPreTokenizer":
        raise UsageError(
            f"the apps implement the BERT WordPiece tokenizer; this model uses {type(norm).__name__} + "
            f"{type(pre).__name__} + {type(model).__name__}. Bundle a BERT/DistilBERT checkpoint with a WordPiece vocabulary."
        )
    strip = norm.strip_accents if norm.strip_accents is not None else norm.lowercase
    if strip != norm.lowercase or not norm.clean_text or not norm.handle_chinese_chars \
            or model.continuing_subword_prefix != "##":
        raise UsageError("the apps support the standard BERT normaliser only (accent stripping exactly when lowercasing)")
    return {"do_lower_case": bool(norm.lowercase), "max_input_chars_per_word": int(model.max_input_chars_per_word)}


def vocab_lines(tokenizer: Any) -> list[str]:
    vocab = tokenizer.get_vocab()
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise UsageError("the vocabulary ids are not 0..N-1: cannot write vocab.txt for the apps")
    if any("\n" in t or "\r" in t for t, _ in by_id):
        raise UsageError("a vocabulary token contains a line break: cannot write vocab.txt")
    return [t for t, _ in by_id]


def _export(model: Any, tokenizer: Any, opts: BundleOptions, work: Path) -> tuple[Path, Any]:
    from .config import ExportOptions, SeqLen
    from .export import export_model
    from .precision import Precision
    from .record import Status
    from .tasks import Task

    target = APPS[opts.app][0]
    from . import registry

    if target not in registry.converters():
        raise UsageError(f"this edgekit has no {target} target, so `bundle --app {opts.app}` cannot export; "
                         f"export the file where it is available and pass it with --artifact")
    options = ExportOptions(target=target, task=Task.QUESTION_ANSWERING, precision=Precision.parse(opts.precision),
                            seq_len=SeqLen("fixed", (opts.seq_len,)))
    record = export_model(model, options, work, tokenizer=tokenizer, validate=opts.validate)
    if record.status == Status.EXPORT_FAILED:
        raise ExportError(f"the {target} export failed: {record.reason}")
    if record.status == Status.PARITY_FAILED:
        raise ExportError(f"the {target} file failed parity ({record.reason}); not bundling it. "
                          "Try another --precision, or inspect it with `edgekit validate`.")
    return work / record.artifact, record


def _load_artifact(path: Path) -> Any:
    from .record import ArtifactRecord

    try:
        return ArtifactRecord.load(path)
    except FileNotFoundError:
        raise UsageError(f"{path} has no export record ({path.name}.json next to it): export it with `edgekit export`") from None


def _install(src: Path, dst: Path) -> None:
    """Copy a file or package folder into place atomically (a folder is swapped in whole)."""
    tmp = dst.with_name(f".{dst.name}.partial")
    if tmp.is_dir():
        shutil.rmtree(tmp)
    elif tmp.exists():
        tmp.unlink()
    if src.is_dir():
        shutil.copytree(src, tmp)
        old = dst.with_name(f".{dst.name}.old")
        if dst.exists():
            shutil.rmtree(old, ignore_errors=True)
            dst.rename(old)
        tmp.rename(dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        shutil.copyfile(src, tmp)
        tmp.chmod(0o644)
        tmp.replace(dst)


def _app_tolerance(tol: dict[str, Any]) -> dict[str, Any]:
    """The record's parity bounds in the form the apps check: |a - e| <= atol + rtol * |e|, cosine."""
    out: dict[str, Any] = {"rtol": 0.0}
    out["atol"] = float(tol["max_abs"]) if tol.get("max_abs") is not None else None
    out["min_cosine"] = float(tol["min_cosine"]) if tol.get("min_cosine") is not None else None
    return out


def bundle(opts: BundleOptions) -> dict[str, Any]:
    """Write the app folder; returns the model card."""
    from . import golden
    from .export import model_stem
    from .modeling import load_model, load_tokenizer
    from .qa import QAConfig, QAPipeline, torch_logits_fn
    from .record import sha256_of, size_of
    from .tasks import Task

    target, artifact_name = APPS[opts.app]
    tokenizer = load_tokenizer(opts.model)
    tok_info = check_tokenizer(tokenizer)
    model = load_model(opts.model, Task.QUESTION_ANSWERING)
    out = Path(opts.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder")
    out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix=".edgekit-bundle-", dir=out) as work_dir:
        if opts.artifact is not None:
            src, record = Path(opts.artifact), _load_artifact(Path(opts.artifact))
            if record.target != target or record.task != Task.QUESTION_ANSWERING.value:
                raise UsageError(f"--app {opts.app} needs a {target} question-answering file; "
                                 f"{src.name} is {record.target} {record.task}")
            if "," in record.seq_len or ":" in record.seq_len:
                raise UsageError("the apps need a fixed sequence length; export with e.g. --seq-len 256")
            if int(record.seq_len) != opts.seq_len:
                opts = BundleOptions(**{**opts.__dict__, "seq_len": int(record.seq_len)})
        else:
            src, record = _export(model, tokenizer, opts, Path(work_dir))
        _install(src, out / artifact_name)

    seq = opts.seq_len
    run = torch_logits_fn(model)
    qa_cfg = QAConfig(max_seq_len=seq, doc_stride=opts.stride, max_answer_len=opts.max_answer_len, top_k=3, pad_to=seq)
    pipeline = QAPipeline(tokenizer, run, qa_cfg)
    model_section = {
        "file": artifact_name,
        "target": target,
        "precision": record.precision,
        "seq_len": seq,
        "inputs": [t.name for t in record.inputs],
        "outputs": [t.name for t in record.outputs],
        "expected_from": "PyTorch (edgekit EdgeModel): the reference the export record's parity is measured against",
        "tolerance": record.tolerance,
        **_app_tolerance(record.tolerance),
        "cases": golden.model_cases(run, tokenizer, seq),
    }
    data = golden.build_golden(tokenizer, source=str(opts.model), pipeline=pipeline, model=model_section)
    data["tokenizer"].update(tok_info)

    (out / "vocab.txt").parent.mkdir(parents=True, exist_ok=True)
    from .record import atomic_write_text

    atomic_write_text(out / "vocab.txt", "\n".join(vocab_lines(tokenizer)) + "\n")
    golden.write_json_atomic(out / "golden.json", data)
    atomic_write_text(out / "export_record.json", json.dumps(record.to_dict(), indent=2, default=str) + "\n")

    notes = list(getattr(model.info, "notes", []))
    random_head = any("randomly initialised" in n for n in notes)
    card = {
        "model": model_stem(str(opts.model)),
        "source": str(opts.model),
        "app": opts.app,
        "task": Task.QUESTION_ANSWERING.value,
        "artifact": artifact_name,
        "target": target,
        "precision": record.precision,
        "seq_len": seq,
        "inputs": [t.name for t in record.inputs],
        "outputs": [t.name for t in record.outputs],
        "size_bytes": size_of(out / artifact_name),
        "sha256": sha256_of(out / artifact_name),
        "status": str(record.status),
        "parity": record.parity,
        "tolerance": record.tolerance,
        "qa": {"doc_stride": opts.stride, "max_answer_len": opts.max_answer_len, "max_seq_len": seq},
        "tokenizer": data["tokenizer"],
        "architecture": {k: getattr(model.info, k) for k in ("arch", "num_layers", "hidden_size", "vocab_size", "token_types")},
        "notes": notes,
        "note": RANDOM_HEAD_NOTE if random_head else "",
        "versions": record.versions,
    }
    atomic_write_text(out / "model_card.json", json.dumps(card, indent=2, default=str) + "\n")
    atomic_write_text(out / "MODEL_CARD.md", model_card_markdown(card, data))
    for name in ("vocab.txt", "export_record.json", "model_card.json", "MODEL_CARD.md"):
        (out / name).chmod(0o644)  # shipped inside the app: readable, not private temp-file mode
    return card


def model_card_markdown(card: dict[str, Any], data: dict[str, Any]) -> str:
    mb = card["size_bytes"] / 1e6
    lines = [
        f"# {card['model']} — extractive question answering ({card['app']})",
        "",
        f"- File: `{card['artifact']}` ({card['target']}, {card['precision']}, {mb:.2f} MB, sha256 `{card['sha256'][:16]}…`)",
        f"- Inputs: {', '.join(card['inputs'])} (int32 [1, {card['seq_len']}]); outputs: {', '.join(card['outputs'])}",
        f"- Architecture: {card['architecture']['arch']}, {card['architecture']['num_layers']} layers, "
        f"hidden {card['architecture']['hidden_size']}, vocabulary {card['architecture']['vocab_size']}",
        f"- Export status: {card['status']}; tolerance {card['tolerance']}",
        f"- QA: windows of {card['seq_len']} tokens, stride {card['qa']['doc_stride']}, answers up to "
        f"{card['qa']['max_answer_len']} tokens",
        f"- Tokenizer: BERT WordPiece, {'uncased' if card['tokenizer']['do_lower_case'] else 'cased'}, vocab.txt",
        f"- golden.json: {len(data['tokenization'])} tokenisation, {len(data['decoder'])} decoder, "
        f"{len(data['model']['cases'])} model and {len(data['qa'])} QA cases",
        f"- Source: {card['source']}",
    ]
    if card["note"]:
        lines += ["", f"**Note.** {card['note']}"]
    if card["notes"]:
        lines += ["", "Export notes:", *[f"- {n}" for n in card["notes"]]]
    return "\n".join(lines) + "\n"


def add_parser(subparsers: Any) -> None:
    """Register ``bundle`` on the top-level ``edgekit`` sub-parsers."""
    p = subparsers.add_parser(
        "bundle", help="write a demo app's assets: QA model, vocab.txt, golden.json, model card",
        description="Export a question-answering model for the Android (TFLite) or iOS (Core ML) demo app and "
                    "write vocab.txt, golden.json (tokenizer, decoder, model and QA cases the app replays on the "
                    "device) and a model card into --out.")
    p.add_argument("--app", required=True, choices=sorted(APPS), help="android (TFLite on LiteRT) or ios (Core ML)")
    p.add_argument("--model", required=True, help="BERT/DistilBERT checkpoint folder (or Hugging Face id)")
    p.add_argument("--out", required=True, type=Path,
                   help="folder to write (android-demo/app/src/main/assets or ios-demo/EdgekitQADemo/Bundle)")
    p.add_argument("--precision", default="fp32", help="artifact precision (default fp32)")
    p.add_argument("--seq-len", type=int, default=256, help="fixed sequence length of the file (default 256)")
    p.add_argument("--doc-stride", type=int, default=None, help="overlap of context windows (default seq-len/4)")
    p.add_argument("--max-answer-len", type=int, default=15, help="longest answer in tokens (default 15)")
    p.add_argument("--artifact", type=Path, default=None,
                   help="bundle this already exported file (with its .json record) instead of exporting")
    p.add_argument("--no-validate", action="store_true", help="skip the parity run after export")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .console import console

    opts = BundleOptions(
        app=args.app, model=args.model, out=args.out, precision=args.precision, seq_len=args.seq_len,
        doc_stride=args.doc_stride, max_answer_len=args.max_answer_len, artifact=args.artifact,
        validate=not args.no_validate,
    )
    card = bundle(opts)
    console.print(f"[bold]bundle[/] {card['app']}: {card['artifact']} ({card['size_bytes'] / 1e6:.2f} MB, "
                  f"{card['status']}), vocab.txt, golden.json, model_card.json → {opts.out}")
    return 0
