"""The labelled benchmark of every distillation run: SQuAD question -> paragraph retrieval (R@1, R@5, MRR)."""
from __future__ import annotations

import argparse
import json
import lzma
from pathlib import Path

import pytest
import torch

from edgekit.distill import retrieval as R
from edgekit.distill.card import write_card
from edgekit.cli.distill import add_parser

SHARED_DEV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "squad-v1.1" / "dev-even-articles.json.xz"


def test_hand_computed_recall_and_mrr():
    # 4 questions, 6 paragraphs; scores are q . p. Gold paragraphs and where they rank:
    #   q0 -> p0: scores [.9 .1 .2 .0 .0 .0]          rank 1
    #   q1 -> p1: scores [.5 .4 .6 .0 .0 .0]          rank 3 (p0 .5 and p2 .6 beat .4)
    #   q2 -> p2: scores [.3 .3 .3 .9 .1 .0]          rank 4: p3 beats it, p0 and p1 tie with it (ties count against)
    #   q3 -> p5: scores [.9 .8 .7 .6 .5 .4]          rank 6
    # R@1 = 1/4, R@5 = 3/4, MRR = (1 + 1/3 + 1/4 + 1/6) / 4 = 0.4375
    q = torch.eye(4, 6)  # question i = unit vector e_i, so q_i . p_j = P[j, i]
    scores = torch.tensor([[.9, .1, .2, .0, .0, .0],
                           [.5, .4, .6, .0, .0, .0],
                           [.3, .3, .3, .9, .1, .0],
                           [.9, .8, .7, .6, .5, .4]])
    p = torch.zeros(6, 6)
    p[:, :4] = scores.T
    got = R.retrieval_metrics(q, p, [0, 1, 2, 5])
    assert got["r_at_1"] == pytest.approx(0.25)
    assert got["r_at_5"] == pytest.approx(0.75)
    assert got["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 4 + 1 / 6) / 4)
    assert got["questions"] == 4 and got["paragraphs"] == 6


def test_a_collapsed_model_scores_nothing():
    """Every text on one vector: all paragraphs tie, so the gold one ranks last, not first."""
    q = torch.ones(5, 3)
    p = torch.ones(7, 3)
    got = R.retrieval_metrics(q, p, [0, 1, 2, 3, 4])
    assert got["r_at_1"] == 0.0 and got["r_at_5"] == 0.0 and got["mrr"] == pytest.approx(1 / 7)


def test_the_mrr_share_comes_with_a_paired_interval():
    teacher = torch.tensor([1.0, 1.0, 2.0, 1.0] * 50, dtype=torch.double)  # MRR 0.875
    same = R.mrr_share(teacher.clone(), teacher)
    assert same["share"] == 1.0 and same["interval"] == [1.0, 1.0]  # identical ranks: no doubt at all
    worse = teacher.clone()
    worse[::4] = 2.0  # a quarter of the questions lose their first place: MRR 0.75
    got = R.mrr_share(worse, teacher)
    assert got["share"] == pytest.approx(0.75 / 0.875, abs=1e-4)
    lo, hi = got["interval"]
    assert lo < got["share"] < hi < 1.0  # a real spread, below the teacher: 200 questions are not all of them
    fewer = R.mrr_share(worse[:40], teacher[:40])["interval"]
    assert fewer[1] - fewer[0] > hi - lo  # fewer questions, wider interval


def test_shipped_slice_is_what_the_readme_says():
    rs = R.load_slice()
    assert len(rs.questions) == 300 and len(rs.paragraphs) == 246 and len(rs.articles) == 6
    assert len(set(rs.gold)) > 150  # spread over many paragraphs, not a few
    doc = json.loads(lzma.open(R.RETRIEVAL_SLICE, "rt", encoding="utf-8").read())
    assert doc["attribution"] == R.ATTRIBUTION
    readme = (R.RETRIEVAL_SLICE.parent / "README.md").read_text()
    assert R.RETRIEVAL_SLICE.name in readme and "SQuAD v1.1 (CC BY-SA 4.0" in readme


def test_below_cut_flags_and_card_warns(tmp_path):
    cut = {"r_at_1": 0.5, "r_at_5": 0.8, "mrr": 0.6}
    assert R.below_cut({"r_at_1": 0.6, "r_at_5": 0.85, "mrr": 0.7}, cut) == []
    assert R.below_cut({"r_at_1": 0.4, "r_at_5": 0.8, "mrr": 0.55}, cut) == ["r_at_1", "r_at_5", "mrr"]
    assert R.below_cut({"r_at_5": 1.0}, {"r_at_5": 1.0}) == []  # both perfect: nothing to beat
    r = {"set": "x", "questions": 3, "paragraphs": 4, "teacher": {"r_at_1": 0.7, "r_at_5": 0.9, "mrr": 0.8},
         "initial": cut, "student": {"r_at_1": 0.4, "r_at_5": 0.85, "mrr": 0.55}}
    r["below_untrained_cut"] = R.below_cut(r["student"], r["initial"])
    assert r["below_untrained_cut"] == ["r_at_1", "mrr"]
    assert "R@1, MRR" in R.warning(r)
    assert any("68.8% of the teacher" in line for line in R.table(r))
    write_card(tmp_path, {"teacher": "t", "teacher_kind": "encoder", "tokens_seen": 1, "retrieval": r}, [])
    md = (tmp_path / "DISTILLATION.md").read_text()
    assert "Question -> paragraph retrieval" in md and "| MRR | 0.6000 | 0.5500 | 0.8000 |" in md
    assert "WARNING: the student does not beat the untrained layer cut on retrieval R@1, MRR" in md
    assert json.loads((tmp_path / "distillation_card.json").read_text())["retrieval"]["below_untrained_cut"] == [
        "r_at_1", "mrr"]


def _parse(argv):
    p = argparse.ArgumentParser(prog="edgekit")
    add_parser(p.add_subparsers(dest="command", required=True))
    return p.parse_args(argv)


def _train(tmp_path, teacher, corpus):
    return _parse(["distill", "train", "--teacher", str(teacher), "--out", str(tmp_path / "o"),
                   "--student-layers", "2", "--data", str(corpus), "--cache-dir", str(tmp_path / "cache"),
                   "--steps", "2", "--batch-size", "4", "--max-len", "32", "--no-progress", "--mixed-precision", "no"])


@pytest.mark.slow
def test_distill_train_scores_retrieval_on_a_tiny_encoder(tmp_path, encoder_teacher_dir, corpus_file, capsys):
    ns = _train(tmp_path, encoder_teacher_dir, corpus_file)
    assert ns.func(ns) == 0
    out = capsys.readouterr().out
    assert "question -> paragraph retrieval" in out and "R@5" in out and "MRR" in out
    r = json.loads((tmp_path / "o" / "distillation_card.json").read_text())["retrieval"]
    assert r["questions"] == 300 and r["paragraphs"] == 246
    for who in ("initial", "student", "teacher"):
        assert 0 <= r[who]["r_at_1"] <= r[who]["r_at_5"] <= 1 and 0 < r[who]["mrr"] <= 1
    assert isinstance(r["below_untrained_cut"], list)
    share = r["student_mrr_share"]
    # the tiny model's MRRs are a few hundredths, so their 4-decimal rounding moves the ratio by ~0.1%
    assert share["share"] == pytest.approx(r["student"]["mrr"] / r["teacher"]["mrr"], rel=0.01)
    assert share["interval"][0] <= share["share"] <= share["interval"][1]
    assert "95% interval" in (tmp_path / "o" / "DISTILLATION.md").read_text() and "95% interval" in out
    assert "Question -> paragraph retrieval" in (tmp_path / "o" / "DISTILLATION.md").read_text()


@pytest.mark.slow
def test_distill_train_flags_a_student_worse_than_the_cut(tmp_path, encoder_teacher_dir, corpus_file, capsys,
                                                          monkeypatch):
    real = R.model_ranks
    calls = []

    def fake(model, tok, rs):  # first call: the untrained cut; second: the trained student, made worse
        r = real(model, tok, rs)
        calls.append(r)
        return calls[0] + 1 if len(calls) == 2 else r  # every gold paragraph one place lower than the cut's

    monkeypatch.setattr(R, "model_ranks", fake)
    ns = _train(tmp_path, encoder_teacher_dir, corpus_file)
    assert ns.func(ns) == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "retrieval R@1" in err and "MRR" in err
    card = json.loads((tmp_path / "o" / "distillation_card.json").read_text())
    assert {"r_at_1", "mrr"} <= set(card["retrieval"]["below_untrained_cut"])
    assert "WARNING: the student does not beat" in (tmp_path / "o" / "DISTILLATION.md").read_text()


def test_masked_lm_teachers_get_no_retrieval(tmp_path, mlm_teacher_dir, corpus_file, capsys):
    ns = _train(tmp_path, mlm_teacher_dir, corpus_file)
    assert ns.func(ns) == 0
    assert "retrieval" not in capsys.readouterr().out
    assert "retrieval" not in json.loads((tmp_path / "o" / "distillation_card.json").read_text())


@pytest.mark.skipif(not SHARED_DEV.is_file(), reason=f"shared SQuAD dev file absent ({SHARED_DEV}); "
                    "a fresh clone has no ../shared folder")
def test_shipped_slice_regenerates_and_the_benchmark_set_excludes_it(tmp_path):
    made = R.make_slice(SHARED_DEV, tmp_path / "slice.json.xz")
    assert lzma.open(made).read() == lzma.open(R.RETRIEVAL_SLICE).read()
    bench = R.from_squad(SHARED_DEV, exclude=R.SLICE_ARTICLES, max_questions=2000)
    shipped = R.load_slice()
    assert len(bench.questions) == 2000 and len(bench.articles) == 18
    assert not set(bench.paragraphs) & set(shipped.paragraphs)
    assert not set(bench.articles) & set(shipped.articles)


def test_geometry_losses_vanish_on_the_teacher_and_see_relations():
    from edgekit.distill.losses import rel_sum, rkl_sum

    g = torch.Generator().manual_seed(0)
    t = torch.randn(8, 16, generator=g)
    assert rel_sum(t, t).item() == pytest.approx(0.0, abs=1e-6)
    assert rkl_sum(t, t).item() == pytest.approx(0.0, abs=1e-6)
    # a uniform rescaling keeps every cosine: no relation loss, whatever the norm
    assert rel_sum(3 * t, t).item() == pytest.approx(0.0, abs=1e-5)
    # hand-computed: 2 texts; teacher cosine 0, student cosine 1 -> two off-diagonal cells of (1 - 0)^2
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert rel_sum(b, a).item() == pytest.approx(2.0)
    s = torch.randn(8, 16, generator=g)
    assert rel_sum(s, t).item() > 0 and rkl_sum(s, t).item() > 0


@pytest.mark.slow
def test_layer_alignment_and_relations_train(tmp_path, encoder_teacher_dir, corpus_file):
    """nmse + rel + rkl + hid on a tiny encoder: every term is logged and finite; a full-depth copy aligns exactly."""
    ns = _parse(["distill", "train", "--teacher", str(encoder_teacher_dir), "--out", str(tmp_path / "o"),
                 "--student-layers", "2", "--data", str(corpus_file), "--cache-dir", str(tmp_path / "cache"),
                 "--steps", "2", "--batch-size", "4", "--max-len", "32", "--no-progress", "--mixed-precision", "no",
                 "--alpha-rel", "1", "--alpha-rkl", "1", "--alpha-hid", "1", "--no-retrieval"])
    assert ns.func(ns) == 0
    card = json.loads((tmp_path / "o" / "distillation_card.json").read_text())
    for k in ("loss_nmse", "loss_rel", "loss_rkl", "loss_hid"):
        assert k in card["final"] and card["final"][k] == card["final"][k]
    assert "cosine(every student layer" in (tmp_path / "o" / "DISTILLATION.md").read_text()
    from edgekit.distill.data import Batch  # noqa: F401 - the objective's batch type
    from edgekit.distill.objective import StudentStep, step_terms
    from edgekit.distill.student import build_student, load_teacher
    from edgekit.distill.weights import LossWeights

    teacher = load_teacher(str(encoder_teacher_dir))
    student, layer_map = build_student(teacher, layers=[0, 1, 2, 3])
    step = StudentStep(student.eval())
    step.layer_map = layer_map
    ids = torch.randint(1000, 2000, (3, 10))

    class B:
        clean_ids = ids
        input_ids = ids
        attention_mask = torch.ones_like(ids)

    terms = step_terms(step, teacher, B, LossWeights(nmse=1.0, rel=1.0, rkl=1.0, hid=1.0), "encoder")
    for name in ("nmse", "rel", "rkl", "hid"):
        assert terms[name][0].item() == pytest.approx(0.0, abs=1e-4), name


def test_squad_training_text_skips_held_out_paragraphs(tmp_path):
    from edgekit.distill.corpus import SQUAD_TRAIN, read_lines, squad_train_texts

    doc = {"data": [{"title": "a", "paragraphs": [
        {"context": "Rivers flow to the sea. The held out sentence is here.", "qas": [
            {"id": "1", "question": "Where do rivers flow?"}]},
        {"context": "Mountains are tall. Snow falls on them in winter.", "qas": [
            {"id": "2", "question": "What falls on mountains?"}, {"id": "3", "question": "Tall?"}]}]}]}
    f = tmp_path / "train.json"
    f.write_text(json.dumps(doc))
    got = squad_train_texts(f, held_out=["the held-out sentence is HERE"])
    assert sorted(got) == sorted(["Where do rivers flow?", "What falls on mountains?",
                                  "Mountains are tall. Snow falls on them in winter."])
    assert squad_train_texts(f, n_questions=1, n_contexts=0, held_out=[])[0] in ("Where do rivers flow?",
                                                                                 "What falls on mountains?")
    shipped = list(read_lines(SQUAD_TRAIN))
    assert len(shipped) == 38_000 and "SQuAD" in (SQUAD_TRAIN.parent / "README.md").read_text()
