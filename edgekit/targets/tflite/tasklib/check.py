"""Does the Task Library, run on an exported file, agree with edgekit's own answers on the same file?

Question answering: ``BertQuestionAnswerer``'s top answer vs edgekit's QA pipeline (``edgekit.quality.qa``)
driven by the LiteRT interpreter on the same .tflite. Classification: ``BertNLClassifier``'s top
label vs the argmax of the LiteRT interpreter's logits on edgekit's tokenisation.

The Task Library's QA post-processing differs from edgekit's on purpose-built edge cases (it only
looks at the 5 highest start and end logits over the whole padded sequence, splits the context on
spaces, truncates it to one 384-token window and returns whole space-separated words), so the
check uses single-window contexts and compares answers after :func:`normalize_answer`.
"""
from __future__ import annotations

import math
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.targets.tflite.tasklib import TFLITE_SUPPORT, answer, classify, unavailable

#: Task Library constants (tflite-support bert_question_answerer.h): answers are at most 32 tokens
#: long, the question is cut to 64 word pieces, the input is 384 tokens, the 5 highest start and 5
#: highest end logits (over the whole padded sequence) make the candidates, 5 answers come back,
#: and the model's positions are offset by one from the context map's keys.
TASK_LIBRARY_MAX_ANSWER_LEN = 32
TASK_LIBRARY_MAX_QUERY_LEN = 64
TASK_LIBRARY_MAX_SEQ_LEN = 384
TASK_LIBRARY_PREDICT_ANS_NUM = 5
TASK_LIBRARY_OUTPUT_OFFSET = 1

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
    from edgekit.quality.qa import QAConfig, QAPipeline

    def logits(ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = runner.run({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        return out["start_logits"], out["end_logits"]

    from edgekit.core.geometry import QAGeometry

    # The one QA geometry at this length; the answer length is the Task Library's own (a fixed knob of
    # its BertQuestionAnswerer), so that both clients are asked the same question.
    geometry = QAGeometry.for_lengths([seq_len], max_answer_len=TASK_LIBRARY_MAX_ANSWER_LEN)
    cfg = QAConfig.from_geometry(geometry, pad_to=seq_len)
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


@dataclass
class TaskLibraryFeatures:
    """The Task Library's model input for one (question, context), and how to map answers back."""

    feed: dict[str, np.ndarray]
    token_to_orig: dict[int, int]     # key: model position + 1 (the library's kOutputOffset)
    orig_tokens: list[str]


def task_library_preprocess(tokenizer: Any, question: str, context: str,
                            seq_len: int = TASK_LIBRARY_MAX_SEQ_LEN) -> TaskLibraryFeatures:
    """A Python port of ``BertQuestionAnswerer::Preprocess`` with the checkpoint's own vocabulary.

    The context is split on single spaces (empty pieces skipped), every piece and the question are
    ASCII-lower-cased and word-pieced, the question is cut to 64 pieces, the context to what fits in
    ``seq_len`` after [CLS] q [SEP] ... [SEP]; one window only (no doc stride).
    """
    orig = [t for t in context.split(" ") if t]
    def lower(text: str) -> str:  # absl::AsciiStrToLower: ASCII letters only
        return "".join(c.lower() if c.isascii() else c for c in text)

    q_tokens = tokenizer.tokenize(lower(question))[:TASK_LIBRARY_MAX_QUERY_LEN]
    doc, doc_orig = [], []
    for i, word in enumerate(orig):
        for piece in tokenizer.tokenize(lower(word)):
            doc.append(piece)
            doc_orig.append(i)
    doc = doc[:max(0, seq_len - len(q_tokens) - 3)]
    tokens = [tokenizer.cls_token, *q_tokens, tokenizer.sep_token]
    segments = [0] * len(tokens)
    token_to_orig = {}
    for piece, i in zip(doc, doc_orig):
        tokens.append(piece)
        segments.append(1)
        token_to_orig[len(tokens)] = i
    tokens.append(tokenizer.sep_token)
    segments.append(1)
    ids = tokenizer.convert_tokens_to_ids(tokens)
    pad = seq_len - len(ids)
    feed = {"input_ids": np.array([ids + [0] * pad], dtype=np.int32),
            "attention_mask": np.array([[1] * len(ids) + [0] * pad], dtype=np.int32),
            "token_type_ids": np.array([segments + [0] * pad], dtype=np.int32)}
    return TaskLibraryFeatures(feed, token_to_orig, orig)


def task_library_postprocess(start: np.ndarray, end: np.ndarray, feats: TaskLibraryFeatures) -> list[dict[str, Any]]:
    """A Python port of ``BertQuestionAnswerer::Postprocess``: top-5 start x top-5 end logits over
    the whole sequence, kept when both are context tokens, start <= end and at most 32 tokens long,
    best 5 by start+end logit; the text is the space-joined original words."""
    start, end = np.asarray(start, np.float32).reshape(-1), np.asarray(end, np.float32).reshape(-1)
    k = TASK_LIBRARY_PREDICT_ANS_NUM
    starts = np.argsort(-start, kind="stable")[:k]
    ends = np.argsort(-end, kind="stable")[:k]
    off, m = TASK_LIBRARY_OUTPUT_OFFSET, feats.token_to_orig
    cands = []
    for s in starts:
        for e in ends:
            if (s + off) not in m or (e + off) not in m or e < s or e - s + 1 > TASK_LIBRARY_MAX_ANSWER_LEN:
                continue
            cands.append((float(start[s] + end[e]), int(s), int(e)))
    cands.sort(key=lambda c: -c[0])
    out = []
    for logit, s, e in cands[:k]:
        text = " ".join(feats.orig_tokens[m[s + off]:m[e + off] + 1]) if s > 0 else ""
        out.append({"text": text, "start": s, "end": e, "logit": logit})
    return out


def numbers_tolerance(logit: float, allowed: float = 0.0) -> float:
    """How far the Task Library's candidate logit may sit from LiteRT's on identical inputs. Two
    TFLite runtimes on one float file differ in kernel order only; on an int8 file their kernels
    quantise activations differently, so a span logit (a sum of two) may also move by twice the
    per-logit error the file's value bound allows (``allowed``, from ``parity.allowed_error``)."""
    return 1e-3 + 1e-3 * abs(logit) + 2 * allowed


def check_question_answering(path: Path, runner: Any, tokenizer: Any, seq_len: int,
                             pairs: Sequence[tuple[str, str]] | None = None, env: Path | None = None,
                             tolerance: Any = None) -> ClientCheck:
    """Three parts, so that "the file computes other numbers" is told apart from "the decoders differ":

    (a) numbers: each (start, end) candidate the Task Library returns must carry the logit LiteRT
        computes for it on identical inputs (the port of its pre-processing), within
        ``numbers_tolerance``;
    (b) decoding: the port of its post-processing on LiteRT's logits must give its answer list
        exactly (positions and texts); a mismatch means the file's metadata (vocabulary,
        lower-casing, tensor mapping) makes the library read it differently;
    (c) edgekit's own QA pipeline vs the library's top answer: information, with the count of
        decisive cases (top-1 beats top-2 by more than the numbers tolerance), never a failure.
    (a) or (b) failing makes the verdict "disagreed".
    """
    client = f"{TFLITE_SUPPORT} BertQuestionAnswerer"
    reason = unavailable(env)
    if reason:
        return ClientCheck(client, "skipped", reason=reason)
    pairs = list(pairs) if pairs is not None else default_qa_check_pairs()
    theirs = answer(path, list(pairs), env)
    ours = edgekit_answers(runner, tokenizer, pairs, seq_len)
    cases, worst = [], 0.0
    for (q, c), t, o in zip(pairs, theirs, ours):
        feats = task_library_preprocess(tokenizer, q, c, seq_len)
        out = runner.run(feats.feed)
        s, e = np.asarray(out["start_logits"]).reshape(-1), np.asarray(out["end_logits"]).reshape(-1)
        diffs = [abs(float(s[a["start"]] + e[a["end"]]) - a["logit"]) if 0 <= a["start"] < len(s)
                 and 0 <= a["end"] < len(e) else math.inf for a in t]
        allowed = 0.0
        if tolerance is not None:
            from edgekit.check.parity import allowed_error

            allowed = max(allowed_error(s, tolerance), allowed_error(e, tolerance))
        numbers_ok = all(d <= numbers_tolerance(a["logit"], allowed) for d, a in zip(diffs, t))
        worst = max([worst, *diffs])
        port = task_library_postprocess(s, e, feats)
        tol_here = numbers_tolerance(max([abs(a["logit"]) for a in t] or [0.0]), allowed)
        if _selection_is_decisive(s, e, tol_here):
            decoding_ok = _same_answers(port, t, tol_here)
        else:
            # LiteRT and the library's runtime may legitimately differ by up to the tolerance, and
            # here that could change which 5 starts/ends are kept: the exact list is not judged,
            # only its best answer where it is decisive.
            decoding_ok = not t or not port or (port[0]["start"], port[0]["end"]) == (t[0]["start"], t[0]["end"]) \
                or (len(port) > 1 and port[0]["logit"] - port[1]["logit"] <= 2 * tol_here)
        top = t[0]["text"] if t else ""
        decisive = len(t) < 2 or t[0]["logit"] - t[1]["logit"] > 2 * numbers_tolerance(t[0]["logit"])
        cases.append({"question": q, "context": c, "task_library": top, "edgekit": o,
                      "port": port[0]["text"] if port else "", "numbers_ok": numbers_ok,
                      "max_logit_diff": max(diffs, default=0.0), "decoding_ok": decoding_ok,
                      "decisive": bool(decisive),
                      "same": normalize_answer(top) == normalize_answer(o)})
    return _qa_verdict(client, cases, worst)


def _selection_is_decisive(start: np.ndarray, end: np.ndarray, tol: float) -> bool:
    """The top-5 starts and ends are set apart from the 6th by more than ``tol``."""
    k = TASK_LIBRARY_PREDICT_ANS_NUM
    gaps = []
    for v in (start, end):
        top = np.sort(np.asarray(v, np.float64))[::-1]
        if len(top) > k:
            gaps.append(top[k - 1] - top[k])
    return all(g > tol for g in gaps)


def _same_answers(port: list[dict[str, Any]], theirs: list[dict[str, Any]], tol: float | None = None) -> bool:
    """Same candidates with the same texts; order may differ only between candidates whose logits
    tie within the numbers tolerance."""
    if len(port) != len(theirs):
        return False
    key = lambda a: (a["start"], a["end"], a["text"])  # noqa: E731
    if sorted(map(key, port)) != sorted(map(key, theirs)):
        return False
    for a, b in zip(port, theirs):
        if key(a) != key(b) and abs(a["logit"] - b["logit"]) > 2 * (tol if tol is not None else numbers_tolerance(b["logit"])):
            return False
    return True


def _qa_verdict(client: str, cases: list[dict[str, Any]], worst: float) -> ClientCheck:
    n = len(cases)
    bad_num = [c for c in cases if not c["numbers_ok"]]
    bad_dec = [c for c in cases if not c["decoding_ok"]]
    decisive = [c for c in cases if c["decisive"]]
    same = sum(c["same"] for c in decisive)
    info = (f"edgekit's pipeline and the Task Library agree on {same}/{len(decisive)} decisive inputs "
            f"({sum(c['same'] for c in cases)}/{n} in all); largest logit difference {worst:.2g}")
    agreement = same / len(decisive) if decisive else None
    if not bad_num and not bad_dec:
        return ClientCheck(client, "agreed", agreement, info, cases)
    parts = []
    if bad_num:
        c = bad_num[0]
        parts.append(f"numbers: on {len(bad_num)}/{n} inputs the Task Library's candidate logits are not LiteRT's "
                     f"on identical inputs (e.g. {c['question']!r}: off by {c['max_logit_diff']:.3g})")
    if bad_dec:
        c = bad_dec[0]
        parts.append(f"decoding: on {len(bad_dec)}/{n} inputs the port of its decoder gives other answers "
                     f"(e.g. {c['question']!r}: Task Library {c['task_library']!r} vs port {c['port']!r}); "
                     "check the metadata's vocabulary, lower-casing and tensor mapping")
    return ClientCheck(client, "disagreed", agreement,
                       "the Task Library disagrees with LiteRT on the same file: " + "; ".join(parts) + f" ({info})",
                       cases)


def default_qa_check_pairs(n_real: int = 16) -> list[tuple[str, str]]:
    """The purpose-built pairs plus real SQuAD dev pairs (ASCII only: the library lower-cases ASCII
    only, the checkpoint's tokenizer may also strip accents; short enough for one 384 window)."""
    from edgekit.model.samples import qa_pairs

    real = [(q, c) for q, c in qa_pairs() if q.isascii() and c.isascii() and len(c.split()) <= 150][:n_real]
    return list(QA_CHECK_PAIRS) + real


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
