"""The export record: one JSON sidecar per artifact, saying exactly what the file is and how it did."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


class Status(str, Enum):
    VALIDATED = "validated"
    PARITY_FAILED = "parity-failed"
    VALIDATION_SKIPPED = "validation-skipped"
    EXPORT_FAILED = "export-failed"

    def __str__(self) -> str:
        return self.value

    @property
    def symbol(self) -> str:
        return {"validated": "✅", "parity-failed": "❎", "validation-skipped": "⚠️", "export-failed": "❌"}[self.value]


@dataclass
class TensorSpec:
    name: str
    shape: list[int | str]  # a str names a dynamic dimension, e.g. "seq"
    dtype: str


@dataclass
class ArtifactRecord:
    """What an exported file is (target, precision, io, hash, size, versions) and what it proved."""

    artifact: str                 # file (or package folder) name, relative to the sidecar
    target: str
    precision: str
    task: str
    seq_len: str                  # SeqLen as text: "128", "128,256,384" or "16:512"
    status: Status
    reason: str | None = None     # why skipped / the export error
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    sha256: str | None = None
    size_bytes: int | None = None
    source: dict[str, Any] = field(default_factory=dict)     # ModelInfo
    versions: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)    # target-specific options used
    tolerance: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] | None = None                     # ParityReport.to_dict()
    latency: dict[str, Any] | None = None                    # LatencyStats.to_dict()
    notes: list[str] = field(default_factory=list)
    export_seconds: float | None = None
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    schema: int = SCHEMA_VERSION

    @staticmethod
    def sidecar_path(artifact_path: Path) -> Path:
        return artifact_path.with_name(artifact_path.name + ".json")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        return d

    def save(self, artifact_path: Path) -> Path:
        path = self.sidecar_path(artifact_path)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        return path

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArtifactRecord:
        d = dict(d)
        d["status"] = Status(d["status"])
        d["inputs"] = [TensorSpec(**t) for t in d.get("inputs", [])]
        d["outputs"] = [TensorSpec(**t) for t in d.get("outputs", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def load(cls, path: Path) -> ArtifactRecord:
        """Load a sidecar, given the sidecar itself or the artifact it describes."""
        path = Path(path)
        if path.suffix != ".json" or path.is_dir():
            path = cls.sidecar_path(path)
        return cls.from_dict(json.loads(path.read_text()))


def atomic_write_text(path: Path, text: str) -> None:
    """Write through a temp file in the same folder and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; records and reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a folder (relative paths and contents, in sorted order)."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
