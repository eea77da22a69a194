"""Export orchestration: convert into a staging folder, hash, validate, write the record, install the pair."""
from __future__ import annotations

import platform
import shutil
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from edgekit.core.version import __version__
from edgekit.core import registry
from edgekit.core.config import ExportOptions, SeqLen
from edgekit.core.console import console, native_output_to_log
from edgekit.core.target import ConvertContext, Converter
from edgekit.core.tolerance import Tolerance
from edgekit.core.errors import UsageError
from edgekit.build.install import InterruptNoted, Staging, test_pause
from edgekit.model.modeling import EdgeModel
from edgekit.check.verdict import validate_artifact
from edgekit.core.record import ArtifactRecord, ModelSource, Status, model_stem, sha256_of, size_of
from edgekit.core.signature import Signature
from edgekit.core.geometry import QAGeometry
from edgekit.core.tasks import Task


def artifact_name(model: EdgeModel, options: ExportOptions, conv: Converter) -> str:
    stem = model_stem(model.info.source)
    seq = str(options.seq_len).replace(":", "-").replace(",", "_")
    return f"{stem}.{options.task}.{options.precision}{conv.variant(options)}.s{seq}{conv.suffix}"


def base_versions() -> dict[str, str]:
    import transformers

    return {"edgekit": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def export_model(
    model: EdgeModel, options: ExportOptions | Any, out_dir: Path, tokenizer: Any = None,
    tolerance: Tolerance | None = None, validate: bool = True, verbose: bool = True,
    gate: Callable[..., None] | None = None, arm64: tuple[str, ...] | None = None,
) -> ArtifactRecord:
    """Export ``model`` for ``options.target`` into ``out_dir`` and return its (saved) record.

    ``options``: a planned ``edgekit.build.plan.Job`` (checked when it was planned) or bare
    ``ExportOptions``, which are checked here, once. ``gate(path, record, model, tokenizer)``: the
    accuracy gate, run on the staged file before the install decision. A converter crash yields an
    ``export-failed`` record and no artifact file; usage errors raise instead.
    """
    from edgekit.build.job import Job, check_options

    if isinstance(options, Job):  # planned: options and lengths were checked by plan/run
        if options.options is None:
            raise UsageError(f"{options.label} was not planned for export: {options.skipped}")
        options = options.options
        conv = registry.get(options.target)
    else:
        conv = registry.get(options.target)
        conv.require()
        check_options(conv, options, len(model.input_names))
        check_max_positions(model, options.seq_len)
    out_dir = Path(out_dir)
    name = artifact_name(model, options, conv)
    final = out_dir / name
    signature = Signature.of(model, options.seq_len)
    tol = tolerance or conv.tolerance(options.precision)
    record = ArtifactRecord(
        artifact=name, target=conv.name, precision=options.precision, task=options.task, seq_len=options.seq_len,
        status=Status.EXPORT_FAILED, inputs=list(signature.inputs), outputs=list(signature.outputs),
        source=ModelSource.of(model), versions=base_versions(), tolerance=tol.to_dict(),
        # Every flag the target declares, at the value used: the record says what the file is.
        options={f.name: options.flags.get(f.name, f.default) for f in conv.flags},
    )
    if options.task == Task.QUESTION_ANSWERING and options.seq_len.kind != "range":
        # The one QA geometry, decided here once and carried by the record to every consumer.
        record.qa = QAGeometry.for_lengths(options.seq_len.values)
    ctx = context(model, options, tokenizer, signature)
    if verbose:
        console.print(f"[bold]{conv.name}[/] {options.precision} → {final}")
    # Artifact and record are built in a private staging folder and installed together
    # (edgekit.build.install; DESIGN.md "Install protocol").
    # Ctrl-C during convert/validate stops the export even when a library swallows the
    # KeyboardInterrupt (InterruptNoted): nothing staged after it is installed.
    with Staging(out_dir, name, quiet=not verbose) as stage, InterruptNoted() as interrupted:
        _build(stage.artifact, record, conv, ctx, tokenizer, tol, validate, verbose, interrupted, arm64=arm64)
        if gate is not None and record.status == Status.VALIDATED:
            # The gate judges the staged file: its verdict decides the install, and a record it
            # writes belongs to the new file only (never beside a kept older pair).
            gate(stage.artifact, record, ctx.model, tokenizer)
            record.save(stage.artifact)
        interrupted.check()
        previous = _previous_validated(final)
        if previous and record.status != Status.VALIDATED:
            if verbose:
                console.print(f"    [yellow]kept the previous validated {name}[/] (sha256 {previous.sha256[:12]}…): "
                              f"the new export is {record.status}")
            record.notes.append(f"not installed: kept the previous validated {name}")
            return record
        stage.commit()
    return record


def _build(path: Path, record: ArtifactRecord, conv: Converter, ctx: ConvertContext, tokenizer: Any,
           tol: Tolerance, validate: bool, verbose: bool, interrupted: InterruptNoted | None = None,
           arm64: tuple[str, ...] | None = None) -> None:
    """Convert into ``path`` (a staging path), hash, validate, and save the record beside it."""
    t0 = time.perf_counter()
    try:
        with torch.inference_mode(False), torch.no_grad(), native_output_to_log():
            result = conv.convert(ctx, path)
        if interrupted is not None:
            interrupted.check()  # a Ctrl-C the converter's libraries swallowed
        if not path.exists():
            raise RuntimeError(f"the {conv.name} converter wrote nothing at {path.name}")
        test_pause("convert")
    except UsageError:
        raise
    except Exception as e:  # a backend crash is a result to record, not a traceback for the user
        _remove(path)  # no artifact beside a record that says export failed
        record.reason = f"{type(e).__name__}: {e}"
        record.notes.append(traceback.format_exc(limit=3))
        record.export_seconds = time.perf_counter() - t0
        record.save(path)
        if verbose:
            console.print(f"    [red]✗ export failed[/]: {record.reason}")
        return
    record.export_seconds = round(time.perf_counter() - t0, 3)
    record.versions.update(result.versions)
    if ctx.calibration_info:
        record.options["calibration"] = ctx.calibration_info
    record.options.update(result.options or {})
    record.notes.extend(ctx.notes + (result.notes or []))
    record.inputs = result.inputs or record.inputs
    record.outputs = result.outputs or record.outputs
    record.sha256, record.size_bytes = sha256_of(path), size_of(path)
    if validate:
        test_pause("validate")
        validate_artifact(path, record, ctx.model, tokenizer, tol, verbose=verbose, arm64=arm64)
    else:
        record.status, record.reason = Status.VALIDATION_SKIPPED, "validation not requested (--no-validate)"
    record.save(path)


def _previous_validated(final: Path) -> ArtifactRecord | None:
    """The record of a validated pair already installed at ``final`` and still bound to its file."""
    from edgekit.check.integrity import file_problems

    if not ArtifactRecord.sidecar_path(final).is_file():
        return None
    try:
        prev = ArtifactRecord.load(final)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if prev.status != Status.VALIDATED or file_problems(final, prev):
        return None
    return prev


def context(model: EdgeModel, options: ExportOptions, tokenizer: Any = None,
            signature: Signature | None = None) -> ConvertContext:
    """What a converter is handed. Without ``tokenizer`` the model folder's own is loaded, once
    (None when the folder has none: converters that need one say so)."""
    if tokenizer is None:
        from edgekit.model.modeling import load_tokenizer

        try:
            tokenizer = load_tokenizer(model.info.source)
        except Exception:  # noqa: BLE001 - any tokenizer problem means: no tokenizer
            tokenizer = None
    from edgekit.model.inputs import calibration

    return ConvertContext(model, options, signature or Signature.of(model, options.seq_len),
                          registry.get(options.target), tokenizer, calibration_reader=calibration)


def check_max_positions(model: EdgeModel, seq: SeqLen) -> None:
    """A length beyond the loaded model's position table cannot run anywhere: a usage error up front.

    The CLI checks the same before loading (preflight.check_seq_len reads config.json); this covers
    the Python API and models that are not a local folder, with the same rule and message."""
    from edgekit.model.preflight import check_seq_len

    check_seq_len(model.info.source, list(seq.values), limit=model.config.max_positions)
