"""``edgekit finetune``: task fine-tuning without a teacher (question answering, sequence classification).

The first step before ``edgekit distill task``, and the same loop (:func:`edgekit.distill.task.distill_task`
with no teacher: the task loss alone): SQuAD v1.1 JSON in (plain or ``.xz``) or JSON lines; question-first
windows with stride; answer character spans mapped to token spans, windows without the answer pointing at
[CLS]; a step or wall-clock budget with linear warm-up/decay fitted to it; bf16 autocast where the CPU has
native bf16; checkpoints and exact ``--resume``. Defaults are the recipe of the shared
``minilm-l6-squad`` model: windows 256, stride 128, batch 32, AdamW lr 1e-4, weight decay 0.01, 10% warm-up.
"""
from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register ``finetune`` on the top-level ``edgekit`` sub-parsers."""
    from edgekit.core.vocabulary import plain

    p = subparsers.add_parser(
        "finetune", help="fine-tune a BERT/DistilBERT model for question answering or classification (no teacher)",
        description=plain(__doc__.split("\n\n")[1]) if __doc__ else None)
    from edgekit.distill.task import add_task_args

    add_task_args(p, finetune=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgekit.core.console import quiet_backends as _quiet_backends
    from edgekit.distill.task import run_task_cli

    _quiet_backends()
    return run_task_cli(args)
