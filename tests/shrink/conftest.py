"""Tiny teachers and a tiny SQuAD slice for ``edgekit shrink`` (seconds of training)."""
from __future__ import annotations

import json
import lzma
from pathlib import Path

import pytest

from tiny_models import WORDS, build_tiny

SLICE = Path(__file__).parents[1] / "data" / "squad-dev-50.json.xz"
#: Training settings that make a run take seconds: short windows, small batches.
TINY_TRAINING = {"batch_size": 4, "max_len": 128, "doc_stride": 32}


@pytest.fixture(scope="session")
def qa_teacher(tmp_path_factory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("shrink-qa-teacher"), "bert", "question-answering", layers=2)


@pytest.fixture(scope="session")
def cls_teacher(tmp_path_factory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("shrink-cls-teacher"), "bert", "sequence-classification", layers=2)


def squad(path: Path, garble: bool = False, n: int | None = None) -> Path:
    """The 50-question slice as plain SQuAD JSON; ``garble``: every gold answer replaced by nonsense."""
    d = json.loads(lzma.open(SLICE, "rt", encoding="utf-8").read())
    kept = 0
    for a in d["data"]:
        for p in a["paragraphs"]:
            if n is not None:
                p["qas"] = p["qas"][:max(0, n - kept)]
                kept += len(p["qas"])
            if garble:
                for q in p["qas"]:
                    q["answers"] = [{"text": "zqx vvk", "answer_start": 0} for _ in q["answers"]]
    d["data"] = [a for a in d["data"] if any(p["qas"] for p in a["paragraphs"])]
    path.write_text(json.dumps(d))
    return path


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
