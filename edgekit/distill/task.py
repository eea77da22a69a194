"""Task-specific distillation (placeholder, filled below)."""
from __future__ import annotations

import argparse


def add_task_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--teacher", required=True)
