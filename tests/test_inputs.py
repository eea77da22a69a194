"""The one calibration reader: encoding, empty files, too few samples, the cap, no tokenizer."""
from __future__ import annotations

import pytest

from edgekit import inputs
from edgekit.errors import UsageError
from edgekit.modeling import load_tokenizer
from edgekit.tasks import Task

NAMES = ("input_ids", "attention_mask")


@pytest.fixture(scope="module")
def tok(tiny_model):
    return load_tokenizer(tiny_model("distilbert", Task.SEQUENCE_CLASSIFICATION))


def test_calibration_file_must_be_utf8_text(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(UsageError, match="no text"):
        inputs.read_calibration_texts(empty)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(UsageError, match="UTF-8"):
        inputs.read_calibration_texts(latin)
    good = tmp_path / "good.txt"
    good.write_text("one line\n\n  two lines \n", encoding="utf-8")
    assert inputs.read_calibration_texts(good) == ["one line", "two lines"]


def test_calibration_feeds_notes_too_few_and_caps_many(tok, tmp_path):
    notes: list[str] = []
    feeds, info = inputs.calibration(tok, Task.SEQUENCE_CLASSIFICATION, 16, NAMES, notes=notes)
    assert info == {"source": "embedded default sentences", "samples": len(feeds)}
    assert feeds[0]["input_ids"].shape == (1, 16) and set(feeds[0]) == set(NAMES)
    assert any("calibrated on only" in n and "--calibration FILE" in n for n in notes)
    many = tmp_path / "many.txt"
    many.write_text("\n".join(f"the city {i}" for i in range(300)))
    notes = []
    feeds, info = inputs.calibration(tok, Task.SEQUENCE_CLASSIFICATION, 16, NAMES, many, notes=notes)
    assert len(feeds) == inputs.MAX_CALIBRATION_SAMPLES and info["lines_given"] == 300 and not notes


def test_calibration_needs_a_tokenizer():
    with pytest.raises(UsageError, match="no tokenizer"):
        inputs.calibration(None, Task.SEQUENCE_CLASSIFICATION, 16, NAMES)
