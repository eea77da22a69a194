"""``edgekit finetune``: task fine-tuning without a teacher (question answering, sequence classification).

The first step before ``edgekit distill task``, and the same loop (:func:`edgekit.distill.task.distill_task`
with no teacher: the task loss alone): SQuAD v1.1 JSON in (plain or ``.xz``) or JSON lines; question-first
windows with stride; answer character spans mapped to token spans, windows without the answer pointing at
[CLS]; a step or wall-clock budget with linear warm-up/decay fitted to it; bf16 autocast where the CPU has
native bf16; checkpoints and exact ``--resume``. Defaults are the recipe of the shared
``minilm-l6-squad`` model: windows 256, stride 128, batch 32, AdamW lr 1e-4, weight decay 0.01, 10% warm-up.
"""
from __future__ import annotations

from edgekit.core.errors import UsageError
from edgekit.distill.task import TaskConfig, distill_task


def finetune(cfg: TaskConfig) -> dict:
    """Fine-tune ``cfg.student`` on the task with the task loss alone (``cfg.teacher`` must be None);
    returns the card, as :func:`edgekit.distill.task.distill_task`."""
    if cfg.teacher is not None:
        raise UsageError("fine-tuning takes no teacher; use edgekit distill task to distil from one")
    return distill_task(cfg)
