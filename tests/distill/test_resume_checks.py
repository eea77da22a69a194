"""`distill train --resume` on a damaged checkpoint: a message naming the bad file, exit 2, and
`--resume auto` continuing from the previous good checkpoint (issue 12); another recipe refused on resume."""
from __future__ import annotations


import pytest

from edgekit.cli import main
from edgekit.distill.student import init_student
from edgekit.distill.train import TrainConfig, train


@pytest.mark.slow
def test_damaged_checkpoint_on_resume(tmp_path, mlm_teacher_dir, corpus_file, capsys):
    student = tmp_path / "student"
    init_student(mlm_teacher_dir, student)
    out = tmp_path / "out"
    cfg = TrainConfig(teacher=str(mlm_teacher_dir), student=str(student), out=str(out), data=[str(corpus_file)],
                      cache_dir=str(tmp_path / "cache"), max_len=32, batch_size=4, steps=3, lr=1e-3, warmup=0.0,
                      progress=False, card=False, seed=3, checkpoint_every=1, keep_checkpoints=3, stop_after=2)
    train(cfg)
    ckdir = out / "checkpoints"
    good, bad = sorted(ckdir.glob("step-*"))
    (bad / "optimizer.pt").write_bytes(b"junk" * 64)
    argv = ["distill", "train", "--teacher", str(mlm_teacher_dir), "--student", str(student), "--out", str(out),
            "--data", str(corpus_file), "--cache-dir", str(tmp_path / "cache"), "--steps", "3", "--batch-size", "4",
            "--max-len", "32", "--no-progress", "--lr", "1e-3", "--warmup", "0", "--seed", "3",
            "--checkpoint-every", "1", "--keep-checkpoints", "3"]
    assert main([*argv, "--resume", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "optimizer.pt: unreadable" in err and f"--resume {good}" in err and "Traceback" not in err
    # another recipe on resume is refused before anything is loaded (the schedule would be the checkpoint's,
    # the rest the new flags'); the checkpoint's own settings resume
    assert main([*argv, "--lr", "2e-3", "--resume", "auto"]) == 2
    err = capsys.readouterr().err
    assert "lr: 0.001 then, 0.002 now" in err and "Traceback" not in err, err
    assert main([*argv, "--resume", "auto"]) == 0
    printed = capsys.readouterr()
    assert f"skipping damaged checkpoint {bad}" in printed.out + printed.err
    assert f"resumed from {good}" in printed.out + printed.err
    assert (out / "model.safetensors").is_file()  # training finished from the good checkpoint
