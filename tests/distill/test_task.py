"""Task-specific distillation: teacher token types, QA targets, short runs for both tasks."""
from __future__ import annotations

import json

import pytest
import torch

from distill_fixtures import tiny_bert_config
from edgekit.distill import task as TK
from edgekit.distill.student import init_student
from edgekit.core.errors import UsageError

SENTS = [
    "The parser reads the configuration file and returns a dictionary of sections.",
    "A socket object represents one endpoint of a network connection.",
    "Return the number of items in the queue, which is only approximate.",
    "The lock is released when the context manager exits, even on error.",
    "Decode the bytes using the codec registered for the given encoding.",
    "This function raises a value error when the argument is negative.",
    "Create a new thread that runs the target callable with the arguments.",
    "The temporary directory is removed together with all of its contents.",
]


@pytest.fixture(scope="module")
def task_student(tmp_path_factory, mlm_teacher_dir):
    d = tmp_path_factory.mktemp("task_student")
    init_student(mlm_teacher_dir, d)
    return d


def _teacher(tmp_path, tokenizer, kind):
    from transformers import BertForQuestionAnswering, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = tiny_bert_config(2, init=0.2)
    if kind == "cls":
        cfg.num_labels = 3
        m = BertForSequenceClassification(cfg)
    else:
        m = BertForQuestionAnswering(cfg)
    with torch.no_grad():
        m.bert.embeddings.token_type_embeddings.weight.normal_(0, 1.0)
    d = tmp_path / f"teacher_{kind}"
    m.save_pretrained(d)
    tokenizer.save_pretrained(d)
    return d, m.eval()


def _cls_rows(teacher, tokenizer):
    rows = [{"text": a, "text_pair": b} for a in SENTS for b in SENTS[:4]]
    enc = tokenizer([r["text"] for r in rows], [r["text_pair"] for r in rows], padding=True, return_tensors="pt")
    with torch.no_grad():
        pred = teacher(**enc).logits.argmax(-1).tolist()
    for r, y in zip(rows, pred):
        r["label"] = y  # labels a fine-tuned teacher agrees with
    return rows


def test_bert_teacher_gets_its_token_types(tmp_path, tokenizer, task_student):
    tdir, teacher = _teacher(tmp_path, tokenizer, "cls")
    rows = _cls_rows(teacher, tokenizer)[:6]
    feats = TK.encode(TK.SEQ_CLS, rows, tokenizer, teacher.config, 64, 16)
    batch = TK.collate(feats, list(range(6)), 0)
    assert batch["token_type_ids"].sum() > 0  # pairs: the second segment has type 1
    cfg = TK.TaskConfig(task="seq-cls", teacher=str(tdir), student=str(task_student), data="-", out="-",
                        max_len=64, doc_stride=16)
    student = TK.load_task_student(str(task_student), TK.SEQ_CLS, teacher)
    terms = TK.task_terms(student, teacher, batch, cfg)
    with torch.no_grad():
        with_tt = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                          token_type_ids=batch["token_type_ids"]).logits
        without = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert torch.allclose(terms["teacher"]["logits"], with_tt)
    assert not torch.allclose(with_tt, without, atol=1e-3)  # so the check above can tell the two apart
    assert terms["total"].item() == pytest.approx(0.5 * terms["ce"].item() + 0.5 * terms["task"].item())


def test_layer_pairs_meet_the_last_layer():
    assert TK.layer_pairs(3, 6) == [(1, 2), (2, 4), (3, 6)]
    assert TK.layer_pairs(2, 2) == [(1, 1), (2, 2)]
    assert TK.layer_pairs(4, 6)[-1] == (4, 6)
    with pytest.raises(UsageError, match="no deeper"):
        TK.layer_pairs(4, 2)


