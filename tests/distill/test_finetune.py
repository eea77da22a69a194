"""``edgekit finetune``: the task loop without a teacher, on a tiny model and the committed SQuAD slice."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgekit.cli import main
from edgekit.core.tasks import Task

SLICE = Path(__file__).parents[1] / "data" / "squad-dev-50.json.xz"

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

@pytest.fixture(scope="module")
def qa_base(tiny_model):
    return str(tiny_model("bert", Task.QUESTION_ANSWERING))

def _ft(base, out, *extra):
    return main(["finetune", "--task", "qa", "--model", base, "--data", str(SLICE), "--out", str(out),
                 "--max-len", "128", "--doc-stride", "32", "--batch-size", "8", "--bf16", "no", "--no-progress",
                 "--max-examples", "16", *extra])

def test_finetune_qa_learns_and_saves_an_exportable_model(qa_base, tmp_path, capsys):
    out = tmp_path / "ft"
    assert _ft(qa_base, out, "--steps", "40", "--lr", "3e-3", "--warmup", "0.1") == 0
    card = json.loads((out / "finetune_card.json").read_text())
    hist = card["history"]
    assert card["teacher"] is None and card["steps"] == 40 and card["examples"] == 16
    assert card["features"] > 16  # long contexts in 128-token windows: several windows per question
    first, last = sum(h["loss"] for h in hist[:5]) / 5, sum(h["loss"] for h in hist[-5:]) / 5
    assert last < 0.6 * first, [round(h["loss"], 3) for h in hist]
    assert all(h["loss_ce"] == 0.0 for h in hist)  # no teacher: the task loss alone
    lrs = [h["lr"] for h in hist]
    # 10% warm-up (4 steps), then linear decay towards 0 at step 40
    assert lrs[:4] == pytest.approx([7.5e-4, 1.5e-3, 2.25e-3, 3e-3]) and lrs[-1] == pytest.approx(3e-3 / 36)
    from edgekit.model.modeling import load_model, load_tokenizer

    model = load_model(str(out), "question-answering")  # a BERT student keeps its token types
    assert "token_type_ids" in model.input_names
    assert "token_type_ids" in load_tokenizer(str(out))("a", "b")

def test_resume_is_exact(qa_base, tmp_path):
    from safetensors.torch import load_file

    assert _ft(qa_base, tmp_path / "a", "--steps", "8") == 0
    assert _ft(qa_base, tmp_path / "b", "--steps", "8", "--stop-after", "3") == 0
    assert not (tmp_path / "b" / "model.safetensors").exists()
    assert (tmp_path / "b" / "checkpoints").is_dir()
    assert _ft(qa_base, tmp_path / "b", "--steps", "8", "--resume", "auto") == 0
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    ha = json.loads((tmp_path / "a" / "finetune_card.json").read_text())["history"]
    hb = json.loads((tmp_path / "b" / "finetune_card.json").read_text())["history"]
    assert [h["loss"] for h in ha] == [h["loss"] for h in hb]

def test_progress_in_a_log_is_plain_lines(qa_base, tmp_path, capsys):
    """stderr is a file (capsys: not a terminal): no carriage-return bar, a plain closing line with the count."""
    assert main(["finetune", "--task", "qa", "--model", qa_base, "--data", str(SLICE), "--out", str(tmp_path / "p"),
                 "--max-len", "128", "--doc-stride", "32", "--batch-size", "8", "--bf16", "no",
                 "--max-examples", "16", "--steps", "3"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    assert "fine-tuning question-answering: 3/3 steps (100%)" in err, err

def test_wall_clock_budget_fits_the_schedule(qa_base, tmp_path):
    out = tmp_path / "budget"
    assert _ft(qa_base, out, "--budget-minutes", "0.1") == 0
    card = json.loads((out / "finetune_card.json").read_text())
    assert card["budget"] == {"minutes": 0.1} and card["planned_steps"] > 5
    assert card["steps"] <= card["planned_steps"] and card["elapsed_s"] < 6 + 30  # the budget, plus saving slack
    # Warm-up then decay, fitted to the planned steps: every step after the timing probe (whose last
    # scheduler step still ran the probe's warm-up) uses the rate of the fitted schedule. On a loaded machine
    # the budget may end soon after the probe, so the shape is checked step by step, not by its peak.
    from edgekit.distill.task import PROBE_STEPS, _Schedule

    fitted = _Schedule(card["planned_steps"], card["warmup"])
    for i, h in enumerate(card["history"][PROBE_STEPS + 1:], PROBE_STEPS + 1):
        assert h["lr"] == pytest.approx(card["lr"] * fitted(i)), i

def test_finetune_sequence_classification_labels_from_data(tiny_model, tmp_path):
    base = str(tiny_model("bert", Task.FEATURE_EXTRACTION))
    rows = [{"text": t, "label": lab} for t, lab in [("the city is large", "big"), ("a small dog", "small"),
                                                     ("the largest river", "big"), ("small fast fox", "small")] * 4]
    data = tmp_path / "cls.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "cls"
    assert main(["finetune", "--task", "seq-cls", "--model", base, "--data", str(data), "--out", str(out),
                 "--steps", "30", "--lr", "3e-3", "--batch-size", "8", "--bf16", "no", "--no-progress"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["id2label"] == {"0": "big", "1": "small"}
    assert main(["eval", str(out), "--jsonl", str(data), "--no-progress", "--threads", "1"]) == 0


def test_squad_file_is_read_as_training_records():
    from edgekit.distill import task as TK

    rows = TK.read_records(SLICE, 10)  # the official SQuAD layout, xz-compressed
    assert len(rows) == 10
    r = rows[0]
    start = r["answers"]["answer_start"][0]
    assert r["context"][start:start + len(r["answers"]["text"][0])] == r["answers"]["text"][0]


def test_task_student_copies_the_chosen_layers(qa_base, tmp_path):
    """A half-depth QA student from a fine-tuned BERT: its layers are the teacher's, by the map."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    from edgekit.distill.task import init_task_student

    out = init_task_student(qa_base, tmp_path / "s", [1])
    t = AutoModelForQuestionAnswering.from_pretrained(qa_base)
    s = AutoModelForQuestionAnswering.from_pretrained(out)
    assert s.config.num_hidden_layers == 1
    assert torch.equal(s.bert.encoder.layer[0].output.dense.weight, t.bert.encoder.layer[1].output.dense.weight)
    assert torch.equal(s.qa_outputs.weight, t.qa_outputs.weight)
    from edgekit.model.modeling import load_model

    assert load_model(str(out), "question-answering").config.num_layers == 1  # exportable by edgekit


