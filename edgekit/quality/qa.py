"""Reference extractive question answering: the pipeline the Android and iOS demos reproduce.

The steps, each mirrored line for line by ``android-demo/.../QaDecoder.kt`` and
``ios-demo/EdgekitQA/Sources/EdgekitQA/QaDecoder.swift``:

1. Tokenise question and context separately (WordPiece, with each token's character span
   and the span of the whole pre-tokenised word it came from).
2. Cut the context into windows of at most ``max_seq_len - len(question) - 3`` tokens that
   start every ``window - doc_stride`` tokens, and build ``[CLS] question [SEP] window [SEP]``
   for each one, so long contexts are read completely instead of being truncated.
3. Run the model on every window (any callable returning start/end logits: PyTorch, or an
   exported artifact).
4. In each window: mask everything but context tokens and [CLS], softmax start and end logits,
   zero [CLS], score every span ``start <= end < start + max_answer_len`` by
   ``p_start * p_end``, keep the ``top_k`` best.
5. Merge the windows' candidates, sort by score, keep ``top_k``, and map token spans back to
   character spans of the context (widened to whole words, as transformers does).

This is the algorithm of transformers 4.x ``QuestionAnsweringPipeline`` (removed in
transformers 5); ``tests/quality/test_qa.py`` checks it against transformers' own tokenizer windows
and its ``select_starts_ends`` span decoder. Scores are computed in float64 here and on the
devices, so all three implementations rank spans identically.

Character positions are Unicode code point indices (Python ``str`` indices), on every platform.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgekit.core.errors import UsageError
from edgekit.core.geometry import DEFAULT_MAX_ANSWER_LEN as GEOMETRY_MAX_ANSWER_LEN
from edgekit.core.geometry import DEFAULT_QA_LENGTH, stride_for

#: ``(input_ids, attention_mask, token_type_ids)`` each int32 ``[1, S]`` -> ``(start_logits, end_logits)`` ``[1, S]``.
LogitsFn = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

# The defaults are the one QA geometry's (edgekit.core.geometry), never numbers of this module's own.
DEFAULT_MAX_SEQ_LEN = DEFAULT_QA_LENGTH
DEFAULT_DOC_STRIDE = stride_for(DEFAULT_QA_LENGTH)
DEFAULT_MAX_ANSWER_LEN = GEOMETRY_MAX_ANSWER_LEN
# exp(-10000) is exactly 0.0 in float64: masked tokens take no probability mass.
_MASKED_LOGIT = -10000.0


@dataclass(frozen=True)
class TokenizedText:
    """WordPiece ids of one text (no special tokens) with character spans into that text."""

    ids: list[int]
    offsets: list[tuple[int, int]]  # each token's [start, end) in code points
    words: list[tuple[int, int]]    # [start, end) of the pre-tokenised word each token belongs to


@dataclass(frozen=True)
class Window:
    """One model input: ``[CLS] question [SEP] context[first:first+n] [SEP]``, optionally padded."""

    input_ids: list[int]
    attention_mask: list[int]
    token_type_ids: list[int]
    context_start: int   # index in input_ids of the first context token
    context_first: int   # index in the context's token list of that token
    context_len: int     # number of context tokens in this window


@dataclass(frozen=True)
class Answer:
    text: str
    start: int   # code point index into the context
    end: int     # exclusive
    score: float
    window: int = -1       # which window produced it (-1: the "no answer" entry)
    token_start: int = -1  # token indices inside that window
    token_end: int = -1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QAConfig:
    """Every knob of the pipeline. The same values go into golden.json for the apps."""

    max_seq_len: int = DEFAULT_MAX_SEQ_LEN
    doc_stride: int = DEFAULT_DOC_STRIDE
    max_answer_len: int = DEFAULT_MAX_ANSWER_LEN
    top_k: int = 1
    handle_impossible_answer: bool = False
    align_to_words: bool = True
    pad_to: int | None = None  # pad every window to this length (fixed-shape artifacts)
    #: Multi-length artifacts (TFLite ``s128``/``s256``/``s384``, Core ML enumerated shapes, dynamic
    #: ONNX/ExecuTorch validated at these lengths): pad to the smallest that holds the whole
    #: question + context (``pick_seq_len``), as the apps do; max_seq_len is the longest.
    buckets: tuple[int, ...] | None = None

    @classmethod
    def from_geometry(cls, geometry: Any, *, pad_to: int | None = None, **knobs: Any) -> "QAConfig":
        """The pipeline settings of a file's QA geometry (``edgekit.core.geometry.QAGeometry``):
        windows of its longest length, its stride and answer length; several lengths are buckets."""
        if geometry.buckets is not None and pad_to is None:
            knobs.setdefault("buckets", geometry.buckets)
        elif pad_to is None:
            pad_to = geometry.max_len
        return cls(max_seq_len=geometry.max_len, doc_stride=geometry.doc_stride,
                   max_answer_len=geometry.max_answer_len, pad_to=pad_to, **knobs)

    def __post_init__(self) -> None:
        if self.max_seq_len < 8:
            raise UsageError(f"max_seq_len must be at least 8, got {self.max_seq_len}")
        if self.doc_stride < 0:
            raise UsageError(f"doc_stride must be >= 0, got {self.doc_stride}")
        if self.max_answer_len < 1 or self.top_k < 1:
            raise UsageError("max_answer_len and top_k must be at least 1")
        if self.buckets is not None:
            object.__setattr__(self, "buckets", tuple(sorted(int(b) for b in self.buckets)))
            if self.pad_to is not None:
                raise UsageError("give pad_to (one length) or buckets (several), not both")
            if not self.buckets or max(self.buckets) < self.max_seq_len:
                raise UsageError(
                    f"the longest bucket ({max(self.buckets, default=0)}) is shorter than max_seq_len "
                    f"({self.max_seq_len}); set max_seq_len to the artifact's longest length"
                )
        if self.pad_to is not None and self.pad_to < self.max_seq_len:
            raise UsageError(
                f"pad_to ({self.pad_to}) is shorter than max_seq_len ({self.max_seq_len}); "
                "set max_seq_len to the artifact's sequence length"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["buckets"] is None:
            del d["buckets"]  # single-length configs read as before (golden files, app decoders)
        else:
            d["buckets"] = list(d["buckets"])
        return d

    def padded_length(self, question_tokens: int, context_tokens: int) -> int | None:
        """The length every window of a question is padded to: with buckets, ``pick_seq_len``;
        else ``pad_to``, else None (no padding)."""
        if self.buckets:
            return pick_seq_len(self.buckets, question_tokens, context_tokens)
        return self.pad_to


def pick_seq_len(seq_lens: Sequence[int], question_tokens: int, context_tokens: int) -> int:
    """The length an app runs: the smallest bucket holding [CLS] q [SEP] c [SEP], else the longest
    (whose windows then cover the context). The Android and iOS apps implement the same rule."""
    lens = sorted(seq_lens)
    need = question_tokens + context_tokens + 3
    return next((n for n in lens if n >= need), lens[-1])


@dataclass
class SpecialIds:
    cls: int
    sep: int
    pad: int


def tokenize(tokenizer: Any, text: str) -> TokenizedText:
    """Tokenise ``text`` with a Hugging Face *fast* tokenizer, keeping offsets and word spans."""
    if not getattr(tokenizer, "is_fast", False):
        raise UsageError("the QA pipeline needs a fast (tokenizers-backed) tokenizer for character offsets")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False, padding=False,
                    verbose=False)
    ids = list(enc["input_ids"])
    offsets = [(int(s), int(e)) for s, e in enc["offset_mapping"]]
    word_ids = enc.word_ids()
    spans: dict[int, tuple[int, int]] = {}
    for (s, e), w in zip(offsets, word_ids):
        if w is None:
            continue
        if w in spans:
            spans[w] = (min(spans[w][0], s), max(spans[w][1], e))
        else:
            spans[w] = (s, e)
    words = [spans[w] if w is not None else off for off, w in zip(offsets, word_ids)]
    return TokenizedText(ids, offsets, words)


def special_ids(tokenizer: Any) -> SpecialIds:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise UsageError("the QA pipeline needs a BERT-style tokenizer with [CLS] and [SEP] tokens")
    return SpecialIds(int(tokenizer.cls_token_id), int(tokenizer.sep_token_id), int(pad))


def make_windows(question: Sequence[int], context: Sequence[int], ids: SpecialIds, config: QAConfig) -> list[Window]:
    """Split the context into overlapping windows (the tokenizers library's stride rule)."""
    room = config.max_seq_len - len(question) - 3
    if room <= config.doc_stride or room < 1:
        raise UsageError(
            f"the question is too long ({len(question)} tokens) for max_seq_len={config.max_seq_len} "
            f"and doc_stride={config.doc_stride}: shorten it or lower doc_stride"
        )
    step = room - config.doc_stride
    n = len(context)
    spans: list[tuple[int, int]] = []
    first = 0
    while True:
        stop = min(first + room, n)
        spans.append((first, stop))
        if stop >= n:
            break
        first += step
    windows = []
    target = config.padded_length(len(question), n)
    for first, stop in spans:
        input_ids = [ids.cls, *question, ids.sep, *context[first:stop], ids.sep]
        type_ids = [0] * (len(question) + 2) + [1] * (stop - first + 1)
        mask = [1] * len(input_ids)
        if target is not None:
            pad = target - len(input_ids)
            input_ids += [ids.pad] * pad
            type_ids += [0] * pad
            mask += [0] * pad
        windows.append(Window(input_ids, mask, type_ids, len(question) + 2, first, stop - first))
    return windows


def _softmax_masked(logits: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    x = np.where(allowed, logits.astype(np.float64), _MASKED_LOGIT)
    x = np.exp(x - x.max())
    return x / x.sum()


def decode_window(
    start_logits: np.ndarray, end_logits: np.ndarray, window: Window, config: QAConfig
) -> tuple[list[tuple[float, int, int]], float]:
    """Best spans of one window as ``(score, start_token, end_token)``, and the null score.

    Candidates: start and end on context tokens, ``start <= end < start + max_answer_len``,
    score > 0. Ties are broken by (start, end) so every platform returns the same order.
    """
    start_logits = np.asarray(start_logits, dtype=np.float64).reshape(-1)
    end_logits = np.asarray(end_logits, dtype=np.float64).reshape(-1)
    seq = len(window.input_ids)
    if start_logits.shape[0] < seq or end_logits.shape[0] < seq:
        raise UsageError(f"logits have {start_logits.shape[0]} positions but the window has {seq} tokens")
    start_logits, end_logits = start_logits[:seq], end_logits[:seq]
    allowed = np.zeros(seq, dtype=bool)
    allowed[0] = True  # [CLS] takes part in the softmax (the "no answer" slot) but is never an answer
    c0, c1 = window.context_start, window.context_start + window.context_len
    allowed[c0:c1] = True
    p_start = _softmax_masked(start_logits, allowed)
    p_end = _softmax_masked(end_logits, allowed)
    null_score = float(p_start[0] * p_end[0])
    cand: list[tuple[float, int, int]] = []
    for s in range(c0, c1):
        for e in range(s, min(c1, s + config.max_answer_len)):
            score = float(p_start[s] * p_end[e])
            if score > 0.0:
                cand.append((score, s, e))
    cand.sort(key=lambda c: (-c[0], c[1], c[2]))
    return cand[: config.top_k], null_score


def answers_from_logits(
    context: str,
    context_tokens: TokenizedText,
    windows: Sequence[Window],
    logits: Sequence[tuple[np.ndarray, np.ndarray]],
    config: QAConfig,
) -> list[Answer]:
    """Merge every window's candidates into the final ``top_k`` answers with character spans."""
    answers: list[Answer] = []
    min_null = 1_000_000.0
    for w, (window, (start_logits, end_logits)) in enumerate(zip(windows, logits)):
        cand, null_score = decode_window(start_logits, end_logits, window, config)
        min_null = min(min_null, null_score)
        for score, s, e in cand:
            ts = window.context_first + s - window.context_start
            te = window.context_first + e - window.context_start
            spans = context_tokens.words if config.align_to_words else context_tokens.offsets
            start, end = spans[ts][0], spans[te][1]
            answers.append(Answer(context[start:end], start, end, score, w, s, e))
    if config.handle_impossible_answer:
        answers.append(Answer("", 0, 0, min_null))
    # A stable sort on score alone: equal scores keep window order, like transformers.
    answers.sort(key=lambda a: -a.score)
    return answers[: config.top_k]


@dataclass
class QAPipeline:
    """Question answering over any logits function. Call it with ``(question, context)``."""

    tokenizer: Any
    run_logits: LogitsFn
    config: QAConfig = field(default_factory=QAConfig)

    def encode(self, question: str, context: str) -> tuple[TokenizedText, TokenizedText, list[Window]]:
        if not question.strip() or not context.strip():
            raise UsageError("both the question and the context must contain text")
        q = tokenize(self.tokenizer, question)
        c = tokenize(self.tokenizer, context)
        if not c.ids:
            raise UsageError("the context has no tokens after normalisation")
        return q, c, make_windows(q.ids, c.ids, special_ids(self.tokenizer), self.config)

    def window_logits(self, windows: Sequence[Window]) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for w in windows:
            arrays = [np.asarray([x], dtype=np.int32) for x in (w.input_ids, w.attention_mask, w.token_type_ids)]
            start, end = self.run_logits(*arrays)
            out.append((np.asarray(start, dtype=np.float32).reshape(-1), np.asarray(end, dtype=np.float32).reshape(-1)))
        return out

    def __call__(self, question: str, context: str) -> list[Answer]:
        _, c, windows = self.encode(question, context)
        return answers_from_logits(context, c, windows, self.window_logits(windows), self.config)


def torch_logits_fn(model: Any) -> LogitsFn:
    """Wrap a PyTorch QA model: an edgekit EdgeModel (tuple outputs) or a transformers ``*ForQuestionAnswering``."""
    import torch

    def run(input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = torch.from_numpy(np.ascontiguousarray(input_ids))
        mask = torch.from_numpy(np.ascontiguousarray(attention_mask))
        types = torch.from_numpy(np.ascontiguousarray(token_type_ids))
        with torch.inference_mode():
            if hasattr(model, "config") and hasattr(model.config, "model_type"):  # transformers model
                kwargs = {"input_ids": ids.long(), "attention_mask": mask.long()}
                if model.config.model_type != "distilbert":
                    kwargs["token_type_ids"] = types.long()
                out = model(**kwargs)
                return out.start_logits.float().numpy(), out.end_logits.float().numpy()
            # edgekit EdgeModel: int32 inputs; token types only when the model keeps them.
            keep = "token_type_ids" in getattr(model, "input_names", ())
            out = model(ids.int(), mask.int(), types.int() if keep else None)
            return out[0].float().numpy(), out[1].float().numpy()

    return run


def artifact_logits_fn(runner: Any) -> LogitsFn:
    """Wrap an exported artifact's runner (``runner.run(dict) -> dict``) of a question-answering export."""
    names = tuple(getattr(runner, "input_names", ("input_ids", "attention_mask")))

    def run(input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feed = {"input_ids": input_ids.astype(np.int32), "attention_mask": attention_mask.astype(np.int32)}
        for n in ("token_type_ids", "segment_ids"):  # TFLite files call token types segment_ids
            if n in names:
                feed[n] = token_type_ids.astype(np.int32)
        out = runner.run(feed)
        return np.asarray(out["start_logits"]), np.asarray(out["end_logits"])

    return run