def _qa_batch(tmp_path, tokenizer):
    """A tiny QA teacher, one batch of three of its windows and the TaskConfig fields the term tests share."""
    tdir, teacher = _teacher(tmp_path, tokenizer, "qa")
    ctx = SENTS[0]
    rows = [{"question": f"what is word {i}?", "context": ctx,
             "answers": {"text": [ctx.split()[i]], "answer_start": [ctx.index(ctx.split()[i])]}} for i in (1, 3, 5)]
    feats = TK.encode(TK.QA, rows, tokenizer, teacher.config, 64, 16)
    batch = TK.collate(feats, list(range(len(rows))), 0)
    return tdir, teacher, batch, dict(task="qa", teacher=str(tdir), data="-", out="-", max_len=64, doc_stride=16)


def test_hidden_alignment_term(tmp_path, tokenizer):
    """alpha_hid adds the mean cosine distance of each student layer to the teacher's at the same depth:
    0 for a student that is the teacher, the hand-computed value for a 1-layer cut, absent when off."""
    import torch.nn.functional as F

    tdir, teacher, batch, base = _qa_batch(tmp_path, tokenizer)

    same = TK.init_task_student(str(tdir), tmp_path / "same", [0, 1])  # the teacher itself
    student = TK.load_task_student(str(same), TK.QA, teacher).eval()
    terms = TK.task_terms(student, teacher, batch, TK.TaskConfig(student=str(same), alpha_hid=1.0, **base))
    assert terms["hid"].item() == pytest.approx(0.0, abs=1e-5)

    cut = TK.init_task_student(str(tdir), tmp_path / "cut", [0])  # teacher layer 0, yet meets the last
    student = TK.load_task_student(str(cut), TK.QA, teacher).eval()
    off = TK.task_terms(student, teacher, batch, TK.TaskConfig(student=str(cut), **base))
    on = TK.task_terms(student, teacher, batch, TK.TaskConfig(student=str(cut), alpha_hid=2.0, **base))
    assert off["hid"].item() == 0.0
    with torch.no_grad():
        kw = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        s_h = student(**kw, output_hidden_states=True).hidden_states[1]
        t_h = teacher(**kw, output_hidden_states=True).hidden_states[2]
    real = batch["attention_mask"].bool()
    expected = (1 - F.cosine_similarity(s_h[real], t_h[real], dim=-1)).mean().item()
    assert expected > 0.01  # the cut differs from the teacher, so the check below can fail
    assert on["hid"].item() == pytest.approx(expected, rel=1e-4)
    assert on["total"].item() == pytest.approx(off["total"].item() + 2.0 * expected, rel=1e-4)
    on["total"].backward()  # the term trains the student
    assert student.bert.encoder.layer[0].output.dense.weight.grad.abs().sum() > 0


def test_final_hidden_error_term(tmp_path, tokenizer):
    """alpha_general adds the general phase's loss on the task's own windows: 0 for a student that is the
    teacher, the hand-computed squared error of the final hidden states for a cut, nothing when off."""
    tdir, teacher, batch, base = _qa_batch(tmp_path, tokenizer)

    same = TK.init_task_student(str(tdir), tmp_path / "same", [0, 1])
    student = TK.load_task_student(str(same), TK.QA, teacher).eval()
    terms = TK.task_terms(student, teacher, batch, TK.TaskConfig(student=str(same), alpha_general=1.0, **base))
    assert terms["hmse"].item() == pytest.approx(0.0, abs=1e-6)

    cut = TK.init_task_student(str(tdir), tmp_path / "cut", [0])
    student = TK.load_task_student(str(cut), TK.QA, teacher).eval()
    off = TK.task_terms(student, teacher, batch, TK.TaskConfig(student=str(cut), **base))
    on = TK.task_terms(student, teacher, batch, TK.TaskConfig(student=str(cut), alpha_general=0.5, **base))
    assert off["hmse"].item() == 0.0 and on["hid"].item() == 0.0  # one term does not switch on the other
    with torch.no_grad():
        kw = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        s_h = student(**kw, output_hidden_states=True).hidden_states[-1]
        t_h = teacher(**kw, output_hidden_states=True).hidden_states[-1]
    expected = ((s_h - t_h) ** 2).sum(-1)[batch["attention_mask"].bool()].mean().item()
    assert expected > 0.01  # the cut differs from the teacher, so the check below can fail
    assert on["hmse"].item() == pytest.approx(expected, rel=1e-4)
    assert on["total"].item() == pytest.approx(off["total"].item() + 0.5 * expected, rel=1e-4)
    # the same quantity as the general phase's loss, on these windows
    gen = TK.general_terms(student, teacher, batch)
    assert gen["hmse"].item() == pytest.approx(expected, rel=1e-4)
    on["total"].backward()  # the term trains the student
    assert student.bert.encoder.layer[0].output.dense.weight.grad.abs().sum() > 0


