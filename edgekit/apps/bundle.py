"""``edgekit bundle``: everything a demo app needs, in one folder.

For ``--app android`` (TFLite file on LiteRT) or ``--app ios`` (Core ML ``.mlpackage``), the folder gets:

* ``model.tflite`` / ``model.mlpackage``: the exported question-answering artifact (exported
  here, or an existing one passed with ``--artifact``), and ``export_record.json``, its record;
* ``vocab.txt``: the WordPiece vocabulary, one token a line, line number = id;
* ``golden.json``: tokenisation cases, decoder cases, model cases (ids/mask -> PyTorch outputs,
  with the tolerance from the export record) and end-to-end QA cases from ``edgekit.quality.qa``;
* ``model_card.json`` (read by the apps) and ``MODEL_CARD.md`` (read by people).

The apps replay golden.json on the device; see android-demo/README.md and ios-demo/README.md.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.core.geometry import DEFAULT_QA_LENGTH
from edgekit.core.errors import ExportError, UsageError, unknown_choice

def apps() -> dict[str, tuple[str, str]]:
    """Each phone app and the target whose file it ships, with the file's name in the app: from the
    target plug-ins (``Converter.apps``), not a list here."""
    from edgekit.core import registry

    return {app: (conv.name, "model" + conv.suffix) for conv in registry.converters().values() for app in conv.apps}
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
    seq_len: int = DEFAULT_QA_LENGTH      # export's QA default: one source (edgekit.core.geometry)
    doc_stride: int | None = None         # None: the record's QA geometry (the one rule)
    max_answer_len: int | None = None     # None: the record's QA geometry
    artifact: Path | None = None
    validate: bool = True
    allow_unvalidated: bool = False
    max_abs: float | None = None
    min_cosine: float | None = None
    min_psnr: float | None = None
    min_agreement: float | None = None
    questions: Path | None = None
    golden_arch: str = "auto"             # where golden outputs are computed: edgekit.apps.golden_arch
    golden_cpu: str | None = None         # the QEMU CPU model for arm64 (None: emulation.DEFAULT_CPU)

    def __post_init__(self) -> None:
        from edgekit.apps.golden_arch import ARCHES

        if self.app not in apps():
            raise unknown_choice("app", self.app, sorted(apps()))
        if self.golden_arch not in ARCHES:
            raise unknown_choice("golden architecture", self.golden_arch, list(ARCHES))
        if self.golden_cpu is not None and (self.golden_arch == "x86_64" or not self.golden_cpu.strip()):
            raise UsageError("--golden-cpu names one QEMU CPU model (e.g. neoverse-n1) for --golden-arch arm64 or auto")
        check_bounds(self.tolerance_overrides(), "--")
        if self.tolerance_overrides() and self.artifact is not None:
            raise UsageError("tolerances belong to the export that validated the file: give them to "
                             "`edgekit export`, or drop --artifact so bundle exports with them")
        if not self.validate and not self.allow_unvalidated:
            raise UsageError("--no-validate ships a file nobody checked: add --allow-unvalidated to say so "
                             "(the model card will record it)")
        if self.seq_len < 32:
            raise UsageError(f"--seq-len {self.seq_len} leaves no room for a question and context; use 64 or more")
        if self.doc_stride is not None and not 0 <= self.doc_stride < self.seq_len // 2:
            raise UsageError(f"--doc-stride must be in [0, {self.seq_len // 2})")
        if self.max_answer_len is not None and self.max_answer_len < 1:
            raise UsageError("--max-answer-len must be at least 1")
        if self.questions is not None and not Path(self.questions).is_file():
            raise UsageError(f"--questions {self.questions} does not exist (an edgekit-questions/1 file, e.g. "
                             "demo-golden/squad-dev-questions.json)")
        if self.artifact is not None and not Path(self.artifact).exists():
            raise UsageError(f"--artifact {self.artifact} does not exist")

    def tolerance_overrides(self) -> dict[str, float]:
        return {k: v for k in ("max_abs", "min_cosine", "min_psnr", "min_agreement")
                if (v := getattr(self, k)) is not None}

    def geometry(self, record: Any) -> Any:
        """The QA geometry the app ships: the file's (its record's), with --doc-stride /
        --max-answer-len when given."""
        from edgekit.core.geometry import QAGeometry

        g = record.qa_geometry
        return QAGeometry(g.lengths, g.doc_stride if self.doc_stride is None else self.doc_stride,
                          g.max_answer_len if self.max_answer_len is None else self.max_answer_len)


def check_bounds(bounds: dict[str, Any], prefix: str = "") -> None:
    """Refuse tolerances no file can meet or that mean nothing (exit 2): the one rule,
    ``edgekit.core.tolerance.check_overrides``."""
    from edgekit.core.tolerance import check_overrides

    for key, value in bounds.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{prefix}{key.replace('_', '-') if prefix else key} must be a number, got {value!r}")
    check_overrides(dict(bounds))


def weights_sha256(model: Any) -> str:
    """A hash of a model's weights (names, dtypes, shapes and bytes of its state dict, sorted by
    name): the same checkpoint gives the same hash whatever folder or file format it came from."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().contiguous().cpu()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


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
    if not norm.clean_text or not norm.handle_chinese_chars or model.continuing_subword_prefix != "##":
        raise UsageError("the apps support the standard BERT normaliser (clean_text, handle_chinese_chars, "
                         "'##' continuation pieces); this tokenizer turns one of them off")
    return {"do_lower_case": bool(norm.lowercase), "strip_accents": bool(strip),
            "max_input_chars_per_word": int(model.max_input_chars_per_word)}


