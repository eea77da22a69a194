"""The one ``validate``: ``edgekit validate FILE`` and ``edgekit.validate(FILE)`` are this function.

Under the file's install lock (no export of the same name can install in between): roll forward
what an interrupted install left, check that file and record are one thing (``check.integrity``:
hash, size, format and precision read from the bytes, the record's own numbers), re-run parity
against the source model, optionally the accuracy gate, and rewrite the record bound to the bytes
that were just checked.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from edgekit.build.install import InterruptNoted, locked
from edgekit.check import integrity
from edgekit.check.verdict import validate_artifact
from edgekit.core import registry
from edgekit.core.console import console
from edgekit.core.errors import EdgekitError, IntegrityError, UsageError
from edgekit.core.record import ArtifactRecord, sha256_of, size_of
from edgekit.core.tolerance import check_overrides


def validate(artifact: str | Path, model: str | Path | None = None, *,
             tolerance: dict[str, float | None] | None = None, rebind: bool = False,
             gate: Callable[..., None] | None = None, verbose: bool = True,
             arm64: tuple[str, ...] | None = None) -> ArtifactRecord:
    """Re-check an exported file against its source model; save and return its record.

    ``model``: the source model (default: the one its record names). ``tolerance``: bound overrides
    (``{"min_cosine": 0.999}``). ``rebind``: the file was changed on purpose; accept its new size
    and hash, but never a format or precision its bytes contradict. ``gate``: the accuracy gate
    (``edgekit.quality.gate.Gate``). ``arm64``: CPU models to check the file on in its aarch64 runtime
    under emulation too (``edgekit.check.arm64``; the emulator must pass its self-test first). Raises ``IntegrityError`` (exit 1) when file and record
    disagree, ``UsageError`` (exit 2) for what the user can fix; a parity failure is a status.
    """
    path = Path(artifact)
    overrides = check_overrides(tolerance or {})
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    sidecar = ArtifactRecord.sidecar_path(path)
    if not sidecar.is_file():
        raise UsageError(f"{path} has no record ({sidecar.name}); export it with `edgekit export` to get one")
    t0 = time.perf_counter()
    with locked(path.parent, path.name, quiet=not verbose), InterruptNoted() as interrupted:
        record = ArtifactRecord.load(path)
        # File and record must be one thing before anything is re-checked (edgekit.check.integrity).
        if rebind:
            clash = [p for p in integrity.file_problems(path, record, check_hash=False)
                     if not p.startswith(("size:", "the record describes"))]
            if clash:
                raise IntegrityError(f"{path.name} is not what its record says, even after --rebind:\n  - "
                                     + "\n  - ".join(clash))
            record.artifact, record.sha256, record.size_bytes = path.name, sha256_of(path), size_of(path)
        else:
            found = integrity.problems(path, record)
            if found:
                raise IntegrityError(f"{path.name} and its record {sidecar.name} disagree:\n  - " + "\n  - ".join(found)
                                     + f"\nRe-export it, or if the file was changed on purpose: "
                                       f"edgekit validate {path} --rebind")
        source = str(model or record.source.source or "")
        if not source:
            raise UsageError(f"{sidecar.name} names no source model: pass --model PATH")
        if not model and source.startswith(("/", ".")) and not Path(source).exists():
            raise UsageError(f"the source model {source} is not on this machine: pass --model PATH")
        conv = registry.get(record.target)
        conv.require()
        from edgekit.model.modeling import load_model, load_tokenizer

        tt = record.source.token_types
        edge = load_model(source, record.task, token_types=tt if tt in ("fold", "keep") else "auto")
        try:
            tokenizer = load_tokenizer(source)
        except EdgekitError:
            tokenizer = None
        tol = conv.tolerance(record.precision).merged(**overrides)
        if verbose:
            console.print(f"validating {path} ({record.target} {record.precision}) against {source} "
                          f"(model loaded in {time.perf_counter() - t0:.1f} s)")
        validate_artifact(path, record, edge, tokenizer, tol, verbose=verbose, arm64=arm64)
        if gate is not None:
            gate(path, record, edge, tokenizer)
        interrupted.check()  # a Ctrl-C a runtime swallowed: stop before the record is rewritten
        # The record is rewritten (atomically, under the lock) with the hash of the bytes just checked.
        record.sha256, record.size_bytes = sha256_of(path), size_of(path)
        record.save(path)
    if verbose:
        console.print(f"{record.status.symbol} {record.status}" + (f": {record.reason}" if record.reason else "")
                      + f" · {time.perf_counter() - t0:.1f} s")
    return record
