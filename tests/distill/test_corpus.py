"""The shipped general-English corpus, its held-out split and the checks on user text files."""
from __future__ import annotations

import lzma
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.distill.corpus import (WIKI_HELD_OUT, WIKI_TRAIN, check_text_file, is_held_out, normalise,
                                    read_lines, wiki_held_out, wiki_sentences)
from edgekit.core.errors import UsageError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def slices():
    return wiki_sentences(), wiki_held_out()


def test_shipped_slices_load_with_attribution(slices):
    train, held = slices
    assert len(train) == 50_000 and len(held) == 5_000
    assert all(len(s.split()) >= 5 for s in train[:1000])
    readme = (WIKI_TRAIN.parent / "README.md").read_text()
    assert "Contains text from Wikipedia (CC BY-SA) and/or SQuAD v1.1 (CC BY-SA 4.0, Rajpurkar et al. 2016)." in readme
    assert WIKI_TRAIN.suffix == ".xz" and WIKI_HELD_OUT.suffix == ".xz"


def test_held_out_never_overlaps_training_even_after_normalisation(slices):
    train, held = slices
    tn = {normalise(s) for s in train}
    hn = {normalise(s) for s in held}
    assert len(tn) == len(train) and len(hn) == len(held)  # unique after normalisation
    assert not tn & hn
    # the rule is a property of the text: every held-out sentence is held out, no training one is
    assert all(is_held_out(s) for s in held)
    assert not any(is_held_out(s) for s in train)
    # a copy differing in case, spacing or punctuation is held out too (so the long recipe drops it)
    s = held[0]
    assert is_held_out("  " + s.upper().replace(",", " ,") + "!!")


def test_normalise_drops_case_spacing_punctuation():
    assert normalise("Hello,  World!") == normalise("hello world") == "hello world"


def test_drop_held_out_skips_held_sentences_when_tokenising(tmp_path, tokenizer, slices):
    from edgekit.distill.data import TokenCache, build_cache

    train, held = slices
    f = tmp_path / "mix.txt.xz"
    with lzma.open(f, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(train[:30] + held[:10]) + "\n")
    assert len(list(read_lines(f))) == 40
    keep = TokenCache(build_cache(tokenizer, tmp_path / "c", [str(f)], max_len=64, min_tokens=3,
                                  show_progress=False, drop_held_out=True))
    assert keep.meta["texts"] == 30 and keep.meta["dropped_held_out"] == 10
    allc = TokenCache(build_cache(tokenizer, tmp_path / "c", [str(f)], max_len=64, min_tokens=3,
                                  show_progress=False))
    assert allc.meta["texts"] == 40 and allc.path != keep.path


@pytest.mark.parametrize("content, match", [(b"", "empty"), (b"\n  \n\n", "empty"),
                                            (b"\x7fELF\x02\x01\x00\x00binary", "binary"),
                                            (b"caf\xe9 au lait, " * 20, "not UTF-8")])
def test_empty_or_binary_data_is_a_usage_error(tmp_path, content, match):
    f = tmp_path / "data.txt"
    f.write_bytes(content)
    with pytest.raises(UsageError, match=match):
        check_text_file(f)


def test_corrupt_xz_is_a_usage_error(tmp_path):
    f = tmp_path / "data.txt.xz"
    f.write_bytes(b"not xz at all")
    with pytest.raises(UsageError, match="cannot be read"):
        check_text_file(f)


def test_cli_exits_2_without_traceback_on_empty_data(tmp_path):
    f = tmp_path / "empty.txt"
    f.write_text("")
    out = subprocess.run([sys.executable, "-m", "edgekit", "distill", "train", "--teacher", str(tmp_path),
                          "--out", str(tmp_path / "o"), "--data", str(f)],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and "is empty" in out.stderr


def test_slices_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    # The slice writers compressed straight into the target: an interrupted run left a truncated .xz that
    # every later reader refused. They now write through a temp file and a rename.
    import os

    from edgekit.distill.corpus import make_wiki_slices

    src = tmp_path / "src.txt"
    src.write_text("".join(f"Sentence number {i} has a few more words in it.\n" for i in range(2000)))
    train, held = make_wiki_slices(src, tmp_path / "out", n_train=50, n_held=3)
    first = (train.read_bytes(), held.read_bytes())
    assert len(list(read_lines(train))) == 50 and len(list(read_lines(held))) == 3

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        make_wiki_slices(src, tmp_path / "out", n_train=40, n_held=2)
    assert (train.read_bytes(), held.read_bytes()) == first
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([train.name, held.name])
