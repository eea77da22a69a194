"""Tiny teachers and a tiny SQuAD slice for ``edgekit shrink`` (seconds of training)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from shrink_fixtures import SLICE, squad
from tiny_models import WORDS, build_tiny


@pytest.fixture(scope="session")
def qa_teacher(tmp_path_factory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("shrink-qa-teacher"), "bert", "question-answering", layers=2)


@pytest.fixture(scope="session")
def cls_teacher(tmp_path_factory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("shrink-cls-teacher"), "bert", "sequence-classification", layers=2)


@pytest.fixture(scope="session")
def train_file() -> Path:
    return SLICE


@pytest.fixture(scope="session")
def dev_file(tmp_path_factory) -> Path:
    return squad(tmp_path_factory.mktemp("shrink-dev") / "dev.json", n=30)


@pytest.fixture(scope="session")
def cls_files(tmp_path_factory) -> tuple[Path, Path]:
    import random

    rng = random.Random(0)
    d = tmp_path_factory.mktemp("shrink-cls-data")
    labels = ["NEGATIVE", "POSITIVE", "NEUTRAL"]

    def rows(n: int) -> str:
        return "".join(json.dumps({"text": " ".join(rng.choice(WORDS) for _ in range(8)),
                                   "label": rng.choice(labels)}) + "\n" for _ in range(n))

    (d / "train.jsonl").write_text(rows(60))
    (d / "dev.jsonl").write_text(rows(20))
    return d / "train.jsonl", d / "dev.jsonl"