def test_distill_task_with_a_bert_student(qa_base, tmp_path):
    from edgekit.distill.task import init_task_student

    student = init_task_student(qa_base, tmp_path / "s", [0])
    assert main(["distill", "task", "--task", "qa", "--teacher", qa_base, "--student", str(student),
                 "--data", str(SLICE), "--out", str(tmp_path / "d"), "--max-len", "128", "--doc-stride", "32",
                 "--steps", "4", "--batch-size", "4", "--max-examples", "8", "--bf16", "no", "--no-progress"]) == 0
    card = json.loads((tmp_path / "d" / "task_distillation_card.json").read_text())
    assert card["teacher_token_types"] and all(h["loss_ce"] > 0 for h in card["history"])

def test_a_resumed_run_keeps_its_recipe(qa_base, tmp_path, capsys):
    """Resuming with another recipe setting is refused, naming it then and now (the schedule's length came
    from the checkpoint and the rest from the new flags: half one recipe, half another, under one card);
    settings of the session (threads, progress) may change."""
    out = tmp_path / "r"
    assert _ft(qa_base, out, "--steps", "6", "--stop-after", "2") == 0
    capsys.readouterr()
    for extra, named in ((("--lr", "1e-3"), "lr: 0.0001 then, 0.001 now"),
                         (("--dropout", "0"), "dropout: None then, 0.0 now"),
                         (("--max-len", "96"), "max_len: 128 then, 96 now"),
                         (("--steps", "9"), "steps: 6 then, 9 now")):
        argv = ["--steps", "6", *extra] if extra[0] != "--steps" else list(extra)
        assert _ft(qa_base, out, *argv, "--resume", "auto") == 2, extra
        err = capsys.readouterr().err
        assert named in err and "resume with the settings it started with" in err and "Traceback" not in err, err
    assert not (out / "model.safetensors").exists()  # nothing trained by a refused resume
    # A checkpoint written before a field existed held its default: the run resumes without it
    from edgekit.distill.task import QA, TaskConfig, recipe_changes_since, started_recipe

    ck = next((out / "checkpoints").glob("step-*"))
    state = json.loads((ck / "state.json").read_text())
    del state["config"]["dropout"]
    (ck / "state.json").write_text(json.dumps(state))
    cfg = TaskConfig(**{**state["config"], "dropout": None, "threads": 1, "resume": "auto"})
    assert recipe_changes_since(ck, cfg) == {}
    assert recipe_changes_since(ck, TaskConfig(**{**state["config"], "dropout": 0.0})) == {"dropout": (None, 0.0)}
    # a fine-tune cannot go on as a distillation (nor the other way)
    assert recipe_changes_since(ck, TaskConfig(**{**state["config"], "teacher": qa_base}))["teacher"] == (None, qa_base)
    # the checkpoint lacking dropout trained with the model's own (the field's ABSENT), not with today's recipe
    # default (a distillation's 0)
    assert recipe_changes_since(ck, TaskConfig(**{**state["config"], "teacher": qa_base}))["dropout"] == (None, 0.0)
    # the caller that owns both runs (shrink) continues as the run began
    again, changed = started_recipe(TaskConfig(**{**state["config"], "lr": 1e-3, "task": QA}), ck)
    assert changed == {"lr": (1e-4, 1e-3)} and again.lr == 1e-4
    # the loss's weights train nothing without a teacher: a fine-tune's checkpoint written with `edgekit
    # finetune`'s old weights (0/1, the API wrote the dataclass's defaults) resumes; a distillation's is refused
    state["config"].update(alpha_ce=0.0, alpha_task=1.0, alpha_hid=0.0, temperature=3.0)
    (ck / "state.json").write_text(json.dumps(state))
    assert recipe_changes_since(ck, cfg) == {}
    assert recipe_changes_since(ck, TaskConfig(**{**state["config"], "alpha_ce": 0.5, "teacher": qa_base,
                                                  "dropout": None}))["alpha_ce"] == (0.0, 0.5)
    assert _ft(qa_base, out, "--steps", "6", "--resume", "auto", "--threads", "1") == 0
    assert (out / "model.safetensors").is_file()
