"""bf16 autocast on CPU: the loss and gradients stay close to fp32; unsupported CPUs fall back to fp32."""
from __future__ import annotations

import pytest
import torch

from edgekit.distill.data import Batch
from edgekit.distill.losses import LossWeights
from edgekit.distill.objective import StudentStep, combine, step_terms
from edgekit.distill.student import build_student, load_teacher
from edgekit.distill.train import TrainConfig, _accelerator, cpu_bf16_supported
from edgekit.core.errors import UsageError


def _batch(vocab: int) -> Batch:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, vocab, (4, 16), generator=g)
    am = torch.ones_like(ids)
    am[2:, 10:] = 0
    return Batch(ids, am, torch.full_like(ids, -100), ids)


@pytest.mark.parametrize("weights", [LossWeights(), LossWeights(cos=1.0, mse=1.0, nmse=0.0, hmse=1.0)])
def test_bf16_autocast_close_to_fp32(encoder_teacher_dir, weights):
    teacher = load_teacher(encoder_teacher_dir)
    student, _ = build_student(teacher)
    # move the student off the teacher's copy so the loss is not ~0 (relative error would be meaningless)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(0.02 * torch.randn_like(p))
    model = StudentStep(student)
    batch = _batch(int(teacher.config.vocab_size))

    def run(bf16: bool):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            terms = step_terms(model, teacher, batch, weights, teacher.kind)
            loss = combine(terms, weights)
        loss.backward()
        grad = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        return float(loss.detach()), grad

    l32, g32 = run(False)
    l16, g16 = run(True)
    assert l32 > 1e-3
    assert l16 == pytest.approx(l32, rel=0.05)
    assert float(torch.nn.functional.cosine_similarity(g16, g32, dim=0)) > 0.98


def test_auto_precision_follows_the_cpu(monkeypatch):
    cfg = TrainConfig(teacher="", student="", out="", cpu=True)
    acc = _accelerator(cfg)
    assert str(acc.mixed_precision) == ("bf16" if cpu_bf16_supported() else "no")
    monkeypatch.setenv("EDGEKIT_NO_BF16", "1")  # the fp32 fallback a CPU without bf16 gets
    assert not cpu_bf16_supported()
    assert str(_accelerator(cfg).mixed_precision) == "no"
    with pytest.raises(UsageError, match="bf16 instructions"):
        _accelerator(TrainConfig(teacher="", student="", out="", cpu=True, mixed_precision="bf16"))
    with pytest.raises(UsageError, match="fp16 needs a GPU"):
        _accelerator(TrainConfig(teacher="", student="", out="", cpu=True, mixed_precision="fp16"))
