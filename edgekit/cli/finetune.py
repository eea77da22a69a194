"""``edgekit finetune``: registered after ``bundle`` and ``eval`` (the order of ``edgekit --help``); the
command itself lives with ``distill task`` in ``edgekit.cli.distill`` (one loop, one set of flags)."""
from __future__ import annotations

from edgekit.cli.distill import add_finetune_parser as add_parser
from edgekit.cli.distill import run_finetune

__all__ = ["add_parser", "run_finetune"]
