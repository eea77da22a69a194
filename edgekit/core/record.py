"""The export record: one JSON sidecar per artifact, saying exactly what the file is and how it did.

Schema 2: precision, task and sequence lengths are stored as text but held as their types
(parsed once, in ``from_dict``); parity is a ``parity.ParityReport``; latency is a list of
``Measurement`` (one per ``bench`` run, never overwritten), each carrying the PyTorch eager
baseline measured in the same run; quality (optional) is a ``Quality``, the accuracy gate on real
data. Schema-1 sidecars are migrated on load.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import types
import typing
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.core.geometry import QAGeometry
from edgekit.core.config import SeqLen
from edgekit.core.errors import UsageError
from edgekit.core.precision import Precision
from edgekit.core.tasks import Task

if TYPE_CHECKING:
    from edgekit.core.measures import ParityReport

SCHEMA_VERSION = 2


class Status(str, Enum):
    """What an artifact proved. Each status owns how every report shows it."""

    VALIDATED = "validated"
    PARITY_FAILED = "parity-failed"
    VALIDATION_SKIPPED = "validation-skipped"
    EXPORT_FAILED = "export-failed"

    def __str__(self) -> str:
        return self.value

    @property
    def symbol(self) -> str:
        return _STATUS_LOOK[self][0]

    @property
    def label(self) -> str:
        return _STATUS_LOOK[self][1]

    @property
    def colour(self) -> str:
        return _STATUS_LOOK[self][2]


_STATUS_LOOK = {
    Status.VALIDATED: ("✅", "validated", "#2e7d32"),
    Status.PARITY_FAILED: ("❎", "exported, parity failed", "#ef6c00"),
    Status.VALIDATION_SKIPPED: ("⚠️", "exported, validation skipped", "#757575"),
    Status.EXPORT_FAILED: ("❌", "export failed", "#c62828"),
}


@dataclass
class TensorSpec:
    name: str
    shape: list[int | str]  # a str names a dynamic dimension, e.g. "seq"
    dtype: str


@dataclass
class LatencyStats:
    """Timed runs of one callable (after untimed warm-up runs)."""

    p50_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    runs: int
    warmup: int


@dataclass
class Measurement:
    """One ``bench`` run of one artifact: its latency and the eager baseline of the same run.

    ``artifact`` is None when the file was not timed; ``not_timed`` says why. ``run`` identifies
    the bench invocation: rows of one report compare against the baseline of their own run only.
    """

    run: str                      # start time of the bench invocation (ISO), shared by its measurements
    seq_len: int
    threads: int
    host: str                     # CPU name
    load_average: list[float] | None
    artifact: LatencyStats | None = None
    eager: LatencyStats | None = None  # PyTorch eager fp32 of the source model, same run/threads/length
    not_timed: str | None = None
    pinned_cpus: list[int] | None = None
    unreliable: str | None = None  # why these numbers cannot be trusted (edgekit.measure.bench.sanity)
    remeasured: bool = False       # bench timed it a second time after the first looked unreliable
    # Runnable tasks besides bench's own threads, before and after timing the file (the smaller of the
    # two snapshots: a competitor that stayed). Unlike the 1-minute load average it does not count
    # what this edgekit process itself did just before (the demo's export stage in two processes).
    others: float | None = None

    @property
    def speedup(self) -> float | None:
        """Eager p50 / artifact p50, both from this run; None when the measurement is unreliable
        (a headline ratio is never made from numbers bench itself distrusts)."""
        if self.artifact and self.eager and self.artifact.p50_ms > 0 and not self.unreliable:
            return self.eager.p50_ms / self.artifact.p50_ms
        return None


@dataclass
class Quality:
    """Task quality on real data: the accuracy gate of ``export/validate --eval-data`` (``edgekit.quality.evaluate``).

    The file and its PyTorch model answer the same questions; ``drop`` is PyTorch minus file in
    ``metric`` points (F1 for question answering, accuracy for classification). When the gate could
    not score the file, ``skipped`` or ``error`` says why and the scores are None.
    """

    metric: str | None = None          # "f1" or "accuracy"
    data: str | None = None            # the evaluation file
    n: int | None = None               # questions (examples) scored
    pytorch: float | None = None       # the source model's score, percent
    artifact: float | None = None      # the file's score, percent
    drop: float | None = None          # pytorch - artifact
    max_drop: float | None = None      # the bound the gate enforced
    same_answer: float | None = None   # share of answers identical to PyTorch's (0..1)
    passed: bool | None = None
    # Paired bootstrap 95% interval of ``drop`` (question-level resampling, the same questions for
    # file and PyTorch) and what it says: "pass" (inside the bound), "fail" (beyond it) or
    # "undecided" (it straddles the bound: evaluate more questions).
    drop_interval: list[float] | None = None
    verdict: str | None = None
    pytorch_metrics: dict[str, float] = field(default_factory=dict)
    artifact_metrics: dict[str, float] = field(default_factory=dict)
    seconds_per_question: float | None = None
    skipped: str | None = None         # the file was not run (export failed, validation skipped)
    error: str | None = None           # the file's runtime could not answer

    @property
    def scored(self) -> bool:
        """Whether the file was scored (the report's F1 (Δ) column has numbers for it)."""
        return self.artifact is not None and self.pytorch is not None


@dataclass
class ModelSource:
    """The model an artifact was exported from (what ``edgekit validate`` reloads)."""

    source: str = ""
    arch: str = ""
    num_layers: int = 0
    hidden_size: int = 0
    vocab_size: int = 0
    token_types: str = "none"     # fold / keep / none: the one place this is stored
    labels: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fp32_param_bytes: int | None = None  # the "% of fp32" base when no fp32 file of the target exists
    weights_sha256: str | None = None    # checked by `bundle --artifact` when present (not filled yet)

    @classmethod
    def of(cls, model: Any) -> ModelSource:
        info = vars(model.info)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in info.items() if k in known},
                   fp32_param_bytes=4 * sum(p.numel() for p in model.parameters()))