def test_qa_targets_point_at_the_answer(tokenizer):
    ctx = SENTS[0]
    rows = [{"question": "what does the parser return?", "context": ctx,
             "answers": {"text": ["a dictionary of sections"], "answer_start": [ctx.index("a dictionary")]}},
            {"question": "is there an answer?", "context": ctx, "answers": {"text": [], "answer_start": []}}]
    cfg = tiny_bert_config(1)
    feats = TK.encode(TK.QA, rows, tokenizer, cfg, 64, 16)
    s, e = feats["start_positions"][0], feats["end_positions"][0]
    assert tokenizer.decode(feats["input_ids"][0][s:e + 1]) == "a dictionary of sections"
    assert (feats["start_positions"][1], feats["end_positions"][1]) == (0, 0)
    with pytest.raises(UsageError):
        TK.encode(TK.QA, [{"question": "q"}], tokenizer, cfg, 64, 16)


def test_qa_windows_do_not_depend_on_the_chunking(tokenizer, monkeypatch):
    # encode() tokenises in chunks to keep memory flat on all of SQuAD; windows, token types and
    # targets must be the same as one call over every row (long contexts overflow into several windows).
    ctx = " ".join(SENTS * 3)
    rows = [{"question": f"which sentence mentions {w}?", "context": ctx,
             "answers": {"text": [w], "answer_start": [ctx.index(w)]}}
            for w in ("the queue", "a network connection", "the codec", "all of its contents")]
    cfg = tiny_bert_config(1)
    monkeypatch.setattr(TK, "ENCODE_CHUNK", 1000)
    whole = TK.encode(TK.QA, rows, tokenizer, cfg, 48, 16)
    monkeypatch.setattr(TK, "ENCODE_CHUNK", 3)
    chunked = TK.encode(TK.QA, rows, tokenizer, cfg, 48, 16)
    assert len(whole["input_ids"]) > 2 * len(rows)
    for k in whole:
        assert [list(map(int, x)) if hasattr(x, "__len__") else x for x in whole[k]] == \
            [list(map(int, x)) if hasattr(x, "__len__") else x for x in chunked[k]], k
    assert sum(s > 0 for s in whole["start_positions"]) >= len(rows)  # every answer is inside some window


@pytest.mark.slow
def test_sequence_classification_run(tmp_path, tokenizer, task_student):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tdir, teacher = _teacher(tmp_path, tokenizer, "cls")
    data = tmp_path / "cls.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in _cls_rows(teacher, tokenizer)))
    cfg = TK.TaskConfig(task="seq-cls", teacher=str(tdir), student=str(task_student), data=str(data),
                        out=str(tmp_path / "out"), steps=30, batch_size=8, lr=2e-3, max_len=64, doc_stride=16,
                        progress=False)
    card = TK.distill_task(cfg)
    hist = json.loads((tmp_path / "out" / "task_distillation_card.json").read_text())["history"]
    first = sum(h["loss"] for h in hist[:3]) / 3
    last = sum(h["loss"] for h in hist[-3:]) / 3
    assert last < 0.7 * first, [h["loss"] for h in hist]
    assert card["teacher_token_types"] is True and 0 <= card["teacher_agreement"] <= 1
    m = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out")
    assert type(m).__name__ == "DistilBertForSequenceClassification" and m.config.num_labels == 3
    enc = AutoTokenizer.from_pretrained(tmp_path / "out")("a", "b", return_tensors="pt")
    assert "token_type_ids" not in enc  # the saved tokenizer fits the student
    m(**enc)


