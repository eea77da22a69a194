"""The character classes of Hugging Face's BERT tokenizer, as compact tables for the phone apps.

The ``tokenizers`` library classifies characters with the Unicode tables compiled into it (Rust
crates of fixed Unicode versions), not with the operating system's: an emoji newer than those
tables is kept (and becomes ``[UNK]``), private-use code points are deleted, unassigned ones kept,
``U+2E4F`` is not punctuation. Android's and iOS's tables change with the OS version, so an app
that asks the platform (``Character.getType``, ``CharacterSet``) tokenizes differently on
different phones. This module asks the installed ``tokenizers`` itself, code point by code point
(no surrogates), and writes what it answered:

``REMOVED``       deleted by ``clean_text`` (NUL, U+FFFD and its "control" class)
``WHITESPACE``    turned into a space (and split on)
``CJK``           surrounded by spaces (``handle_chinese_chars``)
``PUNCTUATION``   split off as its own word by the BERT pre-tokenizer
``STRIP_REMOVED`` deleted by ``strip_accents`` (non-spacing marks after NFD)
``STRIP_MAP``     replaced by ``strip_accents`` (NFD, marks dropped); Hangul syllables by rule
``LOWER_MAP``     replaced by ``lowercase``

Ranges are ``START-END`` (inclusive, hex) or ``CP``, comma separated; maps are ``CP:R1.R2``.
``python -m edgekit.apps.unicode_tables`` rewrites ``UnicodeTables.kt`` and ``UnicodeTables.swift`` in the
apps; ``tests/apps/test_unicode_tables.py`` fails when they are stale.
"""
from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KOTLIN = ROOT / "android-demo/app/src/main/java/ai/edgekit/demo/qa/UnicodeTables.kt"
SWIFT = ROOT / "ios-demo/EdgekitQA/Sources/EdgekitQA/UnicodeTables.swift"

S_BASE, L_BASE, V_BASE, T_BASE = 0xAC00, 0x1100, 0x1161, 0x11A7
V_COUNT, T_COUNT, S_COUNT = 21, 28, 11172
N_COUNT = V_COUNT * T_COUNT
CHUNK = 16000  # characters per string literal: well under the JVM's 65535-byte constant limit


