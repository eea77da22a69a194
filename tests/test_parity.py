import numpy as np
import pytest
import torch

from edgekit.converter import Tolerance
from edgekit.parity import best_span, compare, cosine, psnr, task_agreement
from edgekit.tasks import Task


def test_psnr_matches_the_ane_transformers_formula():
    ref = np.array([1.0, -2.0, 4.0])
    got = ref + np.array([0.1, -0.1, 0.0])
    rms = np.sqrt(np.mean((ref - got) ** 2))
    assert psnr(ref, got) == pytest.approx(20 * np.log10((4.0 + 1e-5) / (rms + 1e-10)))
    assert psnr(ref, ref) > 100


def test_cosine_edge_cases():
    assert cosine(np.ones(3), np.ones(3)) == pytest.approx(1.0)
    assert cosine(np.ones(3), -np.ones(3)) == pytest.approx(-1.0)
    assert cosine(np.zeros(3), np.ones(3)) == 0.0


def test_best_span_respects_order_length_and_mask():
    start = np.array([0.0, 5.0, 0.0, 0.0, 9.0])
    end = np.array([0.0, 0.0, 6.0, 0.0, 0.0])
    valid = np.array([True, True, True, True, False])  # index 4 is padding: its 9.0 must be ignored
    assert best_span(start, end, valid) == (1, 2)
    assert best_span(start, end, valid, max_len=1) != (1, 2)  # span of 2 tokens is too long


def test_agreement_for_classification_counts_argmax():
    refs = [{"logits": np.array([[1.0, 2.0]])}, {"logits": np.array([[3.0, 0.0]])}]
    gots = [{"logits": np.array([[1.0, 2.5]])}, {"logits": np.array([[0.0, 3.0]])}]
    masks = [np.ones((1, 2))] * 2
    assert task_agreement(Task.SEQUENCE_CLASSIFICATION, refs, gots, masks)[0] == 0.5


class _Model(torch.nn.Module):
    input_names = ("input_ids", "attention_mask")
    output_names = ("logits",)

    def forward(self, ids, mask):
        return (torch.stack([ids.float().sum(1), mask.float().sum(1)], dim=1),)


class _Runner:
    input_names = ("input_ids", "attention_mask")
    output_names = ("logits",)

    def __init__(self, noise=0.0, names=None):
        self.noise = noise
        if names:
            self.output_names = names

    def run(self, feeds):
        out = np.stack([feeds["input_ids"].sum(1), feeds["attention_mask"].sum(1)], axis=1).astype(np.float32)
        return {"logits": out + self.noise}


def _feeds():
    return [{"input_ids": np.array([[3, 4, 5]], np.int32), "attention_mask": np.array([[1, 1, 0]], np.int32)}]


def test_compare_passes_identical_and_names_the_number_that_broke():
    ok = compare(_Model(), lambda: _Runner(), _feeds(), Task.SEQUENCE_CLASSIFICATION, Tolerance(max_abs=1e-6), verbose=False)
    assert ok.passed and ok.outputs[0].max_abs == 0
    bad = compare(_Model(), lambda: _Runner(0.5), _feeds(), Task.SEQUENCE_CLASSIFICATION, Tolerance(max_abs=1e-3), verbose=False)
    assert not bad.passed
    assert bad.failures == ["logits max_abs 0.5 > 0.001"]
    assert [s.name for s in bad.steps if not s.ok] == ["values"]


def test_compare_stops_at_missing_output_names():
    rep = compare(_Model(), lambda: _Runner(names=("scores",)), _feeds(), Task.SEQUENCE_CLASSIFICATION, Tolerance(),
                  verbose=False)
    assert not rep.passed and rep.steps[-1].name == "output names" and not rep.outputs


def test_feature_agreement_searches_within_one_length():
    """The same text padded to two lengths embeds identically: that tie must not count as a miss."""
    emb = [np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])]
    refs = [{"embedding": e} for e in emb + emb]
    masks = [np.ones((1, 8))] * 2 + [np.ones((1, 16))] * 2
    assert task_agreement(Task.FEATURE_EXTRACTION, refs, refs, masks)[0] == 1.0
    swapped = [{"embedding": e} for e in emb[::-1] + emb]
    assert task_agreement(Task.FEATURE_EXTRACTION, refs, swapped, masks)[0] == 0.5
