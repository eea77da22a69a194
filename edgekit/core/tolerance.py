"""Parity acceptance bounds: the ``Tolerance`` type and the value bounds every target shares."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from edgekit.core.errors import UsageError


@dataclass(frozen=True)
class Tolerance:
    """Acceptance bounds for parity. A bound left at None is reported but not enforced."""

    max_abs: float | None = None
    min_cosine: float | None = None
    min_psnr: float | None = None       # dB, as apple/ml-ane-transformers computes it
    min_agreement: float | None = None  # task agreement in [0, 1]

    def to_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def merged(self, **overrides: float | None) -> Tolerance:
        """This tolerance with the given bounds replaced (None leaves a bound as it is)."""
        d = asdict(self)
        d.update({k: v for k, v in overrides.items() if v is not None})
        return Tolerance(**d)


# ---- the value bounds every target shares (calibration: benchmarks/results/tolerances.md) -------
#: fp32: the same graph in another runtime; only kernel order differs.
FP32_BOUND = Tolerance(max_abs=1e-4, min_cosine=0.99999, min_agreement=0.99)
#: fp16, one rule for every target (same PSNR/cosine meaning everywhere): honest fp16 files reach
#: a worst-sample cosine of 0.999998+ and 63-74 dB at seq 64 (MiniLM and the BERT-base-shaped QA
#: model, ONNX/TFLite/Core ML; Core ML's ANE-like numbers 60-62 dB); earlier, a BERT-base-shaped
#: classifier's 2-3 logits read 49-52 dB. One FFN matrix off by 2%, exported: MiniLM 0.99966 /
#: 43.1 dB, the BERT-base-shaped model 0.99993 / 43.9 dB, which only the 45 dB floor catches:
#: both bounds carry weight.
FP16_BOUND = Tolerance(min_psnr=45.0, min_cosine=0.9999, min_agreement=0.99)
#: 8-bit weights with float compute (int8-weight, 8-bit palettes; ExecuTorch's dynamic int8, as
#: close): honest files reach a worst-sample cosine of 0.996+ (MiniLM at seq 64: Core ML
#: int8-weight 0.997, TFLite int8-weight 0.998; the BERT-base-shaped model 0.9998); one layer's
#: weights x1.10, exported, 0.984-0.986 (0.973-0.980 on the BERT-base-shaped model).
INT8_BOUND = Tolerance(min_cosine=0.99, min_agreement=0.97)
#: int8 activations too (dynamic/static): honest MiniLM files at seq 64 reach 0.981 (ONNX/ORT
#: int8-dynamic) to 0.989 (ExecuTorch int8-static), 0.982-0.983 at seq 128 (demo records); one
#: layer x1.10, exported, 0.970-0.974 on MiniLM and the BERT-base-shaped model. 0.975 sits
#: between, with room of only ~0.005 each side. Where a runtime's int8 activations are as close
#: as 8-bit weights alone (TFLite int8-dynamic 0.994, damaged 0.984), this bound is too loose:
#: benchmarks/results/tolerances.md lists each target's numbers.
INT8_ACT_BOUND = Tolerance(min_cosine=0.975, min_agreement=0.97)


def check_overrides(overrides: dict[str, float | None]) -> dict[str, float]:
    """Bound overrides a user gave (``--max-abs`` …), checked once: a bound no file could meet or
    that means nothing (cosine above 1, a negative error) is a usage error, not a silent verdict."""
    out: dict[str, float] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in Tolerance.__dataclass_fields__:
            raise UsageError(f"unknown tolerance {key!r}; known: {', '.join(Tolerance.__dataclass_fields__)}")
        flag = "--" + key.replace("_", "-")
        v = float(value)
        if math.isnan(v):
            raise UsageError(f"{flag} must be a number, got nan")
        if key in ("min_cosine", "min_agreement") and not 0.0 <= v <= 1.0:
            raise UsageError(f"{flag} {v:g} is impossible: it must lie in [0, 1]")
        if key in ("max_abs", "min_psnr") and not 0.0 <= v < math.inf:
            raise UsageError(f"{flag} {v:g} is impossible: it must be a finite number >= 0")
        out[key] = v
    return out