def vocab_lines(tokenizer: Any) -> list[str]:
    vocab = tokenizer.get_vocab()
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise UsageError("the vocabulary ids are not 0..N-1: cannot write vocab.txt for the apps")
    if any("\n" in t or "\r" in t for t, _ in by_id):
        raise UsageError("a vocabulary token contains a line break: cannot write vocab.txt")
    return [t for t, _ in by_id]


def _export(model: Any, tokenizer: Any, opts: BundleOptions, work: Path) -> tuple[Path, Any]:
    from edgekit.core import registry
    from edgekit.core.config import ExportOptions, SeqLen
    from edgekit.build.stage import export_model
    from edgekit.core.precision import Precision
    from edgekit.core.record import Status
    from edgekit.core.tasks import Task

    target = apps()[opts.app][0]
    if target not in registry.converters():
        raise UsageError(f"this edgekit has no {target} target, so `bundle --app {opts.app}` cannot export; "
                         f"export the file where it is available and pass it with --artifact")
    precision = Precision.parse(opts.precision)
    options = ExportOptions(target=target, task=Task.QUESTION_ANSWERING, precision=precision,
                            seq_len=SeqLen("fixed", (opts.seq_len,)))
    tolerance = registry.get(target).tolerance(precision).merged(**opts.tolerance_overrides())
    record = export_model(model, options, work, tokenizer=tokenizer, tolerance=tolerance, validate=opts.validate)
    if record.status == Status.EXPORT_FAILED:
        raise ExportError(f"the {target} export failed: {record.reason}")
    return work / record.artifact, record


def _load_artifact(path: Path) -> Any:
    from edgekit.core.record import ArtifactRecord

    try:
        return ArtifactRecord.load(path)
    except FileNotFoundError:
        raise UsageError(f"{path} has no export record ({path.name}.json next to it): export it with `edgekit export`") from None
    except (ValueError, TypeError, KeyError) as e:
        raise UsageError(f"the record of {path} is not a valid edgekit record ({e}): re-export the file") from None


def check_pair(opts: BundleOptions, src: Path, record: Any) -> None:
    """Usage checks on --artifact that need no model: right target/task/length for the app (exit 2)."""
    from edgekit.core.tasks import Task

    target = apps()[opts.app][0]
    if record.target != target or record.task != Task.QUESTION_ANSWERING.value:
        raise UsageError(f"--app {opts.app} needs a {target} question-answering file; "
                         f"{src.name} is {record.target} {record.task}")
    if record.seq_len.kind == "range":
        raise UsageError("the apps need fixed or enumerated sequence lengths; export with e.g. --seq-len 256 "
                         "or --seq-len 128,256,384")
    check_bounds(record.tolerance or {})


