"""How closely a student reproduces its teacher's sentence embeddings on held-out text."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from edgekit.core.errors import UsageError
from edgekit.distill.losses import mean_pool


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
    # Batches of similar length pad little (mean pooling ignores padding, so the order changes nothing else).
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer([texts[j] for j in order[i:i + batch_size]], padding=True, truncation=True,
                        max_length=max_len, return_tensors="pt", return_token_type_ids=False)
        h = enc_model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        out.append(torch.nn.functional.normalize(mean_pool(h, enc["attention_mask"]), dim=-1))
    emb = torch.cat(out) if out else torch.empty(0)
    res = torch.empty_like(emb)
    res[torch.tensor(order, dtype=torch.long)] = emb
    return res


def neighbour_recall(student_emb: torch.Tensor, teacher_emb: torch.Tensor, k: int = 10,
                     chunk: int = 1024) -> float:
    """Mean over sentences of |student's k nearest neighbours ∩ teacher's k nearest| / k (self excluded)."""
    n = len(student_emb)
    k = min(k, n - 1)
    hits = 0
    for i in range(0, n, chunk):
        rows = torch.arange(i, min(n, i + chunk))
        ss = student_emb[rows] @ student_emb.T
        tt = teacher_emb[rows] @ teacher_emb.T
        ss[torch.arange(len(rows)), rows] = -float("inf")
        tt[torch.arange(len(rows)), rows] = -float("inf")
        si = ss.topk(k, dim=1).indices
        ti = tt.topk(k, dim=1).indices
        hits += int((si.unsqueeze(2) == ti.unsqueeze(1)).any(2).sum())
    return hits / (n * k)


def agreement(student_emb: torch.Tensor, teacher_emb: torch.Tensor, k: int = 10,
              spearman_sentences: int = 2000) -> dict:
    """The held-out numbers of a student (normalised sentence embeddings, same rows as the teacher's).

    ``spearman``: rank correlation of all pairwise cosine similarities among the first ``spearman_sentences``
    sentences (2,000 sentences = ~2M pairs: the coefficient is stable to 1e-3 and costs seconds);
    ``recall_at_10``: nearest-neighbour agreement among all sentences; ``mean_cosine``: student vs teacher
    embedding of the same sentence.
    """
    s, t = student_emb.float(), teacher_emb.float()
    cos = (s * t).sum(-1)
    m = min(len(s), spearman_sentences)
    iu = torch.triu_indices(m, m, offset=1)
    ss = (s[:m] @ s[:m].T)[iu[0], iu[1]]
    tt = (t[:m] @ t[:m].T)[iu[0], iu[1]]
    return {"mean_cosine": float(cos.mean()), "min_cosine": float(cos.min()), "spearman": spearman(ss, tt),
            f"recall_at_{k}": neighbour_recall(s, t, k), "pairs": int(iu.shape[1]), "sentences": len(s)}


def compare(student: Any, teacher: Any, tokenizer: Any, texts: list[str], max_len: int = 128,
            teacher_emb: torch.Tensor | None = None) -> dict:
    """Student vs teacher sentence embeddings on ``texts``: see :func:`agreement`.

    ``teacher_emb`` (from :func:`embed`) skips the teacher's forward when several students are scored.
    """
    if len(texts) < 3:
        raise UsageError("comparison needs at least 3 held-out texts")
    s = embed(student, tokenizer, texts, max_len)
    t = teacher_emb if teacher_emb is not None else embed(teacher, tokenizer, texts, max_len)
    return agreement(s, t)


#: The three held-out numbers a student must not lose against the untrained layer cut.
METRICS = ("spearman", "recall_at_10", "mean_cosine")


def regressions(student: dict, cut: dict) -> list[str]:
    """Names of the held-out numbers on which ``student`` ends below the untrained ``cut``."""
    return [m for m in METRICS if student.get(m, float("nan")) < cut.get(m, float("nan"))]


def read_texts(path: str | os.PathLike) -> list[str]:
    """The non-empty lines of a UTF-8 text file, stripped."""
    if not Path(path).is_file():
        raise UsageError(f"text file {path} does not exist")
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def compare_folders(student: str, teacher: str, texts: str | os.PathLike, max_len: int = 128) -> dict:
    """``edgekit distill compare``: two model folders on the sentences of a text file (:func:`compare`),
    tokenised with the student's tokenizer."""
    from transformers import AutoModel

    from edgekit.distill.student import load_tokenizer

    lines = read_texts(texts)
    tok = load_tokenizer(student)
    return compare(AutoModel.from_pretrained(student), AutoModel.from_pretrained(teacher), tok, lines, max_len)
