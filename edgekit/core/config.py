"""Frozen option dataclasses. They reject contradictions when built, not halfway through an export."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.core.errors import UsageError
from edgekit.core.precision import Precision
from edgekit.core.tasks import Task


@dataclass(frozen=True)
class SeqLen:
    """Sequence lengths an artifact accepts.

    ``fixed``: one length. ``enumerated``: a few lengths (Core ML can run these on the Neural
    Engine; ranges it cannot). ``range``: any length in [lo, hi]. ``default`` is the length used
    for tracing, parity and benchmarks.
    """

    kind: str
    values: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "enumerated", "range"):
            raise UsageError(f"sequence-length kind must be fixed, enumerated or range, not {self.kind!r}")
        if not self.values or any(v < 2 for v in self.values):
            raise UsageError(f"sequence lengths must be >= 2, got {self.values}")
        if self.kind == "fixed" and len(self.values) != 1:
            raise UsageError("a fixed sequence length has exactly one value")
        if self.kind == "range" and (len(self.values) != 2 or self.values[0] >= self.values[1]):
            raise UsageError("a sequence-length range is LO:HI with LO < HI")
        if self.kind == "enumerated" and (len(self.values) < 2 or len(set(self.values)) != len(self.values)):
            raise UsageError("enumerated sequence lengths need at least two distinct values")

    @property
    def default(self) -> int:
        return self.values[-1] if self.kind != "range" else min(128, self.values[1])

    @property
    def max(self) -> int:
        return max(self.values)

    @classmethod
    def parse(cls, text: str | int | SeqLen) -> SeqLen:
        """``128`` -> fixed; ``128,256,384`` -> enumerated; ``16:512`` -> range."""
        if isinstance(text, SeqLen):
            return text
        if isinstance(text, int):
            return cls("fixed", (text,))
        try:
            if ":" in text:
                lo, hi = text.split(":")
                return cls("range", (int(lo), int(hi)))
            if "," in text:
                return cls("enumerated", tuple(sorted(int(v) for v in text.split(","))))
            return cls("fixed", (int(text),))
        except ValueError:
            raise UsageError(f"bad sequence length {text!r}: use 128, 128,256,384 or 16:512") from None

    def __str__(self) -> str:
        if self.kind == "range":
            return f"{self.values[0]}:{self.values[1]}"
        return ",".join(map(str, self.values))


@dataclass(frozen=True)
class ExportOptions:
    """Everything that decides what an exported file is.

    ``flags`` holds target-specific options by name (``ane``, ``deployment_target``, ``metadata``
    ...): each target declares its own (``Converter.flags``) and ``edgekit.export`` rejects a flag
    the target does not declare. Flags left at their default are not stored.
    """

    target: str
    task: Task
    precision: Precision = Precision.FP32
    seq_len: SeqLen = field(default_factory=lambda: SeqLen("fixed", (128,)))
    token_types: str = "auto"
    calibration: Path | None = None        # text file, one sample per line, for int8-static
    flags: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.token_types not in ("auto", "fold", "keep"):
            raise UsageError(f"--token-types must be auto, fold or keep, not {self.token_types!r}")
        if self.calibration is not None and self.precision != Precision.INT8_STATIC:
            raise UsageError("--calibration only applies to --precision int8-static")
        if self.calibration is not None and Path(self.calibration).is_dir():
            raise UsageError(f"--calibration {self.calibration} is a folder; give a text file, one calibration "
                             "sample per line (question<TAB>context for question answering)")
        if self.calibration is not None and not Path(self.calibration).is_file():
            raise UsageError(f"calibration file {self.calibration} does not exist (one text sample per line)")