def hangul_nfd(c: int) -> list[int] | None:
    """Unicode's algorithmic decomposition of a precomposed Hangul syllable (None otherwise)."""
    s = c - S_BASE
    if not 0 <= s < S_COUNT:
        return None
    out = [L_BASE + s // N_COUNT, V_BASE + (s % N_COUNT) // T_COUNT]
    if s % T_COUNT:
        out.append(T_BASE + s % T_COUNT)
    return out


def code_points() -> list[int]:
    return [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


def _ranges(cps: Iterable[int]) -> str:
    out: list[str] = []
    start = prev = None
    for c in sorted(cps):
        if prev is not None and c == prev + 1:
            prev = c
            continue
        if start is not None:
            out.append(f"{start:X}" if start == prev else f"{start:X}-{prev:X}")
        start = prev = c
    if start is not None:
        out.append(f"{start:X}" if start == prev else f"{start:X}-{prev:X}")
    return ",".join(out)


def _map(m: dict[int, str]) -> str:
    return ",".join(f"{c:X}:" + ".".join(f"{ord(x):X}" for x in v) for c, v in sorted(m.items()))


def derive() -> dict[str, str]:
    """Ask ``tokenizers`` about every code point; return the tables as strings."""
    from tokenizers import normalizers, pre_tokenizers

    def bert(clean: bool, chinese: bool, strip: bool, lower: bool):  # noqa: ANN202
        return normalizers.BertNormalizer(clean_text=clean, handle_chinese_chars=chinese, strip_accents=strip,
                                          lowercase=lower)

    cps = code_points()
    clean = bert(True, True, False, False)
    removed, space, cjk = [], [], []
    for c in cps:
        ch = chr(c)
        n = clean.normalize_str(ch)
        if n == ch:
            continue
        if n == "":
            removed.append(c)
        elif n == " ":
            space.append(c)
        elif n == f" {ch} ":
            cjk.append(c)
        else:
            raise RuntimeError(f"unexpected clean_text/handle_chinese_chars result for U+{c:04X}: {n!r}")
    space.append(0x20)

    strip, lower = bert(False, False, True, False), bert(False, False, False, True)
    strip_removed, strip_map, lower_map = [], {}, {}
    for c in cps:
        ch = chr(c)
        s = strip.normalize_str(ch)
        if s != ch:
            if s == "":
                strip_removed.append(c)
            elif hangul_nfd(c) is not None:
                if [ord(x) for x in s] != hangul_nfd(c):
                    raise RuntimeError(f"Hangul U+{c:04X} does not decompose by Unicode's rule: {s!r}")
            else:
                strip_map[c] = s
        low = lower.normalize_str(ch)
        if low != ch:
            lower_map[c] = low

    # Punctuation: in "a" + c1 + "a" + c2 + "a" ..., a punctuation character is a word of its own.
    pre = pre_tokenizers.BertPreTokenizer()
    punct = []
    for k in range(0, len(cps), 50000):
        chunk = cps[k:k + 50000]
        text = "a" + "a".join(chr(c) for c in chunk) + "a"
        for piece, _ in pre.pre_tokenize_str(text):
            if len(piece) == 1 and piece != "a":
                punct.append(ord(piece))
    return {
        "REMOVED": _ranges(removed), "WHITESPACE": _ranges(space), "CJK": _ranges(cjk),
        "PUNCTUATION": _ranges(punct), "STRIP_REMOVED": _ranges(strip_removed),
        "STRIP_MAP": _map(strip_map), "LOWER_MAP": _map(lower_map),
    }


def _chunks(s: str) -> list[str]:
    # Cut at commas so a mutation script's patterns never straddle two literals.
    out, start = [], 0
    while len(s) - start > CHUNK:
        cut = s.rindex(",", start, start + CHUNK) + 1
        out.append(s[start:cut])
        start = cut
    out.append(s[start:])
    return out


def _source_line() -> str:
    import tokenizers

    return f"tokenizers {tokenizers.__version__} (Hugging Face), asked code point by code point"


def kotlin_source(tables: dict[str, str]) -> str:
    lines = [
        "package ai.edgekit.demo.qa",
        "",
        "// GENERATED by `python -m edgekit.apps.unicode_tables` -- do not edit; see edgekit/apps/unicode_tables.py.",
        f"// Source: {_source_line()}.",
        "// Ranges: START-END (inclusive, hex) or CP, comma separated. Maps: CP:R1.R2 (replacement code points).",
        "// Plain vals, not consts: the tables are read at run time, never inlined into other classes.",
        "object UnicodeTables {",
    ]
    for name, value in tables.items():
        parts = _chunks(value)
        lines.append(f"    @JvmField val {name}: String = " + " +\n        ".join(f'"{p}"' for p in parts))
    lines.append("}")
    return "\n".join(lines) + "\n"


def swift_source(tables: dict[str, str]) -> str:
    lines = [
        "// GENERATED by `python -m edgekit.apps.unicode_tables` -- do not edit; see edgekit/apps/unicode_tables.py.",
        f"// Source: {_source_line()}.",
        "// Ranges: START-END (inclusive, hex) or CP, comma separated. Maps: CP:R1.R2 (replacement code points).",
        "enum UnicodeTables {",
    ]
    for name, value in tables.items():
        parts = _chunks(value)
        lines.append(f"    static let {name.lower()}: String = [")
        lines += [f'        "{p}",' for p in parts]
        lines.append('    ].joined()')
    lines.append("}")
    return "\n".join(lines) + "\n"


def write(tables: dict[str, str] | None = None, kotlin: Path = KOTLIN, swift: Path = SWIFT) -> list[Path]:
    from edgekit.core.record import atomic_write_text

    tables = tables or derive()
    atomic_write_text(kotlin, kotlin_source(tables))
    atomic_write_text(swift, swift_source(tables))
    return [kotlin, swift]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgekit.apps.unicode_tables", description=__doc__.split("\n")[0])
    parser.parse_args(argv)
    for p in write():
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
