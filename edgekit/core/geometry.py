"""The one QA geometry: window lengths (buckets), doc stride and longest answer.

Decided here once, written into every QA file's record (``ArtifactRecord.qa``) and read from there
by eval, the accuracy gate, bundle/golden.json (and so the apps), and the Task Library check. No
other module computes a stride or picks a default length.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable

from edgekit.core.errors import UsageError

#: The QA length when the user names none (the TFLite Task Library's BertQuestionAnswerer length).
DEFAULT_QA_LENGTH = 384
#: Longest answer span in tokens (the SQuAD convention, as transformers' QA pipeline).
DEFAULT_MAX_ANSWER_LEN = 15
#: The stride is a quarter of the window, at most this many tokens. Measured on 1,000 shared SQuAD
#: dev questions at 384 (benchmarks/results/qa_stride.md; DESIGN.md "One QA geometry").
MAX_DOC_STRIDE = 128
#: Length buckets of a multi-length QA file when the user names none (Core ML's QA default; the
#: apps pick the smallest that holds a question and its context).
DEFAULT_QA_BUCKETS = (128, 256, DEFAULT_QA_LENGTH)


def stride_for(length: int) -> int:
    """The one stride rule: a quarter of the window (mostly new text per window at the short
    lengths phones use), capped at ``MAX_DOC_STRIDE``."""
    return min(int(length) // 4, MAX_DOC_STRIDE)


@dataclass(frozen=True)
class QAGeometry:
    """How question answering cuts a context: windows of ``lengths`` (ascending; each question runs at
    the smallest that holds it, or in windows of the longest), overlapping by ``doc_stride`` tokens
    (the stride of the longest length; shorter buckets hold the whole question and context in one
    window), answers up to ``max_answer_len`` tokens."""

    lengths: tuple[int, ...]
    doc_stride: int
    max_answer_len: int = DEFAULT_MAX_ANSWER_LEN

    def __post_init__(self) -> None:
        lengths = tuple(sorted({int(v) for v in self.lengths}))
        object.__setattr__(self, "lengths", lengths)
        if not lengths or lengths[0] < 32:
            raise UsageError(f"QA lengths {list(lengths)} leave no room for a question and context; use 64 or more")
        if not 0 <= int(self.doc_stride) < lengths[-1] // 2:
            raise UsageError(f"doc stride {self.doc_stride} must be in [0, {lengths[-1] // 2}) for windows of "
                             f"{lengths[-1]}")
        if int(self.max_answer_len) < 1:
            raise UsageError("the longest answer must be at least 1 token")

    @classmethod
    def for_lengths(cls, lengths: Iterable[int], doc_stride: int | None = None,
                    max_answer_len: int | None = None) -> QAGeometry:
        """The geometry of a file exported at ``lengths``; stride and answer length by the one rule
        unless given."""
        lengths = tuple(sorted({int(v) for v in lengths}))
        if not lengths:
            raise UsageError("QA needs at least one length")
        return cls(lengths, stride_for(lengths[-1]) if doc_stride is None else int(doc_stride),
                   DEFAULT_MAX_ANSWER_LEN if max_answer_len is None else int(max_answer_len))

    @property
    def max_len(self) -> int:
        return self.lengths[-1]

    @property
    def buckets(self) -> tuple[int, ...] | None:
        """Several lengths: the buckets a question picks from; one length: None."""
        return self.lengths if len(self.lengths) > 1 else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lengths"] = list(self.lengths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QAGeometry:
        return cls(tuple(d["lengths"]), int(d["doc_stride"]), int(d.get("max_answer_len", DEFAULT_MAX_ANSWER_LEN)))
