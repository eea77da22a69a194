"""Shared fixtures: tiny BERT / DistilBERT checkpoints built from configs with fixed seeds.

Nothing is downloaded: the tokenizer is a small WordPiece vocabulary written here.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edgekit.core.tasks import Task
from tiny_models import HF_CLASSES, WORDS, build_tiny, write_vocab  # noqa: F401 - re-exported for tests

@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Factory: ``tiny_model(arch, task)`` -> path of a cached tiny checkpoint."""
    cache: dict[tuple[str, str], Path] = {}

    def make(arch: str = "distilbert", task: Task | str = Task.QUESTION_ANSWERING, **kw) -> Path:
        key = (arch, str(task), tuple(sorted(kw.items())))
        if key not in cache:
            cache[key] = build_tiny(tmp_path_factory.mktemp(f"{arch}-{task}"), arch, task, **kw)
        return cache[key]

    return make


@pytest.fixture
def one_thread():
    """Tiny models on a shared CPU: one torch thread is ~10x faster than an oversubscribed pool."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
