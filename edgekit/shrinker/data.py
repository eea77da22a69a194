"""The data of one shrink run: TRAIN split into the rows the student trains on and a held-out slice
that chooses the layer map and the checkpoint (DEV never does), and DEV for the candidates.

Question answering: a held-out question's context is never trained on (the slice is whole
contexts, taken from the end of the file, as ``benchmarks/results/squad_quality.md`` held out the
last 100 train questions by hand). Sequence classification: the last rows.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.core.errors import UsageError
from edgekit.core.record import atomic_write_text

QA = "question-answering"
SEQ_CLS = "sequence-classification"


@dataclass(frozen=True)
class Split:
    """Where the two parts of TRAIN were written, and how many rows each holds."""

    train: Path
    heldout: Path
    n_train: int
    n_heldout: int

    def to_dict(self) -> dict[str, Any]:
        return {"train": str(self.train), "heldout": str(self.heldout), "n_train": self.n_train,
                "n_heldout": self.n_heldout}


def split_train(task: str, data: str | Path, folder: Path, heldout_n: int = 100) -> Split:
    """Write ``folder/train.jsonl`` and ``folder/heldout.jsonl`` from TRAIN (SQuAD v1.1 JSON or JSON lines).

    The held-out slice holds about ``heldout_n`` rows (at most a fifth of TRAIN, at least one); for
    QA it is cut at a context boundary, so no held-out context is in the training part."""
    from edgekit.quality.data import read_records

    rows = read_records(data)
    if len(rows) < 2:
        raise UsageError(f"--data {data} holds {len(rows)} example(s): the held-out slice needs at least 2")
    want = max(1, min(int(heldout_n), len(rows) // 5 or 1))
    if task == QA:
        for k in ("question", "context", "answers"):
            if k not in rows[0]:
                raise UsageError(f"--data {data}: question-answering records need 'question', 'context' and "
                                 f"'answers' (missing {k!r})")
        cut = len(rows) - want
        ctx = rows[cut]["context"]
        while cut > 0 and rows[cut - 1]["context"] == ctx:  # whole contexts on one side
            cut -= 1
        if cut == 0:  # one context only: the held-out slice cannot be disjoint; take its last questions
            cut = len(rows) - want
        seen = {r["context"] for r in rows[cut:]}
        train = [r for r in rows[:cut] if r["context"] not in seen] or rows[:cut]
        held = rows[cut:]
        for i, r in enumerate(held):
            r.setdefault("id", f"heldout-{i}")
    else:
        if "text" not in rows[0] or "label" not in rows[0]:
            raise UsageError(f"--data {data}: sequence-classification records need 'text' and 'label'")
        train, held = rows[:-want], rows[-want:]
    folder.mkdir(parents=True, exist_ok=True)
    paths = (folder / "train.jsonl", folder / "heldout.jsonl")
    for path, part in zip(paths, (train, held)):
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part))
    return Split(paths[0], paths[1], len(train), len(held))


def heldout_questions(task: str, path: Path) -> list[Any]:
    """The held-out slice in the shape the evaluator takes: SQuAD questions, or classification rows."""
    from edgekit.quality.data import read_records
    from edgekit.quality.squad import SquadQuestion

    rows = read_records(path)
    if task != QA:
        return rows
    return [SquadQuestion(id=str(r.get("id", i)), question=r["question"], context=r["context"],
                          answers=tuple(r["answers"]["text"]), answer_starts=tuple(r["answers"]["answer_start"]))
            for i, r in enumerate(rows)]


def dev_data(task: str, path: str | Path, n: int | None = None) -> tuple[str, Any]:
    """DEV as the evaluator reads it (``quality.evaluate.load_data``): SQuAD v1.1 for QA, JSON lines else."""
    from edgekit.quality.evaluate import load_data

    return load_data(task, str(path) if task == QA else None, str(path) if task != QA else None, n)


def dev_keyed(task: str, answers: dict[str, Any], start: int) -> dict[str, Any]:
    """Answers to DEV items ``start`` … keyed as for the whole of DEV: a QA answer's key is its question id
    already; a classification row's is its position, which the scorers count from 0 in the slice they get."""
    if task == QA or not start:
        return answers
    return {str(int(k) + start): v for k, v in answers.items()}


def write_calibration(task: str, train: Path, path: Path, n: int = 256) -> Path:
    """Calibration text for int8-static from the training part (never DEV): ``question<TAB>context``
    per line for QA (the pair as the model answers it), the text (and its pair) for classification."""
    from edgekit.quality.data import read_records

    lines = []
    for r in read_records(train, n):
        if task == QA:
            a, b = r["question"], r["context"]
        else:
            a, b = r["text"], r.get("text_pair")
        a = " ".join(str(a).split())
        lines.append(a if b is None else a + "\t" + " ".join(str(b).split()))
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
