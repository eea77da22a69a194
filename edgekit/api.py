"""The few functions a Python user needs: ``export``, ``load``, ``validate`` (``report``: the
``edgekit.report`` package itself is callable).

They go through the same pipeline as the command line (plan -> export/validate -> record -> report).
"""
from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any, Callable

from .errors import UsageError


def callable_module(module_name: str, fn: Callable[..., Any]) -> None:
    """Make a submodule callable as ``fn``.

    ``edgekit.export`` and ``edgekit.report`` are public functions, and also modules of the same
    name: once a module is imported Python sets it as the package attribute, so it has to be both.
    """

    class _CallableModule(types.ModuleType):
        __call__ = staticmethod(fn)

    sys.modules[module_name].__class__ = _CallableModule


def export(model: str | Path, target: str, precision: str = "fp32", out: str | Path = "edgekit-out",
           seq_len: str | int | None = None, task: str | None = None, validate: bool = True,
           calibration: str | Path | None = None, **flags: Any) -> Any:
    """Export a Hugging Face model folder to one target and precision; return the saved ``ArtifactRecord``.

    ``flags``: the target's own options (``ane=True``, ``deployment_target="iOS18"``,
    ``metadata=False`` ...). Parity runs unless ``validate=False``; ``record.status`` says how it went.
    """
    from . import pipeline
    from .config import SeqLen
    from .tasks import infer_task

    task = task or infer_task(str(model))
    seqs = [SeqLen.parse(seq_len)] if seq_len is not None else None  # None: the target's default
    jobs = pipeline.plan(target, precision, seqs, task, flags=flags,
                         calibration=Path(calibration) if calibration else None)
    result = pipeline.run(jobs, str(model), task, Path(out), validate=validate)
    if not result.records:
        raise UsageError(f"nothing was exported: {'; '.join(j.skipped or '' for j in result.skipped)}")
    return result.records[0]


def load(artifact: str | Path, threads: int | None = None) -> Any:
    """An exported file, loaded in its own runtime: ``runner.run({name: int32 [1, S]}) -> {name: array}``."""
    from . import registry
    from .record import ArtifactRecord

    path = Path(artifact)
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    record = ArtifactRecord.load(path)
    return registry.get(record.target).load(path, record, threads=threads)


def validate(artifact: str | Path, model: str | Path | None = None) -> Any:
    """Re-run parity of an exported file against its source model (or ``model``); save and return the record."""
    from . import registry
    from .export import validate_artifact
    from .modeling import load_model, load_tokenizer
    from .record import ArtifactRecord

    path = Path(artifact)
    record = ArtifactRecord.load(path)
    source = str(model or record.source.source)
    tt = record.source.token_types
    edge = load_model(source, record.task, token_types=tt if tt in ("fold", "keep") else "auto")
    try:
        tokenizer = load_tokenizer(source)
    except Exception:  # noqa: BLE001 - parity then uses random token ids only
        tokenizer = None
    conv = registry.get(record.target)
    validate_artifact(path, record, edge, tokenizer, conv.tolerance(record.precision), verbose=False)
    record.save(path)
    return record
