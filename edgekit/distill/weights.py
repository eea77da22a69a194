"""Loss weights (kept free of torch so that building the CLI parser stays fast)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from edgekit.core.errors import UsageError

#: Weights a term gets when left unset (None), by teacher kind. Masked-LM teachers: the DistilBERT triple loss
#: (alpha_ce=5, alpha_mlm=2, alpha_cos=1, T=2). Encoder-only sentence-embedding teachers: chosen by measurement
#: (benchmarks/results/distill_quality.md, "objective x layers"): MSE of the L2-normalised mean-pooled
#: embeddings, the sentence-transformers distillation practice.
KIND_DEFAULTS = {
    "mlm": {"cos": 1.0, "mse": 0.0, "nmse": 0.0, "hmse": 0.0, "rel": 0.0, "rkl": 0.0, "hid": 0.0},
    "encoder": {"cos": 0.0, "mse": 0.0, "nmse": 1.0, "hmse": 0.0, "rel": 0.0, "rkl": 0.0, "hid": 0.0},
}
#: The encoder-only objectives compared by benchmarks/distill_quality.py (weights of cos, mse, nmse, hmse).
ENCODER_OBJECTIVES = {
    "cos+mse": {"cos": 1.0, "mse": 1.0, "nmse": 0.0, "hmse": 0.0},     # (i) before issue 14
    "nmse": {"cos": 0.0, "mse": 0.0, "nmse": 1.0, "hmse": 0.0},        # (ii) sentence-transformers practice
    "nmse+hmse": {"cos": 0.0, "mse": 0.0, "nmse": 1.0, "hmse": 1.0},   # (iii) plus token-level hidden MSE
}
#: Objectives that keep the embedding geometry or align intermediate layers (issue 30: labelled benchmarks).
GEOMETRY_OBJECTIVES = {
    "nmse+rel": {"nmse": 1.0, "rel": 1.0},             # + in-batch cosine-similarity matrix MSE
    "nmse+rkl": {"nmse": 1.0, "rkl": 1.0},             # + KL of in-batch similarity softmax (T = 0.05)
    "nmse+rel+hid": {"nmse": 1.0, "rel": 1.0, "hid": 1.0},  # + every student layer vs its teacher layer
}


@dataclass
class LossWeights:
    """Loss weights and temperature; a weight left at None takes its teacher kind's default (:meth:`resolve`)."""

    ce: float = 5.0          # KL between softened student and teacher MLM distributions, times T^2
    mlm: float = 2.0         # cross-entropy of the student on the masked tokens
    cos: float | None = None   # 1 - cos(student, teacher) of last hidden states, on non-pad tokens
    mse: float | None = None   # encoder-only: MSE (mean over dims) between mean-pooled embeddings
    nmse: float | None = None  # encoder-only: squared distance between L2-normalised mean-pooled embeddings
    hmse: float | None = None  # encoder-only: MSE (mean over dims) between last hidden states, non-pad tokens
    rel: float | None = None   # encoder-only: MSE between student and teacher in-batch cosine-similarity matrices
    rkl: float | None = None   # encoder-only: KL(teacher || student) of each row's in-batch similarity softmax
    hid: float | None = None   # encoder-only: cosine distance of every student layer's tokens to its teacher layer's
    temperature: float = 2.0
    restrict_ce_to_mask: bool = False  # KL only at masked positions (15% of tokens) instead of all real ones

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise UsageError(f"temperature must be positive, not {self.temperature}")
        for name in ("ce", "mlm", "cos", "mse", "nmse", "hmse", "rel", "rkl", "hid"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise UsageError(f"loss weight alpha_{name} must be >= 0, not {v}")

    def resolve(self, kind: str) -> LossWeights:
        """Concrete weights for a teacher of ``kind`` ("mlm" or "encoder"): unset ones take the kind's default."""
        d = KIND_DEFAULTS.get(kind, KIND_DEFAULTS["mlm"])
        return replace(self, **{k: v for k, v in d.items() if getattr(self, k) is None})

    def as_dict(self) -> dict:
        return asdict(self)
