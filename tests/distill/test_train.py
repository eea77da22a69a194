"""Training loop: the loss goes down, resume is exact, 2 processes match 1 process on the same global batch."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.distill.losses import LossWeights
from edgekit.distill.student import init_student
from edgekit.distill.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory, mlm_teacher_dir) -> Path:
    d = tmp_path_factory.mktemp("student")
    init_student(mlm_teacher_dir, d)
    return d


def _cfg(teacher, student, out, corpus, cache, **kw) -> TrainConfig:
    base = dict(teacher=str(teacher), student=str(student), out=str(out), data=[str(corpus)], cache_dir=str(cache),
                max_len=32, batch_size=8, steps=4, lr=1e-3, warmup=0.0, progress=False, card=False, seed=3)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.slow
def test_short_run_lowers_loss(tmp_path, mlm_teacher_dir, student_dir, corpus_file):
    # A randomly initialised student (the copied one already agrees closely with this random teacher), so the
    # distillation terms start far from their optimum.
    import torch
    from transformers import AutoModelForMaskedLM

    torch.manual_seed(5)
    fresh = AutoModelForMaskedLM.from_config(AutoModelForMaskedLM.from_pretrained(student_dir).config)
    fresh.save_pretrained(tmp_path / "fresh")
    for f in student_dir.glob("tokenizer*"):
        shutil.copy(f, tmp_path / "fresh")
    cfg = _cfg(mlm_teacher_dir, tmp_path / "fresh", tmp_path / "out", corpus_file, tmp_path / "cache", steps=25,
               lr=3e-3, weights=LossWeights(restrict_ce_to_mask=True), card=True)
    res = train(cfg)
    assert len(res.history) == 25

    def drop(key: str) -> float:
        v = [h[key] for h in res.history]
        return (sum(v[-3:]) / 3) / (sum(v[:3]) / 3)

    # Seen here: total 0.83, ce 0.46, cos 0.81, mlm 0.97 (the MLM term moves slowest on 30k classes).
    assert drop("loss_ce") < 0.7 and drop("loss_cos") < 0.9 and drop("loss_mlm") < 1.0, res.history
    assert drop("loss") < 0.9
    assert res.tokens_seen > 0 and res.tokens_per_s > 0
    # The output is an ordinary HF folder of a DistilBertForMaskedLM plus a tokenizer and the card.
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    m = AutoModelForMaskedLM.from_pretrained(res.out)
    assert type(m).__name__ == "DistilBertForMaskedLM" and m.config.n_layers == 2
    enc = AutoTokenizer.from_pretrained(res.out)("a test sentence", return_tensors="pt")
    assert "token_type_ids" not in enc
    m(**enc)
    card = json.loads((res.out / "distillation_card.json").read_text())
    assert card["steps"] == 25 and card["student_layers"] == 2 and card["loss_weights"]["ce"] == 5.0
    assert (res.out / "loss_curve.png").stat().st_size > 1000
    assert "Final losses" in (res.out / "DISTILLATION.md").read_text()


@pytest.mark.slow
def test_resume_gives_same_next_losses(tmp_path, mlm_teacher_dir, student_dir, corpus_file):
    # Dropout on, so the restored RNG state matters too.
    common = dict(steps=5, dropout=0.1, checkpoint_every=2)
    full = train(_cfg(mlm_teacher_dir, student_dir, tmp_path / "a", corpus_file, tmp_path / "cache", **common))
    part = train(_cfg(mlm_teacher_dir, student_dir, tmp_path / "b", corpus_file, tmp_path / "cache", stop_after=3,
                      **common))
    assert part.steps == 3 and (tmp_path / "b" / "checkpoints" / "step-00000003").is_dir()
    rest = train(_cfg(mlm_teacher_dir, student_dir, tmp_path / "b", corpus_file, tmp_path / "cache", resume="auto",
                      **common))
    a = [h["loss"] for h in full.history]
    b = [h["loss"] for h in rest.history]
    assert len(b) == 5 and b[:3] == [h["loss"] for h in part.history]
    assert b[3:] == pytest.approx(a[3:], rel=1e-6, abs=1e-7)
    assert a[3] != a[2]  # the compared steps are real, distinct training steps


def _launcher() -> list[str] | None:
    torchrun = Path(sys.executable).with_name("torchrun")
    if torchrun.exists():
        return [str(torchrun), "--standalone", "--nproc_per_node", "2"]
    return None


@pytest.mark.slow
def test_two_processes_match_one(tmp_path, mlm_teacher_dir, student_dir, corpus_file):
    launcher = _launcher()
    assert launcher is not None, "torchrun is installed with torch"
    common = ["--teacher", str(mlm_teacher_dir), "--student", str(student_dir), "--data", str(corpus_file),
              "--cache-dir", str(tmp_path / "cache"), "--max-len", "32", "--steps", "3", "--lr", "1e-3",
              "--warmup", "0", "--dropout", "0", "--no-progress", "--no-card", "--seed", "3",
              "--mixed-precision", "no"]  # exact 1-vs-2-process agreement is an fp32 property
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    one = subprocess.run([sys.executable, "-m", "edgekit.distill.train", *common, "--batch-size", "8",
                          "--out", str(tmp_path / "one"), "--history-json", str(tmp_path / "one.json")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    two_args = [*launcher, "-m", "edgekit.distill.train", *common, "--batch-size", "4", "--out", str(tmp_path / "two"),
                "--checkpoint-every", "2"]
    two = subprocess.run([*two_args, "--history-json", str(tmp_path / "two.json")], env=env, capture_output=True,
                         text=True, timeout=600, cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints" / "step-00000002").glob("rng-*")) == [
        "rng-0.pt", "rng-1.pt"]
    # 2-process resume from the step-2 checkpoint reproduces step 3.
    again = subprocess.run([*two_args, "--resume", "auto", "--history-json", str(tmp_path / "again.json")], env=env,
                           capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    h_again = json.loads((tmp_path / "again.json").read_text())
    h1 = json.loads((tmp_path / "one.json").read_text())
    h2 = json.loads((tmp_path / "two.json").read_text())
    assert len(h1) == len(h2) == 3
    for a, b in zip(h1, h2):
        assert b["tokens_seen"] == a["tokens_seen"]
        for k in ("loss", "loss_ce", "loss_mlm", "loss_cos"):
            assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-6), (k, h1, h2)
    # Step 2 and 3 losses depend on the first updates: equal losses mean equal (all-reduced) gradients.
    assert h1[0]["loss"] != h1[2]["loss"]
    assert h_again[2]["loss"] == pytest.approx(h2[2]["loss"], rel=1e-6)


@pytest.mark.slow
def test_gradient_accumulation_consumes_micro_batches(tmp_path, mlm_teacher_dir, student_dir, corpus_file):
    # lr ~0 so that the second plain step sees the same weights as the second accumulated micro-batch.
    one = train(_cfg(mlm_teacher_dir, student_dir, tmp_path / "a", corpus_file, tmp_path / "cache", steps=2,
                     batch_size=4, lr=1e-12))
    acc = train(_cfg(mlm_teacher_dir, student_dir, tmp_path / "b", corpus_file, tmp_path / "cache", steps=1,
                     batch_size=4, grad_accum=2, lr=1e-12))
    # One step of 2 x 4 sequences reads exactly the batches of two 4-sequence steps (same plan, same order),
    # and its loss is the mean of theirs.
    assert acc.tokens_seen == one.tokens_seen
    for k in ("loss", "loss_ce", "loss_mlm", "loss_cos"):
        assert acc.history[0][k] == pytest.approx((one.history[0][k] + one.history[1][k]) / 2, rel=1e-5)


def test_a_thread_count_of_the_callers_is_kept(tmp_path, mlm_teacher_dir, student_dir, corpus_file, monkeypatch):
    """TrainConfig(threads=N) (benchmarks, --threads) holds the pool at N: the follower never resizes it, even
    when the free cores say otherwise. Without it the follower re-chooses."""
    import torch

    from edgekit.core import threads

    free = {"answers": iter([])}  # the free-core answers, in the order they are asked; then 2
    monkeypatch.setattr(threads, "choose", lambda n=None: next(free["answers"], 2))
    made = []
    real = threads.Follower

    def follower(pinned=None, **kw):
        f = real(pinned=pinned, every_s=0.0)
        made.append(f)
        return f

    monkeypatch.setattr(threads, "Follower", follower)
    saved = torch.get_num_threads()
    try:
        train(_cfg(mlm_teacher_dir, student_dir, tmp_path / "a", corpus_file, tmp_path / "cache", threads=1))
        assert made[-1].pinned == 1 and made[-1].changes == [] and torch.get_num_threads() == 1
        free["answers"] = iter([2] + [1] * 10_000)  # two free cores at the start, then one
        train(_cfg(mlm_teacher_dir, student_dir, tmp_path / "b", corpus_file, tmp_path / "cache"))
        f = made[-1]
        assert f.pinned is None and f.at_start == 2 and f.changes and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(saved)