def snapshot(path: Path, dest: Path) -> tuple[Path, Any]:
    """Copy --artifact and read its record into ``dest`` as one consistent pair: what is checked is
    what ships, even while an export of the same name replaces the original (the copy is re-read
    when it does not match its record because an install was in flight, ``install.read_settled``)."""
    from edgekit.build.install import read_settled
    from edgekit.core.record import sha256_of

    dest.mkdir(parents=True, exist_ok=True)
    copy = dest / path.name

    def read() -> tuple[Any, bool]:
        if copy.is_dir():
            shutil.rmtree(copy)
        if path.is_dir():
            shutil.copytree(path, copy)
        else:
            shutil.copyfile(path, copy)
        record = _load_artifact(path)
        return record, record.sha256 == sha256_of(copy)

    record, _ = read_settled(path, read, lambda got: not got[1])
    return copy, record


def check_record(src: Path, record: Any, model: Any, allow_unvalidated: bool) -> list[str]:
    """Integrity of --artifact against its record and --model (exit 1 on a mismatch).

    The file must be what its record says in every way ``edgekit validate`` checks (size, sha256,
    target and precision read from the bytes, the record's own numbers:
    ``edgekit.check.integrity.problems``), its name excepted. Returns warnings for the card (an unvalidated file
    shipped with --allow-unvalidated)."""
    from edgekit.check import integrity
    from edgekit.core.errors import IntegrityError, ValidationError
    from edgekit.core.record import Status

    warnings = []
    if record.status == Status.PARITY_FAILED or record.status == Status.EXPORT_FAILED:
        raise ValidationError(f"{src.name} is {record.status} ({record.reason or 'see its record'}): not bundling it. "
                              "Re-export it (another --precision?) until `edgekit validate` passes.")
    if record.status != Status.VALIDATED:
        if not allow_unvalidated:
            raise ValidationError(f"{src.name} is {record.status}, not validated: run `edgekit validate {src}`, or "
                                  "pass --allow-unvalidated to ship it anyway (the card will say so)")
        warnings.append(f"shipped unvalidated ({record.status}: {record.reason or 'no reason recorded'}) "
                        "with --allow-unvalidated")
    # validate's checks, but not the file's name: the app ships it as model.<suffix> anyway, and a
    # pair renamed together (the record's hash still binds it to the bytes) is the same file.
    found = integrity.problems(src, record, check_name=False)
    if found:
        raise IntegrityError(f"{src.name} is not what its record says; not bundling it:\n  - " + "\n  - ".join(found)
                             + "\nRe-export it, or re-validate a file changed on purpose with "
                               "`edgekit validate FILE --rebind`")
    info = model.info
    for key in ("arch", "num_layers", "hidden_size", "vocab_size", "token_types"):
        if getattr(record.source, key) not in ("", 0, None) and getattr(record.source, key) != getattr(info, key):
            raise ValidationError(f"{src.name} was exported from a different model than --model ({key} "
                                  f"{getattr(record.source, key)!r} vs {getattr(info, key)!r}; "
                                  f"source {record.source.source})")
    want = record.source.weights_sha256
    if want is not None and want != weights_sha256(model):
        raise ValidationError(f"{src.name} was exported from other weights than --model {info.source} "
                              f"(record source {record.source.source}): bundle it with that model")
    return warnings


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


def seq_lens_of(record: Any) -> list[int]:
    """The record's lengths, ascending: one for a fixed export, several for length buckets."""
    return list(record.qa_geometry.lengths)


