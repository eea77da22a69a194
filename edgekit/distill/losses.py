"""Distillation losses.

The masked-LM triple loss of DistilBERT (soft-target KL at temperature T, MLM cross-entropy, hidden-state
cosine), the encoder-only terms (hidden cosine, hidden MSE, MSE on raw or L2-normalised mean-pooled
embeddings) and the task-logit loss.

Every loss here is returned as a ``(sum, count)`` pair of the per-row terms, so that data-parallel workers
can divide by the *global* count and reproduce exactly the loss of one process on the whole batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from edgekit.distill.weights import LossWeights

__all__ = ["LossWeights", "kl_sum", "mlm_sum", "cos_sum", "layers_cos_sum", "mean_pool", "mse_sum", "nmse_sum", "rel_sum", "rkl_sum",
           "task_kl_sum"]


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


def layers_cos_sum(pairs: list[tuple[torch.Tensor, torch.Tensor]],
                   real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Intermediate-layer alignment: the :func:`cos_sum` of every (student, teacher) pair of hidden states
    ([batch, seq, dim]) over the real tokens (``real``: the flattened attention mask as bool), and the count
    of terms (real tokens x pairs). Which layers make a pair is the caller's rule."""
    D = pairs[0][0].shape[-1]
    tot = sum(cos_sum(s.reshape(-1, D)[real], t.reshape(-1, D)[real]) for s, t in pairs)
    return tot, real.sum() * len(pairs)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the hidden states over real tokens: the sentence embedding of sentence-transformers models."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def mse_sum(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    """Sum over rows of the mean squared error per embedding ([rows, dim])."""
    return ((student_emb.float() - teacher_emb.float()) ** 2).mean(-1).sum()


def nmse_sum(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    """Sum over rows of the squared distance between L2-normalised embeddings (= 2 - 2 cos).

    The sentence-transformers distillation loss (MSE to the teacher's normalised embedding) summed over the
    dimensions instead of averaged, so its scale does not shrink with the width.
    """
    s = F.normalize(student_emb.float(), dim=-1)
    t = F.normalize(teacher_emb.float(), dim=-1)
    return ((s - t) ** 2).sum()


def rel_sum(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    """Sum over rows of the squared differences between the student's and the teacher's in-batch cosine
    similarities ([rows, dim] each; the diagonal, always 1, is left out): keeps the geometry between texts, not
    only each text's own vector."""
    s = F.normalize(student_emb.float(), dim=-1)
    t = F.normalize(teacher_emb.float(), dim=-1)
    off = ~torch.eye(len(s), dtype=torch.bool, device=s.device)
    return (((s @ s.T - t @ t.T) ** 2) * off).sum()


#: Temperature of :func:`rkl_sum` (the contrastive temperature of sentence-embedding training).
RKL_TEMPERATURE = 0.05


def rkl_sum(student_emb: torch.Tensor, teacher_emb: torch.Tensor, temperature: float = RKL_TEMPERATURE) -> torch.Tensor:
    """Sum over rows of KL(teacher || student) of the softmax over the other rows' cosine similarities / T:
    the student ranks the batch's texts as the teacher does (relational / contrastive distillation)."""
    s = F.normalize(student_emb.float(), dim=-1)
    t = F.normalize(teacher_emb.float(), dim=-1)
    if len(s) < 2:
        return s.sum() * 0.0
    eye = torch.eye(len(s), dtype=torch.bool, device=s.device)
    neg = torch.finfo(torch.float32).min / 4
    sl = F.log_softmax((s @ s.T / temperature).masked_fill(eye, neg), dim=-1)
    tl = F.log_softmax((t @ t.T / temperature).masked_fill(eye, neg), dim=-1)
    return (tl.exp() * (tl - sl)).masked_fill(eye, 0.0).sum()


def task_kl_sum(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
                mask: torch.Tensor | None = None) -> torch.Tensor:
    """KL sum for task logits ([rows, classes]); ``mask`` ([rows, classes], bool) hides impossible classes."""
    if mask is not None:
        neg = torch.finfo(torch.float32).min / 4
        student_logits = student_logits.float().masked_fill(~mask, neg)
        teacher_logits = teacher_logits.float().masked_fill(~mask, neg)
    return kl_sum(student_logits, teacher_logits, temperature)