@pytest.mark.slow
def test_question_answering_run(tmp_path, tokenizer, task_student):
    from transformers import AutoModelForQuestionAnswering

    tdir, _ = _teacher(tmp_path, tokenizer, "qa")
    rows = []
    for s in SENTS:
        w = s.split()[3]
        rows.append({"question": f"which word is fourth in: {s[:20]}?", "context": s,
                     "answers": {"text": [w], "answer_start": [s.index(" " + w + " ") + 1]}})
    data = tmp_path / "qa.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    cfg = TK.TaskConfig(task="qa", teacher=str(tdir), student=str(task_student), data=str(data),
                        out=str(tmp_path / "out"), steps=25, batch_size=8, lr=2e-3, max_len=64, doc_stride=16,
                        progress=False)
    card = TK.distill_task(cfg)
    hist = json.loads((tmp_path / "out" / "task_distillation_card.json").read_text())["history"]
    assert hist[-1]["loss"] < 0.7 * hist[0]["loss"], [h["loss"] for h in hist]
    assert card["features"] == len(rows)
    assert type(AutoModelForQuestionAnswering.from_pretrained(tmp_path / "out")).__name__ == \
        "DistilBertForQuestionAnswering"


def test_bad_task_inputs(tmp_path):
    with pytest.raises(UsageError):
        TK.TaskConfig(task="ner", teacher="t", student="s", data="d", out="o")
    with pytest.raises(UsageError):
        TK.read_records(tmp_path / "missing.jsonl")
    (tmp_path / "x.jsonl").write_text("[1, 2]")
    with pytest.raises(UsageError):
        TK.read_records(tmp_path / "x.jsonl")


@pytest.mark.parametrize("given, message", [
    ({"batch_size": 0}, "--batch-size must be at least 1, not 0"),
    ({"batch_size": 8.0}, "--batch-size must be an integer"),
    ({"batch_size": True}, "--batch-size must be an integer"),
    ({"max_len": 0}, "--seq-len must be at least 8"),
    ({"epochs": None}, "--epochs must be a number, not None"),
    ({"epochs": 0}, "--epochs must be positive"),
    ({"weight_decay": -0.01}, "--weight-decay must be at least 0"),
    ({"warmup": 1.0}, r"--warmup-fraction is a fraction of the steps, in \[0, 1\)"),
    ({"temperature": None}, "--temperature must be a number, not None"),
    ({"alpha_ce": float("nan")}, "--alpha-ce must be a number, not nan"),
    ({"seed": None}, "--seed must be an integer, not None"),
    ({"checkpoint_every": -5}, "--checkpoint-every must be at least 0"),
    ({"keep_checkpoints": 0}, "keep_checkpoints must be at least 1"),
    ({"max_examples": 0}, "--max-examples must be at least 1"),
    ({"stop_after": 0}, "--stop-after must be at least 1"),
    ({"lr": 0.0}, "--lr must be positive"),
])
def test_every_number_is_checked_when_the_config_is_made(given, message):
    # The Python API is a front door too: these once passed and failed later inside torch, or not at all.
    with pytest.raises(UsageError, match=message):
        TK.TaskConfig(task="qa", teacher=None, student="s", data="d", out="o", **given)


