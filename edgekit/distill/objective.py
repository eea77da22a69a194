"""One distillation step's forward passes and loss terms.

The vocabulary projection (hidden -> 30k logits) costs more per token than a transformer layer, so it runs only
on the rows a loss reads: the hidden states of those positions are gathered *before* the projection, for
student and teacher alike. With the KL restricted to masked positions that is ~15% of the tokens; otherwise it
is the non-pad tokens. :func:`full_logits_terms` is the straightforward version (project every position, then
select) used by the benchmark and the tests to prove both give the same losses.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgekit.distill.data import Batch
from edgekit.distill.losses import (LossWeights, cos_sum, kl_sum, layers_cos_sum, mean_pool, mlm_sum, mse_sum, nmse_sum, rel_sum,
                                    rkl_sum)
from edgekit.distill.student import ENCODER, MLM, DistilBertMLMHead, Teacher

TERMS = ("ce", "mlm", "cos", "mse", "nmse", "hmse", "rel", "rkl", "hid")


class StudentStep(nn.Module):
    """Wraps the student so that DDP/FSDP see one forward: hidden states plus logits at chosen rows only."""

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.student = student
        self.kind = MLM if hasattr(student, "vocab_projector") else ENCODER
        #: Teacher layer of each student layer (``layer_map`` of the student folder); set to align every layer
        #: (the ``hid`` term): the forward then keeps all hidden states in :attr:`all_hidden`.
        self.layer_map: list[int] | None = None
        self.all_hidden: tuple | None = None

    def encoder(self) -> nn.Module:
        return self.student.distilbert if self.kind == MLM else self.student

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.layer_map is not None:
            o = self.encoder()(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
            hidden, self.all_hidden = o.last_hidden_state, o.hidden_states
        else:
            hidden = self.encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = None
        if rows is not None and self.kind == MLM:
            sel = hidden.reshape(-1, hidden.shape[-1]).index_select(0, rows)
            logits = DistilBertMLMHead(self.student)(sel)
        return hidden, logits


def rows_for(batch: Batch, weights: LossWeights, kind: str) -> torch.Tensor | None:
    """Flat indices of the positions whose logits a loss needs (None: no logits needed)."""
    if kind != MLM or (weights.ce == 0 and weights.mlm == 0):
        return None
    if weights.restrict_ce_to_mask or weights.ce == 0:
        sel = batch.labels.reshape(-1) != -100
    else:
        sel = batch.attention_mask.reshape(-1).bool()
    return sel.nonzero().squeeze(1)


@torch.inference_mode()
def _teacher_outputs(teacher: Teacher, batch: Batch, rows: torch.Tensor | None,
                     kind: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    ids = batch.input_ids if kind == MLM else batch.clean_ids
    hidden = teacher.hidden(ids, batch.attention_mask)
    logits = None
    if rows is not None:
        head = teacher.mlm_head()
        logits = head(hidden.reshape(-1, hidden.shape[-1]).index_select(0, rows))
    return hidden, logits


def teacher_outputs(teacher: Teacher, batch: Batch, rows: torch.Tensor | None,
                    kind: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Teacher hidden states and row logits, computed under inference mode.

    Inference tensors cannot be saved for backward, so the (small) results are cloned into normal tensors.
    """
    h, lg = _teacher_outputs(teacher, batch, rows, kind)
    return h.clone(), (lg.clone() if lg is not None else None)