GENERIC_DIR_NAMES = {"model", "models", "checkpoint", "final", "output", "student", "hf"}


def model_stem(source: str) -> str:
    """A short name for a model: its folder (or its parent, for generic names) or hub id. Artifact
    file names start with it, and a report names each row's model with it."""
    import re

    path = Path(str(source).rstrip("/"))
    name = path.name
    if name.lower() in GENERIC_DIR_NAMES and path.parent.name:
        name = path.parent.name
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "model"


@dataclass
class ArtifactRecord:
    """What an exported file is (target, precision, io, hash, size, versions) and what it proved."""

    artifact: str                 # file (or package folder) name, relative to the sidecar
    target: str
    precision: Precision
    task: Task
    seq_len: SeqLen
    status: Status
    reason: str | None = None     # why skipped / the export error
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    sha256: str | None = None
    size_bytes: int | None = None
    source: ModelSource = field(default_factory=lambda: ModelSource(""))
    versions: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)    # target flags used + what the converter reports
    tolerance: dict[str, float] = field(default_factory=dict)  # the bounds parity enforced
    parity: ParityReport | None = None
    latency: list[Measurement] = field(default_factory=list)  # oldest first; bench appends
    quality: Quality | None = None  # the accuracy gate on real data, when export/validate ran it
    # Question answering: the one QA geometry (lengths, stride, longest answer) every consumer reads
    qa: QAGeometry | None = None
    # Parity on the phone's CPU (ARM64 under emulation): {"checked": bool, "reason"?, "cpus": {cpu:
    # {"passed", "qemu", "runtime", "outputs", "agreement", "failures"}}, "bound"}; None: not asked
    arm64: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    export_seconds: float | None = None
    created: str = field(default_factory=lambda: now())
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        # Callers may hand text; the record holds types (parsed here, once).
        self.precision = Precision.parse(self.precision)
        self.task = Task.parse(self.task)
        self.seq_len = SeqLen.parse(self.seq_len)
        self.status = Status(self.status)
        if isinstance(self.qa, dict):
            self.qa = QAGeometry.from_dict(self.qa)
        if self.qa is None and self.task == Task.QUESTION_ANSWERING and self.seq_len.kind != "range":
            # A record written before the geometry was stored: the one rule gives what it was exported for.
            self.qa = QAGeometry.for_lengths(self.seq_len.values)

    @property
    def qa_geometry(self) -> QAGeometry:
        """The QA geometry (a range file: windows of its upper end, capped at the default length)."""
        if self.qa is not None:
            return self.qa
        from edgekit.core.geometry import DEFAULT_QA_LENGTH

        return QAGeometry.for_lengths([min(DEFAULT_QA_LENGTH, self.seq_len.max)])

    @property
    def last_latency(self) -> Measurement | None:
        return self.latency[-1] if self.latency else None

    @staticmethod
    def sidecar_path(artifact_path: Path) -> Path:
        return artifact_path.with_name(artifact_path.name + ".json")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(precision=self.precision.value, task=self.task.value, seq_len=str(self.seq_len),
                 status=self.status.value, parity=self.parity.to_dict() if self.parity else None,
                 qa=self.qa.to_dict() if self.qa else None)
        return d

    def save(self, artifact_path: Path) -> Path:
        path = self.sidecar_path(artifact_path)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=str) + "\n", durable=True)
        return path

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArtifactRecord:
        schema = d.get("schema", 1)
        if schema == 1:
            d = _migrate_v1(d)
        elif schema != SCHEMA_VERSION:
            raise UsageError(f"record schema {schema} is not supported by this edgekit (it reads schemas 1 and "
                             f"{SCHEMA_VERSION}); re-export the artifact or upgrade edgekit")
        from edgekit.core.measures import ParityReport

        d = dict(d)
        parity = d.pop("parity", None)
        qa = d.pop("qa", None)
        rec = _decode(cls, d)
        if qa:
            rec.qa = QAGeometry.from_dict(qa)
        rec.parity = _decode(ParityReport, parity) if parity else None
        return rec

    @classmethod
    def load(cls, path: Path) -> ArtifactRecord:
        """Load a sidecar, given the sidecar itself or the artifact it describes."""
        path = Path(path)
        if path.suffix != ".json" or path.is_dir():
            path = cls.sidecar_path(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, UsageError):
                raise
            raise UsageError(f"{path} is not a readable edgekit record ({type(e).__name__}: {e})") from None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def is_record(data: Any) -> bool:
    """Whether parsed JSON looks like an artifact sidecar (reports skip every other JSON file)."""
    return isinstance(data, dict) and {"artifact", "target", "status"} <= data.keys()