def test_none_still_means_the_recipe():
    c = TK.TaskConfig(task="qa", teacher="t", student="s", data="d", out="o", lr=None, batch_size=None,
                      max_len=None, weight_decay=None, doc_stride=None, max_examples=None, stop_after=None)
    r = TK.recipe("qa", distil=True)
    assert (c.lr, c.batch_size, c.max_len, c.weight_decay) == (r["lr"], r["batch_size"], r["max_len"],
                                                               r["weight_decay"])
    assert c.doc_stride == TK.RECIPE_STRIDE
    assert TK.TaskConfig(task="qa", teacher=None, student="s", data="d", out="o", seed=-3).seed == -3  # torch takes it


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_dropout_replaces_the_students_own(tmp_path, tokenizer, task_student, kind):
    # --dropout 0 trains the student without dropout: every Dropout module of the loaded student has p = 0
    # (BERT and DistilBERT spell the config fields differently); without it the folder's config stands.
    from transformers import AutoModelForQuestionAnswering

    src = _teacher(tmp_path, tokenizer, "qa")[0] if kind == "bert" else task_student
    names = (("hidden_dropout_prob", "attention_probs_dropout_prob") if kind == "bert"
             else ("dropout", "attention_dropout"))
    folder = tmp_path / "with_dropout"  # the tiny fixtures have none: give this copy 0.3
    AutoModelForQuestionAnswering.from_pretrained(src, **dict.fromkeys(names, 0.3)).save_pretrained(folder)
    ps = lambda m: {mod.p for mod in m.modules() if isinstance(mod, torch.nn.Dropout)}  # noqa: E731
    own = TK.load_task_student(str(folder), "question-answering", None)
    assert 0.3 in ps(own)
    zero = TK.load_task_student(str(folder), "question-answering", None, dropout=0.0)
    assert ps(zero) == {0.0}


# ---- general distillation before the task (phase "general", edgekit distill general)


def test_general_texts_pack_consecutive_lines_into_paragraphs(tmp_path):
    f = tmp_path / "text.txt"
    f.write_text("\n".join(f"sentence {i} has five words." for i in range(10)) + "\n\n")
    paras = TK.general_texts(str(f), min_words=12)
    # 5 words a line: 3 lines make a paragraph (15 >= 12); the tenth line alone is too short and is dropped
    assert paras == [" ".join(f"sentence {i} has five words." for i in range(j, j + 3)) for j in (0, 3, 6)]
    assert TK.general_texts(str(f), limit=2, min_words=12) == paras[:2]
    assert TK.general_texts(str(f), min_words=1000) == [" ".join(f"sentence {i} has five words." for i in range(10))]
    assert TK.as_pair("The first one. The rest of it. And more.") == ("The first one.", "The rest of it. And more.")
    assert TK.as_pair("x" * 150) == ("x" * 100, "x" * 50)  # no sentence end: the first 100 characters
    with pytest.raises(UsageError, match="does not exist"):
        TK.general_texts(str(tmp_path / "missing.txt"))


def test_general_phase_needs_a_teacher_and_a_known_phase():
    with pytest.raises(UsageError, match="give --teacher"):
        TK.TaskConfig(task="qa", teacher=None, student="s", data="d", out="o", phase="general")
    with pytest.raises(UsageError, match="phase must be one of task, general"):
        TK.TaskConfig(task="qa", teacher="t", student="s", data="d", out="o", phase="pretrain")
    c = TK.TaskConfig(task="qa", teacher="t", student="s", data="d", out="o", phase="general")
    assert (c.lr, c.dropout, c.max_len) == (2e-4, 0.0, 256)  # the task distillation's recipe


def _wiki(tmp_path, n=200):
    f = tmp_path / "wiki.txt"
    f.write_text("\n".join(SENTS[i % len(SENTS)] for i in range(n)))
    return f


