"""Loss weights (kept free of torch so that building the CLI parser stays fast)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import UsageError


@dataclass
class LossWeights:
    """Loss weights and temperature. Defaults are the DistilBERT paper's (alpha_ce=5, alpha_mlm=2, alpha_cos=1, T=2)."""

    ce: float = 5.0          # KL between softened student and teacher MLM distributions, times T^2
    mlm: float = 2.0         # cross-entropy of the student on the masked tokens
    cos: float = 1.0         # 1 - cos(student, teacher) of last hidden states, on non-pad tokens
    mse: float = 1.0         # encoder-only teachers: MSE between mean-pooled embeddings
    temperature: float = 2.0
    restrict_ce_to_mask: bool = False  # KL only at masked positions (15% of tokens) instead of all real ones

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise UsageError(f"temperature must be positive, not {self.temperature}")
        for name in ("ce", "mlm", "cos", "mse"):
            if getattr(self, name) < 0:
                raise UsageError(f"loss weight alpha_{name} must be >= 0, not {getattr(self, name)}")

    def as_dict(self) -> dict:
        return asdict(self)
