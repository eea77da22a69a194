"""The apps' character tables are what the installed Hugging Face tokenizer answers, today."""
from __future__ import annotations

import unicodedata

import pytest

from edgekit.apps import unicode_tables as ut

pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def tables():
    return ut.derive()


def test_committed_app_tables_are_current(tables):
    assert ut.KOTLIN.read_text(encoding="utf-8") == ut.kotlin_source(tables), \
        "UnicodeTables.kt is stale: run `python -m edgekit.apps.unicode_tables`"
    assert ut.SWIFT.read_text(encoding="utf-8") == ut.swift_source(tables), \
        "UnicodeTables.swift is stale: run `python -m edgekit.apps.unicode_tables`"


def _contains(spec: str, c: int) -> bool:
    for item in spec.split(","):
        lo, _, hi = item.partition("-")
        if int(lo, 16) <= c <= int(hi or lo, 16):
            return True
    return False


def test_tables_say_what_the_issue_observed(tables):
    assert _contains(tables["REMOVED"], 0xE000) and _contains(tables["REMOVED"], 0x10FFFD)  # private use
    assert not _contains(tables["REMOVED"], 0x0378) and not _contains(tables["REMOVED"], 0x1FAE0)  # unassigned, new emoji
    for c in (0x1680, 0x2028, 0x2029, 0x3000, 0x09):
        assert _contains(tables["WHITESPACE"], c)
    for c in (0x20000, 0x2A700, 0x2B740, 0x2B920, 0x2F800):
        assert _contains(tables["CJK"], c)
    assert not _contains(tables["CJK"], 0x2B820) and not _contains(tables["PUNCTUATION"], 0x2E4F)
    assert _contains(tables["PUNCTUATION"], ord("$")) and _contains(tables["STRIP_REMOVED"], 0x0301)
    assert "C0:41" in tables["STRIP_MAP"].split(",") and "130:69.307" in tables["LOWER_MAP"].split(",")


def test_hangul_rule_matches_unicodedata():
    for c in (0xAC00, 0xAC01, 0xD55C, 0xD7A3):
        assert ut.hangul_nfd(c) == [ord(x) for x in unicodedata.normalize("NFD", chr(c))]
    assert ut.hangul_nfd(0x41) is None


def test_ranges_and_chunks():
    assert ut._ranges([5, 1, 2, 3, 9]) == "1-3,5,9"
    long = ",".join(f"{c:X}" for c in range(0, 40000, 2))
    parts = ut._chunks(long)
    assert "".join(parts) == long and all(len(p) <= ut.CHUNK for p in parts) and all(p.endswith(",") for p in parts[:-1])