def test_general_phase_learns_the_teachers_hidden_states_then_the_task_runs_from_it(tmp_path, tokenizer):
    from transformers import AutoModelForQuestionAnswering

    tdir, teacher = _teacher(tmp_path, tokenizer, "qa")
    init = TK.init_task_student(str(tdir), tmp_path / "init", [1])
    text = _wiki(tmp_path)
    cfg = TK.TaskConfig(task="qa", teacher=str(tdir), student=str(init), data=str(text), out=str(tmp_path / "gd"),
                        phase="general", steps=30, batch_size=4, lr=3e-3, max_len=64, progress=False)
    # the loss is the probe's (benchmarks/general_distill_qa.py): the squared error of the final hidden states,
    # summed over the hidden dimensions, averaged over the real tokens, with the teacher's token types
    feats = TK.encode_general("question-answering", TK.general_texts(str(text), min_words=30), tokenizer, 64)
    assert any(1 in t for t in feats["token_type_ids"])  # the rest of each paragraph is segment B
    batch = TK.collate(feats, [0, 1], tokenizer.pad_token_id)
    student = TK.load_task_student(str(init), "question-answering", None)
    with torch.no_grad():
        terms = TK.task_terms(student, teacher, batch, cfg)
        s, t = student.bert(**batch).last_hidden_state, teacher.bert(**batch).last_hidden_state
    want = ((s - t) ** 2).sum(-1)[batch["attention_mask"].bool()].mean()
    assert terms["total"].item() == pytest.approx(want.item(), rel=1e-5) and terms["hmse"] is terms["total"]
    assert terms["ce"].item() == terms["task"].item() == 0

    card = TK.distill_task(cfg)
    hist = json.loads((tmp_path / "gd" / "general_distillation_card.json").read_text())["history"]
    assert hist[-1]["loss"] < 0.5 * hist[0]["loss"], [h["loss"] for h in hist]
    assert card["phase"] == "general" and "teacher_agreement" not in card and card["text"] == str(text)
    meta = json.loads((tmp_path / "gd" / "edgekit_student.json").read_text())
    assert meta["layer_map"] == [1] and meta["general_distillation"]["steps"] == 30  # the cut's record is kept
    gd = AutoModelForQuestionAnswering.from_pretrained(tmp_path / "gd")
    assert type(gd).__name__ == "BertForQuestionAnswering"
    # the task head is the teacher's, untouched: the general loss does not reach it
    assert torch.equal(gd.qa_outputs.weight, teacher.qa_outputs.weight)

    rows = [{"question": f"which word is fourth in: {x[:20]}?", "context": x,
             "answers": {"text": [x.split()[3]], "answer_start": [x.index(" " + x.split()[3] + " ") + 1]}}
            for x in SENTS]
    data = tmp_path / "qa.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    TK.distill_task(TK.TaskConfig(task="qa", teacher=str(tdir), student=str(tmp_path / "gd"), data=str(data),
                                  out=str(tmp_path / "kd"), steps=3, batch_size=4, max_len=64, doc_stride=16,
                                  progress=False))
    meta = json.loads((tmp_path / "kd" / "edgekit_student.json").read_text())
    assert meta["layer_map"] == [1] and "general_distillation" in meta and meta["task_distillation"]["steps"] == 3
    assert "earlier_phases" not in meta
    # a second task phase from that student (pseudo-pairs, then the labelled epoch) keeps the first's card
    TK.distill_task(TK.TaskConfig(task="qa", teacher=str(tdir), student=str(tmp_path / "kd"), data=str(data),
                                  out=str(tmp_path / "kd2"), steps=2, batch_size=4, max_len=64, doc_stride=16,
                                  progress=False))
    meta2 = json.loads((tmp_path / "kd2" / "edgekit_student.json").read_text())
    assert meta2["task_distillation"]["steps"] == 2 and meta2["general_distillation"] == meta["general_distillation"]
    assert meta2["earlier_phases"] == [{"task_distillation": meta["task_distillation"]}]


def test_a_general_checkpoint_is_not_resumed_as_a_task_run(tmp_path, tokenizer):
    tdir, _ = _teacher(tmp_path, tokenizer, "qa")
    init = TK.init_task_student(str(tdir), tmp_path / "init", [0])
    kw = dict(task="qa", teacher=str(tdir), student=str(init), out=str(tmp_path / "gd"), steps=4, batch_size=4,
              max_len=64, progress=False)
    card = TK.distill_task(TK.TaskConfig(data=str(_wiki(tmp_path)), phase="general", stop_after=2, **kw))
    assert card["stopped"]
    with pytest.raises(UsageError, match="phase: 'general' then, 'task' now"):
        TK.distill_task(TK.TaskConfig(data=str(_wiki(tmp_path)), resume="auto", **kw))
    card = TK.distill_task(TK.TaskConfig(data=str(_wiki(tmp_path)), phase="general", resume="auto", **kw))
    assert card["steps"] == 4 and card["phase"] == "general"
