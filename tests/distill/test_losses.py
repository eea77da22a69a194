"""Loss values against hand-computed ones, and the gathered-rows step against the full-logits reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from edgekit.distill.losses import LossWeights, cos_sum, kl_sum, mean_pool, mlm_sum, mse_sum, task_kl_sum
from edgekit.core.errors import UsageError


def _softmax(x):
    e = [math.exp(v) for v in x]
    return [v / sum(e) for v in e]


def test_kl_matches_hand_computation():
    s = [[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]]
    t = [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    T = 2.0
    expected = 0.0
    for srow, trow in zip(s, t):
        p = _softmax([v / T for v in trow])
        q = _softmax([v / T for v in srow])
        expected += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    expected *= T * T
    got = kl_sum(torch.tensor(s), torch.tensor(t), T)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # batchmean of the reference code = sum / rows
    ref = torch.nn.KLDivLoss(reduction="batchmean")(torch.log_softmax(torch.tensor(s) / T, -1),
                                                     torch.softmax(torch.tensor(t) / T, -1)) * T * T
    assert (got / 2).item() == pytest.approx(ref.item(), rel=1e-6)
    assert kl_sum(torch.tensor(t), torch.tensor(t), T).item() == pytest.approx(0.0, abs=1e-7)


def test_mlm_cos_mse_match_hand_computation():
    logits = [[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]]
    labels = [0, 1]
    expected = sum(-math.log(_softmax(r)[y]) for r, y in zip(logits, labels))
    assert mlm_sum(torch.tensor(logits), torch.tensor(labels)).item() == pytest.approx(expected, rel=1e-6)

    a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [3.0, 4.0]])
    b = torch.tensor([[0.0, 1.0], [2.0, 2.0], [-3.0, -4.0]])
    # 1 - cos: orthogonal 1, parallel 0, opposite 2
    assert cos_sum(a, b).item() == pytest.approx(3.0, abs=1e-6)

    x = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    y = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    assert mse_sum(x, y).item() == pytest.approx((0 + 4) / 2 + (9 + 16) / 2)


def test_mean_pool_ignores_padding():
    h = torch.tensor([[[1.0, 1.0], [3.0, 5.0], [100.0, 100.0]]])
    am = torch.tensor([[1, 1, 0]])
    assert mean_pool(h, am).tolist() == [[2.0, 3.0]]


def test_task_kl_mask_hides_classes():
    s = torch.tensor([[0.0, 1.0, 50.0]])
    t = torch.tensor([[1.0, 0.0, -50.0]])
    mask = torch.tensor([[True, True, False]])
    p, q = _softmax([0.5, 0.0]), _softmax([0.0, 0.5])
    expected = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q)) * 4
    assert task_kl_sum(s, t, 2.0, mask).item() == pytest.approx(expected, rel=1e-5)


def test_weights_validate():
    with pytest.raises(UsageError):
        LossWeights(temperature=0)
    with pytest.raises(UsageError):
        LossWeights(ce=-1)
    with pytest.raises(UsageError):
        LossWeights(nmse=-0.5)
    w = LossWeights()
    # DistilBERT's triple loss for masked-LM teachers; normalised pooled MSE alone for sentence encoders
    m = w.resolve("mlm")
    assert (m.ce, m.mlm, m.cos, m.mse, m.nmse, m.hmse, m.temperature) == (5.0, 2.0, 1.0, 0.0, 0.0, 0.0, 2.0)
    e = w.resolve("encoder")
    assert (e.cos, e.mse, e.nmse, e.hmse) == (0.0, 0.0, 1.0, 0.0)
    # an explicit weight wins over the kind's default
    assert LossWeights(cos=0.5).resolve("encoder").cos == 0.5 and LossWeights(cos=0.0).resolve("mlm").cos == 0.0


def test_nmse_is_two_minus_two_cos():
    from edgekit.distill.losses import nmse_sum

    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    cos = torch.nn.functional.cosine_similarity(s, t, dim=-1)
    assert nmse_sum(s, t).item() == pytest.approx((2 - 2 * cos).sum().item(), rel=1e-5)
    assert nmse_sum(3 * t, t).item() == pytest.approx(0.0, abs=1e-6)  # scale-free


def _batch(seed: int = 0):
    from edgekit.distill.data import Batch, MaskingConfig, mask_example, token_probs

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 5000, (3, 24), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    am = torch.ones_like(ids)
    am[1, 15:] = 0
    ids[1, 15:] = 0
    probs = token_probs(np.ones(30522), 0.7, [0, 100, 101, 102, 103])
    rows = [mask_example(ids[b, :int(am[b].sum())].numpy(), probs, MaskingConfig(), 103, 30522, g)
            for b in range(3)]
    mi = ids.clone()
    lab = torch.full_like(ids, -100)
    for b, (x, y) in enumerate(rows):
        mi[b, :len(x)] = x
        lab[b, :len(y)] = y
    return Batch(mi, am, lab, ids)


@pytest.mark.parametrize("restrict", [False, True])
def test_gathered_projection_equals_full_logits(restrict):
    """Our step (projection only at needed rows) gives the losses of the full-logits implementation."""
    from distill_fixtures import tiny_mlm_teacher

    from edgekit.distill.objective import StudentStep, combine, full_logits_terms, rows_for, step_terms
    from edgekit.distill.student import build_student, load_teacher

    teacher = load_teacher(tiny_mlm_teacher())
    torch.manual_seed(0)
    student, _ = build_student(teacher)
    with torch.no_grad():  # move the student away from the teacher so every term is non-trivial
        for p in student.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    student.eval()
    batch = _batch()
    w = LossWeights(restrict_ce_to_mask=restrict)
    seen = []
    h = student.vocab_projector.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    ours = step_terms(StudentStep(student), teacher, batch, w, "mlm")
    h.remove()
    ref = full_logits_terms(student, teacher, batch, w)
    assert set(ours) == set(ref) == {"ce", "mlm", "cos"}
    for k in ours:
        assert int(ours[k][1]) == int(ref[k][1])
        assert ours[k][0].item() == pytest.approx(ref[k][0].item(), rel=1e-5, abs=1e-6)
        assert ours[k][0].item() > 1e-4
    assert combine(ours, w).item() == pytest.approx(combine(ref, w).item(), rel=1e-5)
    n_masked = int((batch.labels != -100).sum())
    n_real = int(batch.attention_mask.sum())
    # The projection ran on exactly the rows a loss reads: masked ones, or all real tokens (never padding).
    assert seen == [n_masked if restrict else n_real]
    assert len(rows_for(batch, w, "mlm")) == seen[0] < batch.input_ids.numel()