def shipped_file_check(golden_mod: Any, record: Any, torch_run: Any, file_run: Any, tokenizer: Any,
                       seq: int, geometry: Any = None) -> tuple[list[dict[str, Any]], dict[str, float], str, list[str]]:
    """Run the golden model inputs through the shipped file and through PyTorch.

    Returns the model cases (expected = the file's own outputs, what a device must reproduce),
    the bounds the apps apply, their origin, and what failed when the file is compared with PyTorch
    under the record's own tolerance (agreement counted on decisive cases only)."""
    bounds, origin = golden_mod.app_bounds(record.tolerance or {}, record.parity.to_dict() if record.parity else None)
    file_cases = golden_mod.model_cases(file_run, tokenizer, seq, bounds=bounds, geometry=geometry)
    ref_cases = golden_mod.model_cases(torch_run, tokenizer, seq, bounds=bounds, geometry=geometry)
    import numpy as np

    own = {k: v for k, v in bounds.items() if k in (record.tolerance or {})}
    got = [{k: np.asarray(v) for k, v in c["outputs"].items()} for c in file_cases]
    fails = golden_mod.check_model_cases(own, ref_cases, got)
    return file_cases, bounds, origin, fails


def golden_outputs(golden_mod: Any, record: Any, torch_run: Any, file_run: Any, tokenizer: Any, seq: int,
                   geometry: Any, questions: Any) -> tuple[list[dict[str, Any]], dict[str, float], str, list[str],
                                                           list[dict[str, Any]]]:
    """Every part of golden.json that runs the shipped file: the model cases (with their check
    against PyTorch, :func:`shipped_file_check`) and the QA cases, all through ``file_run``."""
    from edgekit.quality.qa import QAConfig, QAPipeline

    cases, bounds, origin, fails = shipped_file_check(golden_mod, record, torch_run, file_run, tokenizer, seq, geometry)
    pipeline = QAPipeline(tokenizer, file_run, QAConfig.from_geometry(geometry, pad_to=seq, top_k=3))
    qa = golden_mod.qa_section(pipeline, questions or golden_mod.default_questions(), bounds=bounds)
    return cases, bounds, origin, fails, qa


