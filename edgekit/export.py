"""Export orchestration: convert into a staging folder, hash, validate, write the record, install the pair."""
from __future__ import annotations

import platform
import re
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__, registry
from .config import ExportOptions, SeqLen
from .console import console, native_output_to_log
from .converter import ConvertContext, Converter, Tolerance
from .errors import EdgekitError, UnsupportedOpError, UsageError
from .tasks import Task
from .install import Staging, test_pause
from .modeling import EdgeModel
from .parity import compare
from .record import ArtifactRecord, ModelSource, Status, sha256_of, size_of
from .signature import Signature


GENERIC_DIR_NAMES = {"model", "models", "checkpoint", "final", "output", "student", "hf"}


def model_stem(source: str) -> str:
    """A short file-name stem for a model: its folder (or its parent, for generic names) or hub id."""
    path = Path(source.rstrip("/"))
    name = path.name
    if name.lower() in GENERIC_DIR_NAMES and path.parent.name:
        name = path.parent.name
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "model"


def artifact_name(model: EdgeModel, options: ExportOptions, conv: Converter) -> str:
    stem = model_stem(model.info.source)
    seq = str(options.seq_len).replace(":", "-").replace(",", "_")
    return f"{stem}.{options.task}.{options.precision}{conv.variant(options)}.s{seq}{conv.suffix}"


def check_options(conv: Converter, options: ExportOptions, n_inputs: int = 2) -> None:
    """Reject option combinations the target cannot honour, before any work starts."""
    if options.precision not in conv.precisions:
        raise UsageError(f"{conv.name} does not export {options.precision}; choose one of: "
                         + ", ".join(p.value for p in conv.precisions))
    if options.seq_len.kind not in conv.seq_kinds:
        raise UsageError(f"{conv.name} exports {'/'.join(conv.seq_kinds)} sequence lengths, not {options.seq_len.kind}")
    extra = set(options.flags) - conv.flag_names
    if extra:
        from . import registry

        clis = {f.name: f.cli for c in registry.converters().values() for f in c.flags}
        raise UsageError(f"{conv.name} does not take {', '.join(clis.get(f, f) for f in sorted(extra))}")
    conv.check(options, n_inputs)


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
    model: EdgeModel, options: ExportOptions, out_dir: Path, tokenizer: Any = None,
    tolerance: Tolerance | None = None, validate: bool = True, verbose: bool = True,
) -> ArtifactRecord:
    """Export ``model`` for ``options.target`` into ``out_dir`` and return its (saved) record.

    A converter crash yields an ``export-failed`` record and no artifact file; usage errors
    (contradictory options, a missing backend) raise instead.
    """
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
    ctx = context(model, options, tokenizer, signature)
    if verbose:
        console.print(f"[bold]{conv.name}[/] {options.precision} → {final}")
    # Artifact and record are built in a private staging folder and installed together
    # (edgekit.install; DESIGN.md "Install protocol").
    with Staging(out_dir, name, quiet=not verbose) as stage:
        _build(stage.artifact, record, conv, ctx, tokenizer, tol, validate, verbose)
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
           tol: Tolerance, validate: bool, verbose: bool) -> None:
    """Convert into ``path`` (a staging path), hash, validate, and save the record beside it."""
    t0 = time.perf_counter()
    try:
        with torch.inference_mode(False), torch.no_grad(), native_output_to_log():
            result = conv.convert(ctx, path)
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
        validate_artifact(path, record, ctx.model, tokenizer, tol, verbose=verbose)
    else:
        record.status, record.reason = Status.VALIDATION_SKIPPED, "validation not requested (--no-validate)"
    record.save(path)


def _previous_validated(final: Path) -> ArtifactRecord | None:
    """The record of a validated pair already installed at ``final`` and still bound to its file."""
    from .integrity import file_problems

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
        from .modeling import load_tokenizer

        try:
            tokenizer = load_tokenizer(model.info.source)
        except Exception:  # noqa: BLE001 - any tokenizer problem means: no tokenizer
            tokenizer = None
    return ConvertContext(model, options, signature or Signature.of(model, options.seq_len),
                          registry.get(options.target), tokenizer)


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


def check_max_positions(model: EdgeModel, seq: SeqLen) -> None:
    """A length beyond the loaded model's position table cannot run anywhere: a usage error up front.

    The CLI checks the same before loading (preflight.check_seq_len reads config.json); this covers
    the Python API and models that are not a local folder, with the same rule and message."""
    from .preflight import check_seq_len

    check_seq_len(model.info.source, list(seq.values), limit=model.config.max_positions)


def parity_feeds(model: EdgeModel, tokenizer: Any, task: Task, seq: SeqLen,
                 n_random: int = 4, n_text: int | None = None) -> tuple[list[dict[str, np.ndarray]], list[bool]]:
    """Random token ids plus, with a tokenizer, the shipped real-text samples (``n_text`` of them,
    default ``samples.TEXT_SAMPLES``), at every parity length; the second list marks the real-text
    feeds."""
    from .inputs import random_feeds
    from .samples import TEXT_SAMPLES, sample_feeds

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
) -> ArtifactRecord:
    """Fill ``record.parity`` and ``record.status`` by running the artifact in its own runtime.

    ``n_text`` caps the real-text samples (default ``samples.TEXT_SAMPLES``): only for a slow
    runtime in a calibration sweep (benchmarks/tolerances.py), which says so in its result."""
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
        from .samples import embedding_index

        index = embedding_index(model, tokenizer)
    try:
        with native_output_to_log():
            report = compare(model, lambda: conv.load(path, record), feeds, record.task, tolerance, verbose=verbose,
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
    return record


def _export_api(*args: Any, **kwargs: Any) -> Any:
    from .api import export

    return export(*args, **kwargs)


from .api import callable_module  # noqa: E402

callable_module(__name__, _export_api)  # ``edgekit.export(model, target, ...)``: see edgekit.api.export