# ---- decoding ----------------------------------------------------------------------------------

def _decode(cls: type, data: Any) -> Any:
    """Build dataclass ``cls`` from JSON data, recursing into typed fields; unknown keys are dropped
    (so a record written by a newer edgekit with extra fields still loads)."""
    from edgekit.core.measures import ParityReport  # the record's annotation names it only under TYPE_CHECKING

    hints = typing.get_type_hints(cls, localns={"ParityReport": ParityReport})
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data and f.init:
            kwargs[f.name] = _value(hints[f.name], data[f.name])
    return cls(**kwargs)


def _value(tp: Any, v: Any) -> Any:
    if v is None:
        return None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _value(inner[0], v) if len(inner) == 1 else v
    if origin is list and args and dataclasses.is_dataclass(args[0]):
        return [_decode(args[0], x) for x in v]
    if dataclasses.is_dataclass(tp) and isinstance(v, dict):
        return _decode(tp, v)
    return v


def _migrate_v1(d: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 sidecar in schema-2 shape: token types once, latency as one measurement."""
    d = dict(d)
    opts = dict(d.get("options") or {})
    opts.pop("token_types", None)
    d["options"] = opts
    src = dict(d.get("source") or {})
    src.pop("task", None)
    d["source"] = src
    lat = d.get("latency")
    if isinstance(lat, dict) and lat:
        keys = ("p50_ms", "p90_ms", "mean_ms", "std_ms", "min_ms", "runs", "warmup")
        art = {k: lat.get(k, 0) for k in keys}
        eager = None
        if lat.get("eager_p50_ms"):
            eager = {"p50_ms": lat["eager_p50_ms"], "p90_ms": lat.get("eager_p90_ms", lat["eager_p50_ms"]),
                     "mean_ms": lat["eager_p50_ms"], "std_ms": 0.0, "min_ms": lat["eager_p50_ms"], "runs": 0,
                     "warmup": 0}
        seq = lat.get("seq_len") or SeqLen.parse(d["seq_len"]).default
        d["latency"] = [{"run": d.get("created", ""), "seq_len": seq, "threads": lat.get("threads", 0),
                         "host": "", "load_average": lat.get("load_average"), "artifact": art, "eager": eager}]
    else:
        d["latency"] = []
    d["schema"] = SCHEMA_VERSION
    return d


# ---- files -------------------------------------------------------------------------------------

def fsync_enabled() -> bool:
    """Whether durable writes fsync (always, unless ``EDGEKIT_NO_FSYNC=1``: for measuring their cost)."""
    return os.environ.get("EDGEKIT_NO_FSYNC", "") in ("", "0")


def atomic_write_text(path: Path, text: str, durable: bool = False) -> None:
    """Write through a temp file in the same folder and rename, so readers never see half a file.

    ``durable``: the bytes are fsynced before the rename and the folder after it, so a power loss
    leaves the old text or the new text (records are written so)."""
    atomic_write_bytes(path, text.encode("utf-8"), durable)


def atomic_write_bytes(path: Path, data: bytes, durable: bool = False) -> None:
    """:func:`atomic_write_text` for bytes (a compressed corpus, a packed answers file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    durable = durable and fsync_enabled()
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; records and reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


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