def bundle(opts: BundleOptions, verbose: bool = True) -> dict[str, Any]:
    """Write the app folder; returns the model card. Nothing is left behind when it refuses.

    Golden outputs are computed where ``opts.golden_arch`` says (:mod:`edgekit.apps.golden_arch`);
    ``verbose`` prints where (and, on x86, why) on stderr."""
    from edgekit.apps import golden, golden_arch
    from edgekit.core.console import console
    from edgekit.core import registry
    from edgekit.core.errors import ValidationError
    from edgekit.build.stage import model_stem
    from edgekit.model.modeling import load_model, load_tokenizer
    from edgekit.quality.qa import artifact_logits_fn, torch_logits_fn
    from edgekit.core.record import atomic_write_text, sha256_of, size_of
    from edgekit.core.tasks import Task

    target, artifact_name = apps()[opts.app]
    out = Path(opts.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder")
    record = None
    if opts.artifact is not None:  # usage checks first: a wrong app/target pair creates nothing
        record = _load_artifact(Path(opts.artifact))
        check_pair(opts, Path(opts.artifact), record)
    # Where golden outputs come from, decided before any work: arm64 asked for without its
    # environment is an environment error (exit 2) that creates nothing.
    place = golden_arch.resolve(target, opts.golden_arch, opts.golden_cpu)

    def say(line: str) -> None:
        if verbose:
            console.print(line, markup=False)

    if place.arch == "x86_64":
        say(f"golden: computing the expected outputs on x86_64, not on the phone's arm64: {place.why}")
    tokenizer = load_tokenizer(opts.model)
    tok_info = check_tokenizer(tokenizer)
    model = load_model(opts.model, Task.QUESTION_ANSWERING)
    warnings: list[str] = []

    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix=".edgekit-bundle-", dir=out) as work_dir:
            work = Path(work_dir)
            if record is None:
                src, record = _export(model, tokenizer, opts, work / "export")
            else:  # a private copy, checked and shipped: an export replacing the original cannot slip in
                src, record = snapshot(Path(opts.artifact), work / "artifact")
                check_pair(opts, src, record)
            warnings += check_record(src, record, model, opts.allow_unvalidated)
            seq_lens = seq_lens_of(record)
            seq = seq_lens[-1]
            runner = registry.get(target).load(src, record)
            geometry = opts.geometry(record)
            questions = golden.read_questions(opts.questions) if opts.questions is not None else None
            torch_run = torch_logits_fn(model)
            x86 = golden_arch.Recorder(artifact_logits_fn(runner))
            cases, bounds, origin, fails, qa = golden_outputs(golden, record, torch_run, x86, tokenizer, seq,
                                                              geometry, questions)
            runtime = "LiteRT (ai-edge-litert)" if target == "tflite" else "edgekit's Core ML (MIL) interpreter"
            if place.arch == "arm64":
                arm, computed_on = golden_arch.run_on_arm64(place, src, record, x86, say)
                x86_cases, x86_qa = cases, qa
                cases, bounds, origin, fails, qa = golden_outputs(golden, record, torch_run, arm, tokenizer, seq,
                                                                  geometry, questions)
                disagree, worst = golden_arch.compare_architectures(bounds, x86, arm, x86_cases, cases, x86_qa, qa)
                if disagree:
                    golden_arch.refuse_disagreement(disagree, computed_on, src.name)
                computed_on["x86_64"] = {"runtime": golden_arch.x86_runtime(target), "agrees": True,
                                         "worst_max_abs": worst["max_abs"], "worst_cosine": worst["cosine"]}
                say(f"golden: x86_64 agrees with arm64 within the apps' bounds (worst |x86 - arm64| "
                    f"{worst['max_abs']:.3g}, cosine {worst['cosine']:.7f})")
                runtime = f"{computed_on['runtime']} for aarch64 under QEMU {computed_on['qemu']} ({place.cpu})"
            else:
                computed_on = {"arch": "x86_64", "runtime": golden_arch.x86_runtime(target), "why": place.why}
            if fails:
                msg = (f"{src.name} does not reproduce --model {opts.model} on the golden inputs within its record's "
                       f"tolerance: {'; '.join(fails[:3])}")
                if not opts.allow_unvalidated:
                    raise ValidationError(msg + ". Was it exported from another checkpoint? Not bundling it.")
                warnings.append(msg)
            model_section = {
                "file": artifact_name,
                "target": target,
                "precision": record.precision,
                "seq_len": seq,
                "seq_lens": seq_lens,
                "inputs": [t.name for t in record.inputs],
                "outputs": [t.name for t in record.outputs],
                "expected_from": f"the shipped file run in Python by {runtime}; the device must reproduce it",
                "computed_on": computed_on,
                "tolerance": record.tolerance,
                "bounds": bounds,
                "bounds_from": origin,
                "unchecked_bounds": sorted(k for k in (record.tolerance or {}) if k not in golden.APP_BOUNDS),
                "decisive_rule": "best span margin > 4 x per-logit error bound (model cases); "
                                 "log score margin > 8 x bound (QA cases)",
                "cases": cases,
            }
            data = golden.build_golden(tokenizer, source=str(opts.model), model=model_section, geometry=geometry)
            data["qa"] = qa
            data["tokenizer"].update(tok_info)
            data["buckets"] = golden.bucket_cases(seq_lens)

            stage = work / "stage"
            stage.mkdir()
            atomic_write_text(stage / "vocab.txt", "\n".join(vocab_lines(tokenizer)) + "\n")
            golden.write_json_atomic(stage / "golden.json", data)
            atomic_write_text(stage / "export_record.json", json.dumps(record.to_dict(), indent=2, default=str) + "\n")
            notes = list(getattr(model.info, "notes", []))
            random_head = any("randomly initialised" in n for n in notes)
            card = {
                "model": model_stem(str(opts.model)),
                "source": str(opts.model),
                "source_weights_sha256": weights_sha256(model),
                "app": opts.app,
                "task": Task.QUESTION_ANSWERING.value,
                "artifact": artifact_name,
                "target": target,
                "precision": record.precision,
                "seq_len": seq,
                "seq_lens": seq_lens,
                "inputs": [t.name for t in record.inputs],
                "outputs": [t.name for t in record.outputs],
                "size_bytes": size_of(src),
                "sha256": sha256_of(src),
                "status": str(record.status),
                "validated": str(record.status) == "validated" and not fails,
                "allow_unvalidated": bool(opts.allow_unvalidated),
                "warnings": warnings,
                "parity": record.parity.to_dict() if record.parity else None,
                "tolerance": record.tolerance,
                "qa": {"doc_stride": geometry.doc_stride, "max_answer_len": geometry.max_answer_len, "max_seq_len": seq,
                       "lengths": list(geometry.lengths)},
                "tokenizer": data["tokenizer"],
                "architecture": {k: getattr(model.info, k) for k in ("arch", "num_layers", "hidden_size", "vocab_size", "token_types")},
                "notes": notes,
                "note": RANDOM_HEAD_NOTE if random_head else "",
                "versions": record.versions,
                "golden_computed_on": computed_on,
            }
            atomic_write_text(stage / "model_card.json", json.dumps(card, indent=2, default=str) + "\n")
            atomic_write_text(stage / "MODEL_CARD.md", model_card_markdown(card, data))
            _install(src, out / artifact_name)
            for f in sorted(stage.iterdir()):
                f.chmod(0o644)  # shipped inside the app: readable, not private temp-file mode
                f.replace(out / f.name)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    return card


