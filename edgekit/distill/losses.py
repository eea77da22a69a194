"""Distillation losses.

The masked-LM triple loss of DistilBERT (soft-target KL at temperature T, MLM cross-entropy, hidden-state
cosine), the encoder-only pair (hidden cosine + MSE on mean-pooled embeddings) and the task-logit loss.

Every loss here is returned as a ``(sum, count)`` pair of the per-row terms, so that data-parallel workers
can divide by the *global* count and reproduce exactly the loss of one process on the whole batch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

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


def kl_sum(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Sum over rows of KL(teacher_T || student_T) * T^2 for [rows, vocab] logits.

    Divided by the number of rows this is ``KLDivLoss(reduction="batchmean")`` of the reference code.
    """
    t = temperature
    s_logp = F.log_softmax(student_logits.float() / t, dim=-1)
    t_logp = F.log_softmax(teacher_logits.float() / t, dim=-1)
    return F.kl_div(s_logp, t_logp, reduction="sum", log_target=True) * (t * t)


def mlm_sum(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of cross-entropies at the masked rows (``student_logits`` [rows, vocab], ``labels`` [rows])."""
    return F.cross_entropy(student_logits.float(), labels, reduction="sum")


def cos_sum(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor) -> torch.Tensor:
    """Sum over rows of 1 - cos(student, teacher) ([rows, dim]); ``CosineEmbeddingLoss`` with target 1."""
    return (1.0 - F.cosine_similarity(student_hidden.float(), teacher_hidden.float(), dim=-1, eps=1e-8)).sum()


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the hidden states over real tokens: the sentence embedding of sentence-transformers models."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def mse_sum(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    """Sum over rows of the mean squared error per embedding ([rows, dim])."""
    return ((student_emb.float() - teacher_emb.float()) ** 2).mean(-1).sum()


def task_kl_sum(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
                mask: torch.Tensor | None = None) -> torch.Tensor:
    """KL sum for task logits ([rows, classes]); ``mask`` ([rows, classes], bool) hides impossible classes."""
    if mask is not None:
        neg = torch.finfo(torch.float32).min / 4
        student_logits = student_logits.float().masked_fill(~mask, neg)
        teacher_logits = teacher_logits.float().masked_fill(~mask, neg)
    return kl_sum(student_logits, teacher_logits, temperature)
