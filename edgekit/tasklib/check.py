"""Does the Task Library, run on an exported file, agree with edgekit's own answers on the same file?

Question answering: ``BertQuestionAnswerer``'s top answer vs edgekit's QA pipeline (``edgekit.qa``)
driven by the LiteRT interpreter on the same .tflite. Classification: ``BertNLClassifier``'s top
label vs the argmax of the LiteRT interpreter's logits on edgekit's tokenisation.

The Task Library's QA post-processing differs from edgekit's on purpose-built edge cases (it only
looks at the 5 highest start and end logits over the whole padded sequence, splits the context on
spaces, truncates it to one 384-token window and returns whole space-separated words), so the
check uses single-window contexts and compares answers after :func:`normalize_answer`.
"""
from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import TFLITE_SUPPORT, answer, classify, unavailable

#: Task Library constants (bert_question_answerer.h): answers are at most 32 tokens long.
TASK_LIBRARY_MAX_ANSWER_LEN = 32

#: Questions over contexts that fit one window, with answers not glued to punctuation.
QA_CHECK_PAIRS: tuple[tuple[str, str], ...] = (
    ("where is the tower", "the tower is in paris france and the bridge is in london england"),
    ("which city is the capital of france", "paris france is the capital and largest city of the country"),
    ("where does the river flow", "the river seine flows through paris france to the north west of the country"),
    ("what is in london", "the museum of art is in london england and the tower bridge was built in the first year"),
    ("who jumps over the dog", "a quick brown fox jumps over the lazy dog in paris france"),
)

CLASSIFIER_CHECK_TEXTS: tuple[str, ...] = (
    "the quick brown fox jumps over the lazy dog",
    "the tower is in paris france",
    "the bridge is in london england",
    "a small fast model on the phone",
    "the museum was built in the first year of the war",
    "what is the name of the river",
    "people of the world",
)


@dataclass
class ClientCheck:
    """The Task Library client's verdict on one file."""

    client: str
    status: str                     # "agreed" | "disagreed" | "skipped" | "error"
    agreement: float | None = None
    reason: str | None = None
    cases: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalize_answer(text: str) -> str:
    """Lower-case, collapse whitespace, strip punctuation at both ends (the Task Library keeps it)."""
    return " ".join(text.lower().split()).strip(string.punctuation + " ")


def edgekit_answers(runner: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], seq_len: int) -> list[str]:
    """edgekit's QA pipeline on the .tflite file (LiteRT interpreter), configured like the Task Library."""
    from ..qa import QAConfig, QAPipeline

    def logits(ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = runner.run({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        return out["start_logits"], out["end_logits"]

    cfg = QAConfig(max_seq_len=seq_len, doc_stride=min(128, seq_len // 4), max_answer_len=TASK_LIBRARY_MAX_ANSWER_LEN,
                   pad_to=seq_len)
    pipe = QAPipeline(tokenizer, logits, cfg)
    out = []
    for q, c in pairs:
        answers = pipe(q, c)
        out.append(answers[0].text if answers else "")
    return out


def edgekit_labels(runner: Any, tokenizer: Any, texts: Sequence[str], labels: Sequence[str], seq_len: int) -> list[str]:
    """Argmax label of the LiteRT interpreter's logits for each text, tokenised by the checkpoint's tokenizer."""
    out = []
    for t in texts:
        enc = tokenizer(t, padding="max_length", truncation=True, max_length=seq_len, return_tensors="np")
        feed = {"input_ids": enc["input_ids"].astype(np.int32), "attention_mask": enc["attention_mask"].astype(np.int32),
                "token_type_ids": np.zeros_like(enc["input_ids"], dtype=np.int32)}
        out.append(labels[int(np.asarray(runner.run(feed)["logits"]).reshape(-1).argmax())])
    return out


def check_question_answering(path: Path, runner: Any, tokenizer: Any, seq_len: int,
                             pairs: Sequence[tuple[str, str]] = QA_CHECK_PAIRS, env: Path | None = None) -> ClientCheck:
    client = f"{TFLITE_SUPPORT} BertQuestionAnswerer"
    reason = unavailable(env)
    if reason:
        return ClientCheck(client, "skipped", reason=reason)
    theirs = answer(path, list(pairs), env)
    ours = edgekit_answers(runner, tokenizer, pairs, seq_len)
    cases = []
    for (q, c), t, o in zip(pairs, theirs, ours):
        top = t[0]["text"] if t else ""
        cases.append({"question": q, "context": c, "task_library": top, "edgekit": o,
                      "same": normalize_answer(top) == normalize_answer(o) and bool(o)})
    return _verdict(client, cases)


def check_classification(path: Path, runner: Any, tokenizer: Any, labels: Sequence[str], seq_len: int,
                         texts: Sequence[str] = CLASSIFIER_CHECK_TEXTS, env: Path | None = None) -> ClientCheck:
    client = f"{TFLITE_SUPPORT} BertNLClassifier"
    reason = unavailable(env)
    if reason:
        return ClientCheck(client, "skipped", reason=reason)
    theirs = classify(path, list(texts), env)
    ours = edgekit_labels(runner, tokenizer, texts, labels, seq_len)
    cases = []
    for text, t, o in zip(texts, theirs, ours):
        top = max(t, key=lambda c: c["score"]) if t else None
        cases.append({"text": text, "task_library": top["label"] if top else None, "edgekit": o,
                      "same": top is not None and top["label"] == o})
    return _verdict(client, cases)


def _verdict(client: str, cases: list[dict[str, Any]]) -> ClientCheck:
    same = sum(c["same"] for c in cases)
    agreement = same / len(cases) if cases else 0.0
    if same == len(cases) and cases:
        return ClientCheck(client, "agreed", agreement, None, cases)
    bad = [c for c in cases if not c["same"]]
    first = bad[0]
    what = first.get("question") or first.get("text")
    return ClientCheck(client, "disagreed", agreement,
                       f"the Task Library disagrees with edgekit on {len(bad)}/{len(cases)} inputs, e.g. {what!r}: "
                       f"Task Library {first['task_library']!r} vs edgekit {first['edgekit']!r}", cases)