def _computed_on_text(where: dict[str, Any] | None) -> str:
    if not where:
        return "an unrecorded architecture"
    if where.get("arch") == "arm64":
        return (f"arm64 ({where.get('cpu')}, {where.get('runtime')} under QEMU {where.get('qemu')}; "
                "x86_64 agrees within the bounds)")
    return f"x86_64 ({where.get('runtime')}; not arm64: {where.get('why')})"


def model_card_markdown(card: dict[str, Any], data: dict[str, Any]) -> str:
    mb = card["size_bytes"] / 1e6
    lines = [
        f"# {card['model']} — extractive question answering ({card['app']})",
        "",
        f"- File: `{card['artifact']}` ({card['target']}, {card['precision']}, {mb:.2f} MB, sha256 `{card['sha256'][:16]}…`)",
        f"- Inputs: {', '.join(card['inputs'])} (int32 [1, {card['seq_len']}]); outputs: {', '.join(card['outputs'])}",
        f"- Architecture: {card['architecture']['arch']}, {card['architecture']['num_layers']} layers, "
        f"hidden {card['architecture']['hidden_size']}, vocabulary {card['architecture']['vocab_size']}",
        f"- Export status: {card['status']}; tolerance {card['tolerance']}"
        + ("" if card["validated"] else " — **NOT VALIDATED** (shipped with --allow-unvalidated)"),
        f"- Sequence lengths: {', '.join(map(str, card['seq_lens']))} (the app picks the smallest that fits)",
        f"- QA: windows of {card['seq_len']} tokens, stride {card['qa']['doc_stride']}, answers up to "
        f"{card['qa']['max_answer_len']} tokens",
        f"- Tokenizer: BERT WordPiece, {'uncased' if card['tokenizer']['do_lower_case'] else 'cased'}, vocab.txt",
        f"- golden.json: {len(data['tokenization'])} tokenisation, {len(data['decoder'])} decoder, "
        f"{len(data['model']['cases'])} model and {len(data['qa'])} QA cases, expected outputs computed on "
        + _computed_on_text(card.get("golden_computed_on")),
        f"- Source: {card['source']}",
    ]
    if card["warnings"]:
        lines += ["", "Warnings:", *[f"- {w}" for w in card["warnings"]]]
    if card["note"]:
        lines += ["", f"**Note.** {card['note']}"]
    if card["notes"]:
        lines += ["", "Export notes:", *[f"- {n}" for n in card["notes"]]]
    return "\n".join(lines) + "\n"
