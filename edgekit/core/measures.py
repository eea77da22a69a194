"""What a parity run measured: per-output numbers, named steps and the report a record carries.

The types live in core because the record holds them; ``edgekit.check.parity`` computes them."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class OutputMetrics:
    name: str
    max_abs: float
    mean_abs: float
    cosine: float   # worst sample
    psnr: float     # worst sample, dB


@dataclass
class Step:
    name: str
    ok: bool
    detail: str


@dataclass
class AneLikeParity:
    """Core ML fp16/compressed files run again with Neural-Engine-like numerics (fp16 accumulation in
    matmul/linear/conv, fp16 LayerNorm statistics; edgekit.targets.coreml.mil). The bound applies when the file was
    exported with ``--ane`` (``bound_applies``); otherwise the numbers are information."""

    outputs: list[OutputMetrics] = field(default_factory=list)
    samples: int = 0
    bound_applies: bool = False
    failures: list[str] = field(default_factory=list)
    error: str | None = None         # the interpreter could not run the file this way

    def worst(self, metric: str) -> float | None:
        vals = [getattr(o, metric) for o in self.outputs]
        if not vals:
            return None
        return max(vals) if metric in ("max_abs", "mean_abs") else min(vals)


@dataclass
class ParityReport:
    samples: int
    steps: list[Step] = field(default_factory=list)
    outputs: list[OutputMetrics] = field(default_factory=list)
    agreement: float | None = None
    agreement_metric: str = ""
    tolerance: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    # Counts behind ``agreement``: a sample (token, for per-token tasks) is *decisive* when the
    # reference's best choice beats its runner-up by more than the error the value bound allows;
    # only decisive ones are judged. ``agreed`` of ``decisive`` made the same choice; ``judged``
    # is how many were looked at. For embeddings: recall@10 hits of queries x 10.
    agreed: int | None = None
    decisive: int | None = None
    judged: int | None = None
    text_samples: int = 0            # of ``samples``, how many are real text (edgekit/data)
    lengths: list[int] = field(default_factory=list)
    inputs_note: str | None = None   # e.g. "random inputs only": no tokenizer, no real text
    ane_like: AneLikeParity | None = None  # Core ML only (CoreMLConverter.extra_validation)

    @property
    def passed(self) -> bool:
        return not self.failures and all(s.ok for s in self.steps)

    def worst(self, metric: str) -> float | None:
        vals = [getattr(o, metric) for o in self.outputs]
        if not vals:
            return None
        return max(vals) if metric in ("max_abs", "mean_abs") else min(vals)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        return d
