"""Golden inputs for parity: random token ids and real tokenised sentences, with padding.

Every feed is batch 1, int32, [1, S]: the shape mobile artifacts are exported for.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgekit.core.errors import UsageError
from edgekit.core.tasks import Task

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


def encode(tokenizer: Any, texts: Any, contexts: Any, seq_len: int) -> Any:
    """Texts padded to ``seq_len`` as numpy arrays with token types. With ``contexts``, (question,
    context) pairs as segments A and B, the context truncated, never the question: how parity,
    calibration and the apps feed a QA model. Strings or lists of strings."""
    kw = {"padding": "max_length", "max_length": seq_len, "return_tensors": "np", "return_token_type_ids": True}
    if contexts is None:
        return tokenizer(texts, truncation=True, **kw)
    try:
        return tokenizer(texts, contexts, truncation="only_second", **kw)
    except Exception:  # noqa: BLE001 - at very short lengths the question alone does not fit
        return tokenizer(texts, contexts, truncation="longest_first", **kw)


def text_feeds(tokenizer: Any, task: Task, seq_len: int, input_names: tuple[str, ...],
               pairs: Sequence[tuple[str, str]] | None = None,
               sentences: Sequence[str] | None = None) -> list[dict[str, np.ndarray]]:
    """Real sentences (or question/context pairs for QA) tokenised and padded to ``seq_len``.

    ``pairs``/``sentences``: the texts (default: the few built-in ones; parity passes the shipped
    real-text samples of ``edgekit.model.samples``)."""
    if task == Task.QUESTION_ANSWERING:
        pairs = list(QA_PAIRS if pairs is None else pairs)
        enc = encode(tokenizer, [q for q, _ in pairs], [c for _, c in pairs], seq_len)
    else:
        enc = encode(tokenizer, list(SENTENCES if sentences is None else sentences), None, seq_len)
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


#: Fewer calibration samples than this give unreliable activation ranges (a note, not an error).
MIN_CALIBRATION_SAMPLES = 100
#: Samples used when more are given: activation ranges settle well before this.
MAX_CALIBRATION_SAMPLES = 256


def read_calibration_texts(path: Path) -> list[str]:
    """One sample per non-empty line of a UTF-8 text file; an unreadable or empty file is a UsageError."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read calibration file {path}: {e}; give a UTF-8 text file, one sample per line") from None
    texts = [ln.strip() for ln in lines if ln.strip()]
    if not texts:
        raise UsageError(f"calibration file {path} has no text: give one sample per line")
    return texts


#: In a calibration file, a tab splits a line into the two texts of a pair (question, context).
PAIR_SEPARATOR = "\t"


def calibration(tokenizer: Any, task: Task, seq_len: int, input_names: tuple[str, ...], path: Path | None = None,
                notes: list[str] | None = None, purpose: str = "int8-static",
                ) -> tuple[list[dict[str, np.ndarray]], dict[str, Any]]:
    """The one calibration reader: representative feeds for static quantisation, and what they were.

    The user's file (``path``: UTF-8, one sample per line, the first ``MAX_CALIBRATION_SAMPLES``
    used; a tab splits a line into a pair, ``question<TAB>context``) or edgekit's embedded
    sentences, tokenised and padded to ``seq_len``. A pair is encoded as the model sees it at
    run time, the second text as segment B: activation ranges calibrated on one flat segment
    miss what token type 1 and the [SEP] between the texts do to the activations. Without a
    tokenizer there is no representative text: a UsageError. Fewer than
    ``MIN_CALIBRATION_SAMPLES`` is allowed but said, on the console and in ``notes``, and so is a
    question-answering file with no pair in it. ``purpose`` names what calibrates (the precision,
    or a recipe such as int8-dynamic smoothing) in those messages.
    """
    if tokenizer is None:
        instead = "int8-dynamic" if purpose == "int8-static" else "a recipe that needs no calibration"
        raise UsageError(f"{purpose} calibrates on tokenised text, but the model folder has no tokenizer: "
                         f"add one (tokenizer.json or vocab.txt) or choose {instead}")
    samples: list[tuple[str, str | None]]  # (text, context or None)
    if path is not None:
        split = (t.partition(PAIR_SEPARATOR) for t in read_calibration_texts(path))
        samples = [(text, context if tab else None) for text, tab, context in split]
    else:  # pairs only for a model that answers pairs: an embedding model never sees segment B
        pairs_as = QA_PAIRS if task == Task.QUESTION_ANSWERING else [(f"{q} {c}", None) for q, c in QA_PAIRS]
        samples = [*((t, None) for t in SENTENCES), *pairs_as]
    given = len(samples)
    samples = samples[:MAX_CALIBRATION_SAMPLES]
    feeds = []
    for sample in samples:
        enc = encode(tokenizer, *sample, seq_len)
        feed = {"input_ids": enc["input_ids"].astype(np.int32), "attention_mask": enc["attention_mask"].astype(np.int32)}
        feeds.append(_with_types(feed, enc["token_type_ids"], input_names))
    pairs = sum(context is not None for _, context in samples)
    source = str(path) if path is not None else "embedded default sentences"
    info: dict[str, Any] = {"source": source, "samples": len(feeds)}
    if pairs:
        info["pairs"] = pairs
    if given > len(feeds):
        info["lines_given"] = given
    warnings = []
    if task == Task.QUESTION_ANSWERING and path is not None and not pairs:
        warnings.append(f"{source} has no question<TAB>context line: the question-answering model was calibrated "
                        "on single texts, not on the (question, context) pairs it answers")
    if len(feeds) < MIN_CALIBRATION_SAMPLES:
        warnings.append(f"{purpose} calibrated on only {len(feeds)} samples ({source}); give at least "
                        f"{MIN_CALIBRATION_SAMPLES} representative lines with --calibration FILE")
    if warnings:
        from edgekit.core.console import console

        for msg in warnings:
            console.print(f"    [yellow]warning[/]: {msg}")
        if notes is not None:
            notes.extend(warnings)
    return feeds, info
