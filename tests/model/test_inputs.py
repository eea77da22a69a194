"""The one calibration reader: encoding, empty files, too few samples, the cap, no tokenizer, QA pairs."""
from __future__ import annotations

import pytest

from edgekit.model import inputs
from edgekit.core.errors import UsageError
from edgekit.model.modeling import load_tokenizer
from edgekit.core.tasks import Task

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
    with pytest.raises(UsageError, match="int8-static calibrates.*no tokenizer.*choose int8-dynamic"):
        inputs.calibration(None, Task.SEQUENCE_CLASSIFICATION, 16, NAMES)


def test_calibration_messages_name_what_calibrates(tok):
    """int8-dynamic's outlier smoothing calibrates too: its notes must not say int8-static."""
    notes: list[str] = []
    inputs.calibration(tok, Task.SEQUENCE_CLASSIFICATION, 16, NAMES, notes=notes, purpose="int8-dynamic")
    assert any(n.startswith("int8-dynamic calibrated on only") for n in notes)
    assert not any("int8-static" in n for n in notes)
    with pytest.raises(UsageError, match="int8-dynamic calibrates.*no calibration"):
        inputs.calibration(None, Task.SEQUENCE_CLASSIFICATION, 16, NAMES, purpose="int8-dynamic")


@pytest.fixture(scope="module")
def bert_tok(tiny_model):
    return load_tokenizer(tiny_model("bert", Task.QUESTION_ANSWERING))


def test_a_tab_makes_a_pair_encoded_as_the_model_answers_it(bert_tok, tmp_path):
    """question<TAB>context calibrates on segment B with its [SEP], exactly as text_feeds feeds a QA model."""
    names = ("input_ids", "attention_mask", "token_type_ids")
    q, c = "Where was the tower built?", "The Eiffel Tower was built in 1889 for the World's Fair in Paris."
    f = tmp_path / "pairs.txt"
    f.write_text(f"{q}\t{c}\n{q} {c}\n", encoding="utf-8")
    feeds, info = inputs.calibration(bert_tok, Task.QUESTION_ANSWERING, 48, names, f)
    assert info["pairs"] == 1
    want = inputs.text_feeds(bert_tok, Task.QUESTION_ANSWERING, 48, names, pairs=[(q, c)])[0]
    for k in names:
        assert (feeds[0][k] == want[k]).all(), k
    assert feeds[0]["token_type_ids"].any() and not feeds[1]["token_type_ids"].any()  # the flat line: segment A only


def test_qa_calibration_without_pairs_is_said(bert_tok, tmp_path):
    names = ("input_ids", "attention_mask", "token_type_ids")
    flat = tmp_path / "flat.txt"
    flat.write_text("\n".join(f"what is {i}? the number {i}" for i in range(120)))
    notes: list[str] = []
    inputs.calibration(bert_tok, Task.QUESTION_ANSWERING, 16, names, flat, notes=notes)
    assert any("question<TAB>context" in n for n in notes)
    notes = []
    feeds, info = inputs.calibration(bert_tok, Task.QUESTION_ANSWERING, 32, names, notes=notes)  # embedded default
    assert info["pairs"] == len(inputs.QA_PAIRS) and not any("question<TAB>context" in n for n in notes)
    assert sum(bool(f["token_type_ids"].any()) for f in feeds) == len(inputs.QA_PAIRS)
