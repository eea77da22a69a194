"""SQuAD v1.1: reading the official JSON format (plain or ``.xz``) and the official EM/F1 rules.

The scoring functions follow the official ``evaluate-v1.1.py`` line for line: lowercase, drop
punctuation, drop the articles a/an/the, collapse whitespace; exact match and token-level F1, each
the maximum over a question's gold answers; totals are percentages over every question asked.
``tests/quality/test_squad.py`` pins them on the official script's behaviour and against an independent
copy of that script.
"""
from __future__ import annotations

import json
import lzma
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.core.errors import UsageError

_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


@dataclass(frozen=True)
class SquadQuestion:
    """One question with its context and every gold answer (text and character start)."""

    id: str
    question: str
    context: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...]
    title: str = ""


def read_json(path: str | Path) -> Any:
    """Parse a JSON file, transparently decompressing ``.xz``."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p} does not exist")
    try:
        if p.suffix == ".xz":
            with lzma.open(p, "rt", encoding="utf-8") as f:
                return json.load(f)
        return json.loads(p.read_text(encoding="utf-8"))
    except (lzma.LZMAError, EOFError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise UsageError(f"{p} is not a (xz-compressed) JSON file: {e}") from None


def load_squad(path: str | Path, n: int | None = None) -> list[SquadQuestion]:
    """The questions of a SQuAD v1.1 file, in file order (the first ``n`` if given).

    Accepts the official layout ``{"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}``.
    """
    obj = read_json(path)
    data = obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(data, list):
        raise UsageError(f"{path} is not in SQuAD format (expected {{\"data\": [articles with paragraphs]}})")
    out: list[SquadQuestion] = []
    try:
        for article in data:
            for para in article.get("paragraphs", []):
                context = para["context"]
                for qa in para.get("qas", []):
                    answers = qa.get("answers", [])
                    out.append(SquadQuestion(
                        id=str(qa["id"]), question=qa["question"], context=context,
                        answers=tuple(a["text"] for a in answers),
                        answer_starts=tuple(int(a.get("answer_start", -1)) for a in answers),
                        title=article.get("title", "")))
                    if n is not None and len(out) >= n:
                        return out
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        what = f"no {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
        raise UsageError(f"{path} is not in SQuAD v1.1 format (question {len(out) + 1}: {what}); expected "
                         "{\"data\": [{\"paragraphs\": [{\"context\", \"qas\": [{\"id\", \"question\", "
                         "\"answers\"}]}]}]}") from None
    if not out:
        raise UsageError(f"{path} holds no questions")
    return out


def normalize_answer(s: str) -> str:
    """Lowercase, remove punctuation, articles and extra whitespace (official v1.1 order)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def f1_score(prediction: str, ground_truth: str) -> float:
    """Token-level F1 of two answers after normalisation (0 when they share no token)."""
    pred = normalize_answer(prediction).split()
    gold = normalize_answer(ground_truth).split()
    same = sum((Counter(pred) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def max_over_ground_truths(metric: Any, prediction: str, ground_truths: Iterable[str]) -> float:
    return max(float(metric(prediction, g)) for g in ground_truths)


def evaluate(questions: Iterable[SquadQuestion], predictions: Mapping[str, str]) -> dict[str, float]:
    """``{"exact_match", "f1", "total"}`` in percent; a question without a prediction scores 0."""
    em = f1 = 0.0
    total = 0
    for q in questions:
        total += 1
        if q.id not in predictions or not q.answers:
            continue
        em += max_over_ground_truths(exact_match_score, predictions[q.id], q.answers)
        f1 += max_over_ground_truths(f1_score, predictions[q.id], q.answers)
    if total == 0:
        raise UsageError("no questions to evaluate")
    return {"exact_match": 100.0 * em / total, "f1": 100.0 * f1 / total, "total": total}
