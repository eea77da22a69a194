"""How closely a student reproduces its teacher's sentence embeddings on held-out text."""
from __future__ import annotations

from typing import Any

import torch

from ..errors import UsageError
from .losses import mean_pool


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Average ranks (ties share the mean rank), as in Spearman's definition."""
    order = torch.argsort(x, stable=True)
    r = torch.empty_like(x, dtype=torch.float64)
    r[order] = torch.arange(len(x), dtype=torch.float64)
    # Average tied values so the coefficient does not depend on sort order.
    uniq, inv = torch.unique(x, return_inverse=True)
    if len(uniq) < len(x):
        s = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inv, r)
        c = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inv, torch.ones_like(r))
        r = (s / c)[inv]
    return r


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two 1-D tensors."""
    ra, rb = _ranks(a.double()), _ranks(b.double())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = (ra.norm() * rb.norm()).item()
    return float((ra @ rb).item() / den) if den > 0 else float("nan")


@torch.inference_mode()
def embed(model: Any, tokenizer: Any, texts: list[str], max_len: int = 128, batch_size: int = 64) -> torch.Tensor:
    """Mean-pooled, L2-normalised last hidden states (the sentence-transformers embedding)."""
    enc_model = model
    for name in ("distilbert", "bert"):
        if isinstance(getattr(model, name, None), torch.nn.Module):
            enc_model = getattr(model, name)
    enc_model.eval()
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=max_len,
                        return_tensors="pt", return_token_type_ids=False)
        h = enc_model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        out.append(torch.nn.functional.normalize(mean_pool(h, enc["attention_mask"]), dim=-1))
    return torch.cat(out)


def compare(student: Any, teacher: Any, tokenizer: Any, texts: list[str], max_len: int = 128) -> dict:
    """Mean student-teacher embedding cosine and Spearman correlation of all pairwise similarities."""
    if len(texts) < 3:
        raise UsageError("comparison needs at least 3 held-out texts")
    s = embed(student, tokenizer, texts, max_len)
    t = embed(teacher, tokenizer, texts, max_len)
    cos = (s * t).sum(-1)
    iu = torch.triu_indices(len(texts), len(texts), offset=1)
    ss = (s @ s.T)[iu[0], iu[1]]
    tt = (t @ t.T)[iu[0], iu[1]]
    return {"mean_cosine": float(cos.mean()), "min_cosine": float(cos.min()), "spearman": spearman(ss, tt),
            "pairs": int(iu.shape[1]), "sentences": len(texts)}
