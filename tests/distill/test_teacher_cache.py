"""Encoder-only teachers: pooled embeddings cached once and read back; invalidated by teacher or corpus."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from edgekit.distill.losses import LossWeights
from edgekit.distill.student import init_student
from edgekit.distill.teacher_cache import PooledCache, model_fingerprint
from edgekit.distill.train import TrainConfig, train


@pytest.fixture(scope="module")
def enc_student(tmp_path_factory, encoder_teacher_dir) -> Path:
    d = tmp_path_factory.mktemp("enc_student")
    init_student(encoder_teacher_dir, d)
    return d


def _cfg(teacher, student, out, corpus, cache, **kw) -> TrainConfig:
    base = dict(teacher=str(teacher), student=str(student), out=str(out), data=[str(corpus)], cache_dir=str(cache),
                max_len=32, batch_size=8, steps=3, lr=1e-3, warmup=0.0, progress=False, card=True, seed=3,
                mixed_precision="no", dropout=0.0)
    base.update(kw)
    return TrainConfig(**base)


def _tc(out: Path) -> dict:
    return json.loads((out / "distillation_card.json").read_text())["teacher_cache"]


def test_pooled_cache_round_trip(tmp_path):
    c = PooledCache(tmp_path, "fp", n=10, dim=4)
    assert c.lookup([1, 2]) is None
    v = torch.arange(8, dtype=torch.float32).reshape(2, 4)
    c.store([1, 2], v)
    assert torch.equal(c.lookup([2, 1]), v[[1, 0]])
    assert c.lookup([1, 3]) is None  # any missing row: recompute the batch
    again = PooledCache(tmp_path, "fp", n=10, dim=4)  # reopened from disk
    assert torch.equal(again.lookup([1, 2]), v) and again.fraction_filled == pytest.approx(0.2)
    assert PooledCache(tmp_path, "other-teacher", n=10, dim=4).lookup([1, 2]) is None


def test_second_run_reads_the_cache_and_gives_the_same_losses(tmp_path, encoder_teacher_dir, enc_student,
                                                              corpus_file):
    live = train(_cfg(encoder_teacher_dir, enc_student, tmp_path / "live", corpus_file, tmp_path / "cache",
                      teacher_cache=False))
    first = train(_cfg(encoder_teacher_dir, enc_student, tmp_path / "a", corpus_file, tmp_path / "cache"))
    second = train(_cfg(encoder_teacher_dir, enc_student, tmp_path / "b", corpus_file, tmp_path / "cache"))
    assert _tc(tmp_path / "live" ) is None
    assert _tc(tmp_path / "a")["batches_computed"] == 3 and _tc(tmp_path / "a")["batches_from_cache"] == 0
    assert _tc(tmp_path / "b")["batches_computed"] == 0 and _tc(tmp_path / "b")["batches_from_cache"] == 3
    # the default encoder objective is the normalised pooled MSE alone
    assert set(k for k in first.history[0] if k.startswith("loss_")) == {"loss_nmse"}
    ref = [h["loss"] for h in live.history]
    assert [h["loss"] for h in first.history] == pytest.approx(ref, rel=1e-5)
    assert [h["loss"] for h in second.history] == pytest.approx(ref, rel=1e-5)


def test_cache_is_invalidated_by_teacher_or_corpus(tmp_path, encoder_teacher_dir, enc_student, corpus_file):
    train(_cfg(encoder_teacher_dir, enc_student, tmp_path / "a", corpus_file, tmp_path / "cache"))
    name = _tc(tmp_path / "a")["file"]
    # another teacher (same shapes, one weight changed): same corpus, fresh cache
    from transformers import BertModel

    t2 = tmp_path / "teacher2"
    shutil.copytree(encoder_teacher_dir, t2)
    m = BertModel.from_pretrained(t2)
    with torch.no_grad():
        m.encoder.layer[-1].output.dense.bias.add_(0.5)
    m.save_pretrained(t2)
    assert model_fingerprint(t2) != model_fingerprint(encoder_teacher_dir)
    train(_cfg(t2, enc_student, tmp_path / "b", corpus_file, tmp_path / "cache"))
    tb = _tc(tmp_path / "b")
    assert tb["file"] != name and tb["batches_computed"] == 3
    # another corpus (one line changed): a new token cache folder and a fresh teacher cache
    corpus2 = tmp_path / "corpus2.txt"
    lines = corpus_file.read_text().splitlines()
    corpus2.write_text("\n".join(["An extra first sentence that changes every index of the corpus."] + lines) + "\n")
    train(_cfg(encoder_teacher_dir, enc_student, tmp_path / "c", corpus2, tmp_path / "cache"))
    tc = _tc(tmp_path / "c")
    assert tc["file"] != name and tc["batches_computed"] == 3


def test_no_cache_when_token_terms_need_hidden_states(tmp_path, encoder_teacher_dir, enc_student, corpus_file):
    res = train(_cfg(encoder_teacher_dir, enc_student, tmp_path / "a", corpus_file, tmp_path / "cache",
                     weights=LossWeights(cos=1.0, mse=1.0, nmse=0.0)))
    assert _tc(tmp_path / "a") is None
    assert {k for k in res.history[0] if k.startswith("loss_")} == {"loss_cos", "loss_mse"}