def loss_terms(s_hidden: torch.Tensor, s_logits: torch.Tensor | None, t_hidden: torch.Tensor | None,
               t_logits: torch.Tensor | None, batch: Batch, rows: torch.Tensor | None, weights: LossWeights,
               kind: str, t_pooled: torch.Tensor | None = None,
               layer_pairs: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
               ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per-term ``(sum, count)``; ``*_logits`` hold only the ``rows`` positions (see :func:`rows_for`).

    ``layer_pairs``: (student layer output, its teacher layer's output) for the ``hid`` term.

    ``t_pooled`` (the teacher's mean-pooled embeddings, e.g. from the teacher cache) stands in for ``t_hidden``
    when no token-level term needs the teacher's hidden states.
    """
    dev = s_hidden.device
    weights = weights.resolve(kind)
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    real = batch.attention_mask.reshape(-1).bool()
    D = s_hidden.shape[-1]
    need_tokens = weights.cos > 0 or (kind != MLM and weights.hmse > 0)
    if need_tokens:
        sh, th = s_hidden.reshape(-1, D)[real], t_hidden.reshape(-1, D)[real]
    if weights.cos > 0:
        out["cos"] = (cos_sum(sh, th), real.sum())
    if kind == MLM:
        if rows is not None:
            labels = batch.labels.reshape(-1).index_select(0, rows)
            masked = labels != -100
            if weights.ce > 0:
                out["ce"] = (kl_sum(s_logits, t_logits, weights.temperature), torch.tensor(len(rows), device=dev))
            if weights.mlm > 0:
                out["mlm"] = (mlm_sum(s_logits[masked], labels[masked]), masked.sum())
    else:
        if weights.hmse > 0:
            out["hmse"] = (mse_sum(sh, th), real.sum())
        se = mean_pool(s_hidden, batch.attention_mask)
        n = torch.tensor(se.shape[0], device=dev)
        if weights.mse > 0 or weights.nmse > 0 or weights.rel > 0 or weights.rkl > 0:
            te = t_pooled if t_pooled is not None else mean_pool(t_hidden, batch.attention_mask)
            if weights.mse > 0:
                out["mse"] = (mse_sum(se, te), n)
            if weights.nmse > 0:
                out["nmse"] = (nmse_sum(se, te), n)
            if weights.rel > 0:
                out["rel"] = (rel_sum(se, te), n)
            if weights.rkl > 0:
                out["rkl"] = (rkl_sum(se, te), n)
        if weights.hid > 0:
            if not layer_pairs:
                raise ValueError("the hid term needs the student's and the teacher's per-layer hidden states")
            out["hid"] = layers_cos_sum(layer_pairs, real)
    return out


def combine(terms: dict[str, tuple[torch.Tensor, torch.Tensor]], weights: LossWeights,
            counts: dict[str, float] | None = None, scale: float = 1.0) -> torch.Tensor:
    """Weighted total: each sum divided by its count (``counts`` overrides it with a global count)."""
    # Weights left unset take their teacher kind's default; the terms tell the kind (KL/MLM only for MLM).
    weights = weights.resolve(MLM if ("ce" in terms or "mlm" in terms) else ENCODER)
    total = None
    for name, (s, n) in terms.items():
        denom = max(float(counts[name] if counts else n), 1.0)
        part = getattr(weights, name) * s / denom
        total = part if total is None else total + part
    return total * scale


def step_terms(model: nn.Module, teacher: Teacher, batch: Batch, weights: LossWeights,
               kind: str, t_pooled: torch.Tensor | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Our step: teacher and student forward with the projection only at the needed rows.

    With ``t_pooled`` (cached teacher embeddings) and only pooled terms, the teacher does not run at all.
    """
    weights = weights.resolve(kind)
    rows = rows_for(batch, weights, kind)
    hid = kind != MLM and weights.hid > 0
    token_terms = weights.cos > 0 or (kind != MLM and (weights.hmse > 0 or hid))
    t_layers = None
    if t_pooled is not None and kind != MLM and not token_terms:
        t_hidden, t_logits = None, None
    elif hid:
        t_hidden, t_layers = teacher_layers(teacher, batch)
        t_logits, t_pooled = None, None
    else:
        t_hidden, t_logits = teacher_outputs(teacher, batch, rows, kind)
        t_pooled = None
    ids = batch.input_ids if kind == MLM else batch.clean_ids
    s_hidden, s_logits = model(ids, batch.attention_mask, rows)
    pairs = None
    if hid:
        step = getattr(model, "module", model)  # DDP wraps the StudentStep
        if step.layer_map is None or step.all_hidden is None:
            raise ValueError("the hid term needs StudentStep.layer_map (the student's teacher layers)")
        pairs = [(step.all_hidden[i + 1], t_layers[L + 1]) for i, L in enumerate(step.layer_map)]
    return loss_terms(s_hidden, s_logits, t_hidden, t_logits, batch, rows, weights, kind, t_pooled=t_pooled,
                      layer_pairs=pairs)


def teacher_layers(teacher: Teacher, batch: Batch) -> tuple[torch.Tensor, tuple]:
    """An encoder-only teacher's last hidden states and every layer's output (embeddings first)."""
    with torch.inference_mode():
        o = teacher.encoder()(input_ids=batch.clean_ids, attention_mask=batch.attention_mask,
                              output_hidden_states=True)
    return o.last_hidden_state.clone(), tuple(h.clone() for h in o.hidden_states)


def full_logits_terms(student: nn.Module, teacher: Teacher, batch: Batch,
                      weights: LossWeights) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Reference: full models' forward with logits for every position, then select rows for the losses."""
    with torch.no_grad():
        t_out = teacher.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                              output_hidden_states=True)
    s_out = student(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True)
    D = s_out.hidden_states[-1].shape[-1]
    V = s_out.logits.shape[-1]
    real = batch.attention_mask.reshape(-1).bool()
    labels = batch.labels.reshape(-1)
    masked = labels != -100
    s_lg, t_lg = s_out.logits.reshape(-1, V), t_out.logits.reshape(-1, V)
    ce_sel = masked if weights.restrict_ce_to_mask else real
    out: dict[str, Any] = {
        "cos": (cos_sum(s_out.hidden_states[-1].reshape(-1, D)[real], t_out.hidden_states[-1].reshape(-1, D)[real]),
                real.sum()),
    }
    if weights.ce > 0:
        out["ce"] = (kl_sum(s_lg[ce_sel], t_lg[ce_sel], weights.temperature), ce_sel.sum())
    if weights.mlm > 0:
        out["mlm"] = (mlm_sum(s_lg[masked], labels[masked]), masked.sum())
    return out
