"""Spearman, the stdlib corpus and the distillation card."""
from __future__ import annotations

import json

import pytest
import torch

from edgekit.distill.card import write_card
from edgekit.distill.compare import spearman
from edgekit.distill.corpus import _sentences, split_held_out, stdlib_sentences


def test_spearman_matches_scipy_with_ties():
    scipy_stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 6, (50,), generator=g).double()  # many ties
    b = a + torch.randn(50, generator=g, dtype=torch.float64)
    assert spearman(a, b) == pytest.approx(scipy_stats.spearmanr(a.numpy(), b.numpy()).statistic, abs=1e-12)
    assert spearman(a, -a) == pytest.approx(-1.0)


def test_corpus_sentences_are_prose_and_split_is_stable():
    doc = ("Return the value of the named attribute of the object.\n\n>>> getattr(x, 'y')\n\n"
           "- a bullet item that is not prose at all here\n\nShort. Another sentence that is long enough to keep.")
    got = list(_sentences(doc))
    assert got == ["Return the value of the named attribute of the object.",
                   "Another sentence that is long enough to keep."]
    s = stdlib_sentences(limit=300)
    assert len(s) == 300 and len(set(s)) == 300
    train, held = split_held_out(s, 0.1)
    assert sorted(train + held) == sorted(s) and 10 <= len(held) <= 60
    assert split_held_out(s, 0.1) == (train, held)


def test_card_keeps_comparison_and_draws_curve(tmp_path):
    info = {"teacher": "t", "teacher_kind": "mlm", "teacher_type": "bert", "teacher_layers": 12,
            "layer_map": [0, 2, 4, 7, 9, 11], "student_layers": 6,
            "loss_weights": {"ce": 5.0, "mlm": 2.0, "cos": 1.0, "mse": 1.0, "temperature": 2.0,
                             "restrict_ce_to_mask": False},
            "steps": 2, "tokens_seen": 1000, "tokens_per_s": 50.0, "elapsed_s": 20.0, "processes": 1,
            "global_batch": 8, "max_len": 32, "lr": 1e-3, "final": {"loss": 1.5, "loss_ce": 0.1}}
    hist = [{"step": 1, "loss": 2.0, "loss_ce": 0.2}, {"step": 2, "loss": 1.5, "loss_ce": 0.1}]
    comp = {"mean_cosine": 0.9, "spearman": 0.8, "pairs": 3, "sentences": 3}
    write_card(tmp_path, info, hist, comparison=comp)
    write_card(tmp_path, info, hist)  # a later write without comparison keeps it
    card = json.loads((tmp_path / "distillation_card.json").read_text())
    assert card["comparison"] == comp and card["loss_curve"] == "loss_curve.png"
    md = (tmp_path / "DISTILLATION.md").read_text()
    assert "[0, 2, 4, 7, 9, 11]" in md and "5.0 x KL(T=2.0)" in md and "Spearman" in md
    assert (tmp_path / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_neighbour_recall_and_agreement():
    from edgekit.distill.compare import agreement, neighbour_recall, regressions

    g = torch.Generator().manual_seed(0)
    t = torch.nn.functional.normalize(torch.randn(200, 16, generator=g), dim=-1)
    assert neighbour_recall(t, t, k=10) == 1.0
    noisy = torch.nn.functional.normalize(t + 0.1 * torch.randn(200, 16, generator=g), dim=-1)
    other = torch.nn.functional.normalize(torch.randn(200, 16, generator=g), dim=-1)
    r_noisy, r_other = neighbour_recall(noisy, t), neighbour_recall(other, t)
    assert 0.3 < r_noisy < 1.0 and r_other < 0.15 and r_other < r_noisy  # chance is 10/199
    a = agreement(noisy, t, spearman_sentences=50)
    assert a["pairs"] == 50 * 49 // 2 and a["sentences"] == 200 and a["recall_at_10"] == pytest.approx(r_noisy)
    b = agreement(other, t)
    assert a["spearman"] > b["spearman"] and a["mean_cosine"] > b["mean_cosine"]
    assert regressions(b, a) == ["spearman", "recall_at_10", "mean_cosine"] and regressions(a, b) == []
