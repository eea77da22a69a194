"""Golden inputs for parity: random token ids and real tokenised sentences, with padding.

Every feed is batch 1, int32, [1, S]: the shape mobile artifacts are exported for.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .tasks import Task

SENTENCES = (
    "The Eiffel Tower was built in 1889 for the World's Fair in Paris.",
    "edgekit exports BERT-family models to phones and checks every file.",
    "A quick brown fox jumps over the lazy dog!",
    "Crème brûlée and café au lait — naïve accents, résumé.",
    "Where does the Seine flow? Through Paris, then into the English Channel.",
    "数字 and emoji 🙂 mixed with ASCII text.",
    "Short.",
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light.",
)

QA_PAIRS = (
    ("Where was the tower built?", "The Eiffel Tower was built in 1889 for the World's Fair in Paris."),
    ("What does edgekit export?", "edgekit exports BERT-family models to phones and checks every file."),
    ("Which river flows through Paris?", "The Seine flows through Paris and then into the English Channel."),
    ("When was it built?", "The bridge was built in 1894 and the museum opened a century later."),
)


def _with_types(feed: dict[str, np.ndarray], types: np.ndarray | None, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    if "token_type_ids" in names:
        feed["token_type_ids"] = (types if types is not None else np.zeros_like(feed["input_ids"])).astype(np.int32)
    return feed


def random_feeds(
    vocab_size: int, seq_len: int, input_names: tuple[str, ...], n: int = 4, seed: int = 0,
    special_ids: tuple[int, int, int] = (0, 101, 102),
) -> list[dict[str, np.ndarray]]:
    """``n`` random sequences: the first fills ``seq_len``, the others are padded to shorter lengths."""
    rng = np.random.default_rng(seed)
    pad, cls, sep = special_ids
    feeds = []
    lo = min(1000, vocab_size // 2)  # skip the special/unused rows at the start of BERT vocabularies
    for i in range(n):
        length = seq_len if i == 0 else int(rng.integers(max(3, seq_len // 4), seq_len))
        ids = np.full((1, seq_len), pad, dtype=np.int32)
        ids[0, :length] = rng.integers(lo, vocab_size, size=length)
        ids[0, 0], ids[0, length - 1] = cls % vocab_size, sep % vocab_size
        mask = np.zeros((1, seq_len), dtype=np.int32)
        mask[0, :length] = 1
        types = np.zeros((1, seq_len), dtype=np.int32)
        types[0, length // 2:length] = 1
        feeds.append(_with_types({"input_ids": ids, "attention_mask": mask}, types, input_names))
    return feeds


def text_feeds(tokenizer: Any, task: Task, seq_len: int, input_names: tuple[str, ...]) -> list[dict[str, np.ndarray]]:
    """Real sentences (or question/context pairs for QA) tokenised and padded to ``seq_len``."""
    if task == Task.QUESTION_ANSWERING:
        questions, contexts = [q for q, _ in QA_PAIRS], [c for _, c in QA_PAIRS]
        try:
            enc = tokenizer(questions, contexts, padding="max_length", truncation="only_second", max_length=seq_len,
                            return_tensors="np", return_token_type_ids=True)
        except Exception:  # noqa: BLE001 - at very short lengths the question alone does not fit
            enc = tokenizer(questions, contexts, padding="max_length", truncation="longest_first", max_length=seq_len,
                            return_tensors="np", return_token_type_ids=True)
    else:
        enc = tokenizer(list(SENTENCES), padding="max_length", truncation=True, max_length=seq_len,
                        return_tensors="np", return_token_type_ids=True)
    feeds = []
    for i in range(enc["input_ids"].shape[0]):
        feed = {
            "input_ids": enc["input_ids"][i:i + 1].astype(np.int32),
            "attention_mask": enc["attention_mask"][i:i + 1].astype(np.int32),
        }
        feeds.append(_with_types(feed, enc["token_type_ids"][i:i + 1], input_names))
    return feeds


def golden_feeds(
    vocab_size: int, task: Task, seq_len: int, input_names: tuple[str, ...], tokenizer: Any = None,
    n_random: int = 4, seed: int = 0,
) -> list[dict[str, np.ndarray]]:
    """Random feeds plus, when a tokenizer is given, real tokenised text."""
    special = (0, 101, 102)
    if tokenizer is not None:
        special = (tokenizer.pad_token_id or 0, tokenizer.cls_token_id or 0, tokenizer.sep_token_id or 0)
    feeds = random_feeds(vocab_size, seq_len, input_names, n=n_random, seed=seed, special_ids=special)
    if tokenizer is not None:
        feeds += text_feeds(tokenizer, task, seq_len, input_names)
    return feeds


def calibration_feeds(
    tokenizer: Any, task: Task, seq_len: int, input_names: tuple[str, ...], texts: list[str] | None = None,
) -> list[dict[str, np.ndarray]]:
    """Representative inputs for static quantisation: the user's texts, or the embedded sentences."""
    texts = texts or list(SENTENCES) + [f"{q} {c}" for q, c in QA_PAIRS]
    feeds = []
    for text in texts:
        enc = tokenizer(text, padding="max_length", truncation=True, max_length=seq_len, return_tensors="np",
                        return_token_type_ids=True)
        feed = {"input_ids": enc["input_ids"].astype(np.int32), "attention_mask": enc["attention_mask"].astype(np.int32)}
        feeds.append(_with_types(feed, enc["token_type_ids"], input_names))
    return feeds
