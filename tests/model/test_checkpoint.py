"""A task-training checkpoint as a model: ``edgekit eval OUT/checkpoints/step-N`` scores what training saved."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgekit.cli import main
from edgekit.core.tasks import Task

SLICE = Path(__file__).parents[1] / "data" / "squad-dev-50.json.xz"

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory):
    """A tiny QA model fine-tuned for 8 steps at a high rate, with a checkpoint at step 4."""
    init = tmp_path_factory.mktemp("init") / "base"
    shutil.copytree(tiny_model("bert", Task.QUESTION_ANSWERING), init)  # named "base" in the eval rows
    out = tmp_path_factory.mktemp("ft") / "ft"
    assert main(["finetune", "--task", "qa", "--model", str(init), "--data", str(SLICE), "--out", str(out),
                 "--max-len", "128", "--doc-stride", "32", "--batch-size", "8", "--bf16", "no", "--no-progress",
                 "--max-examples", "16", "--steps", "8", "--lr", "3e-3", "--checkpoint-every", "4"]) == 0
    return init, out


def _eval(paths, out: Path) -> list[dict]:
    js = out / "e.json"
    assert main(["eval", *map(str, paths), "--squad", str(SLICE), "--n", "12", "--output", str(js),
                 "--no-progress", "--threads", "1"]) == 0
    return json.loads(js.read_text())["results"]


def test_eval_scores_a_checkpoint_as_the_model_its_weights_make(trained, tmp_path, capsys):
    from edgekit.model.checkpoint import checkpoint_model

    init, out = trained
    ck = out / "checkpoints" / "step-00000004"
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [ck.name]
    made = checkpoint_model(ck, tmp_path / "made")  # its weights, byte for byte (next test)
    rows = _eval([ck, made, out, init], tmp_path)
    by = {Path(r["name"]).name: r for r in rows}
    assert list(by) == [ck.name, "made", "ft", "base"]  # named by the path given, not a temporary folder
    assert by[ck.name]["kind"] == "pytorch" and by[ck.name]["reference"] == str(ck)
    # The checkpoint answers as the folder of its weights, word for word ...
    assert by[ck.name]["predictions"] == by["made"]["predictions"] and by[ck.name]["metrics"] == by["made"]["metrics"]
    # ... and neither as the folder training started from nor as the end of training
    assert by[ck.name]["predictions"] != by["base"]["predictions"]
    assert by[ck.name]["predictions"] != by["ft"]["predictions"]
    assert f"| ft/{ck.name} | pytorch | fp32 | 12 |" in capsys.readouterr().out  # which run's checkpoint


def test_checkpoint_model_writes_a_whole_folder(trained, tmp_path):
    from safetensors.torch import load_file

    from edgekit.model.checkpoint import checkpoint_model, read_task_checkpoint

    init, out = trained
    ck = out / "checkpoints" / "step-00000004"
    info = read_task_checkpoint(ck)
    assert (info.step, info.total, info.task, info.init) == (4, 8, "question-answering", init)
    dest = checkpoint_model(ck, tmp_path / "m")
    saved, weights = load_file(dest / "model.safetensors"), load_file(ck / "student.safetensors")
    assert saved.keys() == weights.keys() and all((saved[k] == weights[k]).all() for k in saved)
    assert (dest / "tokenizer.json").is_file() or (dest / "vocab.txt").is_file()
    assert not (tmp_path / "m.partial").exists()


def test_checkpoint_errors_say_what_to_do(trained, tmp_path, capsys):
    init, out = trained
    ck = tmp_path / "step-00000004"
    shutil.copytree(out / "checkpoints" / "step-00000004", ck)
    state = json.loads((ck / "state.json").read_text())
    state["config"]["student"] = str(tmp_path / "gone")
    (ck / "state.json").write_text(json.dumps(state))
    assert main(["eval", str(ck), "--squad", str(SLICE), "--n", "2", "--no-progress"]) == 2
    assert "was trained from" in capsys.readouterr().err
    state["config"]["student"] = str(init)
    (ck / "state.json").write_text(json.dumps(state))
    weights = ck / "student.safetensors"
    weights.write_bytes(weights.read_bytes()[:weights.stat().st_size // 2])  # cut short, as by a full disk
    assert main(["eval", str(ck), "--squad", str(SLICE), "--n", "2", "--no-progress"]) == 2
    assert "damaged or incomplete" in capsys.readouterr().err
    del state["config"]["task"]  # an encoder distillation's checkpoint: no task model to score
    (ck / "state.json").write_text(json.dumps(state))
    assert main(["eval", str(ck), "--squad", str(SLICE), "--n", "2", "--no-progress"]) == 2
    assert "distill compare" in capsys.readouterr().err


def test_relative_paths_are_read_from_the_folder_training_ran_in(tiny_model, tmp_path, monkeypatch):
    from edgekit.model.checkpoint import read_task_checkpoint

    work = tmp_path / "work"
    shutil.copytree(tiny_model("bert", Task.QUESTION_ANSWERING), work / "base")
    monkeypatch.chdir(work)  # training sees `base` and `runs/ft`, relative
    assert main(["finetune", "--task", "qa", "--model", "base", "--data", str(SLICE), "--out", "runs/ft",
                 "--max-len", "128", "--doc-stride", "32", "--batch-size", "8", "--mixed-precision", "no",
                 "--no-progress", "--max-examples", "8", "--steps", "4", "--checkpoint-every", "2"]) == 0
    monkeypatch.chdir(tmp_path)  # eval runs elsewhere
    ck = Path("work/runs/ft/checkpoints/step-00000002")
    assert read_task_checkpoint(ck).init.resolve() == (work / "base").resolve()
    assert main(["eval", str(ck), "--squad", str(SLICE), "--n", "2", "--no-progress", "--threads", "1"]) == 0
