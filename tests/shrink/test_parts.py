"""The parts of a shrink run that need no training: the TRAIN split, layer maps, options, budgets."""
from __future__ import annotations

import json

import pytest

from edgekit.core.errors import UsageError
from edgekit.shrinker import data as D
from edgekit.shrinker.layers import candidate_maps, parse_layers
from edgekit.shrinker.run import ShrinkOptions, budget_note, lengths_of, precisions_of, teacher_budget


def test_held_out_slice_is_whole_contexts_from_train(tmp_path, train_file):
    split = D.split_train("question-answering", train_file, tmp_path, heldout_n=8)
    train = [json.loads(x) for x in split.train.read_text().splitlines()]
    held = [json.loads(x) for x in split.heldout.read_text().splitlines()]
    assert held and train and 1 <= split.n_heldout <= 50 // 5 + 5
    assert not {r["context"] for r in train} & {r["context"] for r in held}
    assert len(D.heldout_questions("question-answering", split.heldout)) == len(held)


def test_classification_split_and_calibration(tmp_path, cls_files):
    split = D.split_train("sequence-classification", cls_files[0], tmp_path, heldout_n=10)
    assert (split.n_train, split.n_heldout) == (50, 10)
    cal = D.write_calibration("sequence-classification", split.train, tmp_path / "cal.txt")
    assert len(cal.read_text().splitlines()) == 50


def test_qa_calibration_is_pairs(tmp_path, train_file):
    split = D.split_train("question-answering", train_file, tmp_path)
    lines = D.write_calibration("question-answering", split.train, tmp_path / "cal.txt").read_text().splitlines()
    assert lines and all(line.count("\t") == 1 for line in lines)


def test_layer_maps():
    assert parse_layers("3") == 3 and parse_layers(3) == 3 and parse_layers("0,2,4") == [0, 2, 4]
    with pytest.raises(UsageError):
        parse_layers("three")
    assert len(candidate_maps(6, 3)) == 20 and [0, 2, 4] in candidate_maps(6, 3)
    big = candidate_maps(12, 6)
    assert 1 < len(big) <= 20 and all(len(m) == 6 and m == sorted(m) for m in big)
    assert [0, 2, 4, 7, 9, 11] in big or [0, 2, 4, 6, 8, 10] in big


def test_the_probe_decides_the_layer_map_not_the_untrained_score(tmp_path, monkeypatch):
    """The shared SQuAD model's case: [0,3,4] scored best untrained, [0,2,4] after the same short training."""
    import edgekit.distill.task as T
    import edgekit.shrinker.layers as L

    monkeypatch.setattr(L, "teacher_depth", lambda teacher: 6)
    monkeypatch.setattr(T, "init_task_student", lambda teacher, folder, m: (
        folder.mkdir(parents=True), (folder / "map.json").write_text(json.dumps(m))))
    untrained = {(0, 3, 4): 15.35, (0, 2, 4): 14.94, (1, 3, 5): 11.37}
    after = {(0, 3, 4): 38.3, (0, 2, 4): 58.1, (1, 3, 5): 50.0}

    spread = {(1, 3, 5): [8.0, -8.0, 0.0]}  # per-question scores around a map's mean (paired with the others)

    def score(folder):  # each question's score: three questions
        m = tuple(json.loads((folder / "map.json").read_text()))
        mean = after[m] if (folder / "trained").exists() else untrained.get(m, 1.0)
        return [mean + d for d in spread.get(m, [0.0, 0.0, 0.0])]

    probed = []

    def probe(init, out):
        out.mkdir()
        (out / "map.json").write_text((init / "map.json").read_text())
        (out / "trained").write_text("")
        probed.append(json.loads((init / "map.json").read_text()))
        return out

    said = []
    got = L.choose_layer_map("t", 3, tmp_path / "layers", score, said.append, probe)
    assert len(got["measured"]) == 20 and probed == [[0, 3, 4], [0, 2, 4], [1, 3, 5]]
    assert got["map"] == [0, 2, 4] and got["chosen_by"] == "probe" and "margin" not in got
    assert json.loads((tmp_path / "layers" / "init" / "map.json").read_text()) == [0, 2, 4]
    assert sorted(p.name for p in (tmp_path / "layers").iterdir()) == ["init"]  # no copy left behind
    # without a probe the untrained score decides, as before
    assert L.choose_layer_map("t", 3, tmp_path / "l2", score, said.append)["map"] == [0, 3, 4]
    # the evenly spaced map is always probed, even when its untrained score is not among the best
    untrained[(0, 2, 4)] = 0.5
    probed.clear()
    assert L.choose_layer_map("t", 3, tmp_path / "l3", score, said.append, probe)["map"] == [0, 2, 4]
    assert probed == [[0, 3, 4], [1, 3, 5], [0, 2, 4]]
    # another map kept: how far it is ahead of the evenly spaced one, with the paired interval, is recorded
    after[(1, 3, 5)] = 60.0
    got = L.choose_layer_map("t", 3, tmp_path / "l4", score, said.append, probe)
    assert got["map"] == [1, 3, 5] and got["margin"]["over"] == [0, 2, 4] and got["margin"]["n"] == 3
    lo, hi = got["margin"]["interval"]
    assert got["margin"]["diff"] == pytest.approx(1.9) and lo < 0 < hi  # questions disagree: not decided
    assert "+1.90 [" in said[-1] and "over the evenly spaced [0, 2, 4] on 3 held-out questions (within" in said[-1]
    spread[(1, 3, 5)] = [0.5, 0.5, 0.5]
    got = L.choose_layer_map("t", 3, tmp_path / "l5", score, said.append, probe)
    assert got["margin"]["interval"][0] > 0 and "(beyond the sampling error)" in said[-1]


def test_probe_length():
    from edgekit.shrinker.run import PROBE_MAX_STEPS, probe_length

    class O:
        budget_minutes, steps = None, None

    o = O()
    assert probe_length(o, 87_496, 32) == {"steps": 273}  # a tenth of an epoch of SQuAD
    o.steps = 10_000
    assert probe_length(o, 87_496, 32) == {"steps": PROBE_MAX_STEPS}
    o.steps = 40
    assert probe_length(o, 87_496, 32) == {"steps": 4}
    o.steps = 3
    assert probe_length(o, 10, 4) == {"steps": 1}
    o.steps, o.budget_minutes = None, 60.0
    assert probe_length(o, 10, 4) == {"budget_minutes": 6.0}


def test_precisions_and_lengths():
    assert precisions_of("onnx", "all") == ["fp32", "fp16", "int8-dynamic", "int8-dynamic-full", "int8-static"]
    assert precisions_of("tflite", "fp32,int8") == ["fp32", "int8-dynamic"]
    with pytest.raises(UsageError):
        precisions_of("onnx", "int8-weight")
    assert lengths_of("tflite", "question-answering") == ([384], [128, 256, 384])
    assert lengths_of("torchscript", "question-answering") == ([384], None)
    assert lengths_of("onnx", "sequence-classification") == ([128], None)
    assert lengths_of("tflite", "question-answering", "64,128,192,256,320,384") == ([384], [64, 128, 192, 256, 320, 384])


def test_teacher_budget_from_its_card(tmp_path):
    assert teacher_budget(str(tmp_path)) is None
    (tmp_path / "finetune.json").write_text(json.dumps({"steps": 930, "batch": 32, "examples_seen": 29760}))
    t = teacher_budget(str(tmp_path))
    assert t["steps"] == 930
    note = budget_note(t, 3044, 32)
    assert "930 steps" in note and "trained longer" in note
    assert "trained longer" not in budget_note(t, 500, 32)
    assert "not known" in budget_note(None, 10, 4)
    # a general distillation is the student's budget too, named beside the teacher's
    assert "also trained 1,500 steps on unlabelled text" in budget_note(t, 3044, 32, 1500)
    assert "also trained 20 steps on unlabelled text" in budget_note(None, 10, 4, 20)
    assert "unlabelled" not in budget_note(t, 3044, 32)


@pytest.mark.parametrize("kw,message", [
    ({"steps": 5, "budget_minutes": 1.0}, "not both"),
    ({"bundle": "android", "target": "onnx"}, "ships a tflite file"),
    ({"max_f1_drop": -1}, "between 0 and 100"),
    ({"task": "mlm"}, "question-answering or sequence-classification"),
    ({"resume": "yes"}, "auto"),
    ({"eval_data": "missing.json"}, "does not exist"),
    ({"seq_len": "64,128,256"}, "ending at 384"),
    ({"seq_len": "384"}, "ending at 384"),
    ({"seq_len": "64,x"}, "bad sequence length"),
    ({"seq_len": "128,384", "target": "torchscript"}, "one fixed length"),
    ({"eval_max": 20}, "give --eval-n"),
    ({"eval_n": 10, "eval_max": 5}, "at least as large"),
    ({"training": {"lr": 0.0}}, "--lr must be positive"),
    # every training setting meets TaskConfig's own checks at option time, not after the split and the probes
    ({"training": {"doc_stride": 200}}, "at most half of --seq-len"),
    ({"training": {"learning_rate": 1e-4}}, "training setting.*learning_rate"),
    ({"threads": 0}, "--threads must be at least 1"),
    # the phone's CPU: refused before any work where the target's files cannot be checked there
    ({"arm64": ("max",), "target": "coreml"}, "--arch arm64: coreml"),
    ({"arm64": (" ",)}, "at least one CPU model"),
    # the general distillation's text and length: refused now, not after the layer map's probes
    ({"general_data": "missing.txt"}, "missing.txt does not exist"),
    ({"general_steps": 100}, "give --general-data too"),
    ({"general_data": __file__, "general_steps": 0}, "--general-steps must be an integer, at least 1, not 0"),
])
def test_options_are_checked_before_any_work(qa_teacher, train_file, dev_file, tmp_path, kw, message):
    args = dict(model=str(qa_teacher), task="qa", data=str(train_file), eval_data=str(dev_file), target="tflite",
                out=str(tmp_path / "out"))
    args.update(kw)
    with pytest.raises(UsageError, match=message):
        ShrinkOptions(**args)
    assert not (tmp_path / "out").exists()


def test_cli_usage_error_exits_2(qa_teacher, train_file, dev_file, tmp_path, capsys):
    from edgekit.cli import main

    code = main(["shrink", "--model", str(qa_teacher), "--task", "qa", "--data", str(train_file), "--eval-data",
                 str(dev_file), "--target", "onnx", "--bundle", "android", "--out", str(tmp_path / "o")])
    assert code == 2 and "ships a tflite file" in capsys.readouterr().err


def test_cli_lr_reaches_the_training_and_the_recorded_command(qa_teacher, train_file, dev_file, tmp_path,
                                                            monkeypatch):
    # `--lr` is the CLI's name for training={"lr": ...}: the probes and the training share it (one
    # `training_config`), a resumed run with another rate is refused like any other option, and the report's
    # command shows it. `--heldout-n` likewise reaches the options and the command only when given.
    import edgekit.shrinker.run as R
    from edgekit.cli import main

    seen = {}

    def fake_run(opts, command=None):
        seen["opts"], seen["command"] = opts, command
        raise UsageError("stop here")

    monkeypatch.setattr(R, "shrink_run", fake_run)
    base = ["shrink", "--model", str(qa_teacher), "--task", "qa", "--data", str(train_file), "--eval-data",
            str(dev_file), "--target", "onnx", "--out", str(tmp_path / "o")]
    assert main(base + ["--lr", "2e-4"]) == 2
    assert seen["opts"].training == {"lr": 2e-4} and "--lr 0.0002" in seen["command"]
    assert main(base) == 2
    assert seen["opts"].training == {} and "--lr" not in seen["command"]
    assert seen["opts"].heldout_n == R.DEFAULT_HELDOUT and "--heldout-n" not in seen["command"]
    assert main(base + ["--heldout-n", "100"]) == 2
    assert seen["opts"].heldout_n == 100 and "--heldout-n 100" in seen["command"]
    seen.clear()
    assert main(base + ["--lr", "-1"]) == 2 and not seen  # refused by ShrinkOptions before the run starts
    # the other flags reach the options under the API's names (one mapping, in edgekit.shrink)
    given = ["--max-f1-drop", "1.5", "--timed-n", "7", "--passes", "2", "--eval-n", "5", "--eval-max", "10",
             "--precision", "fp32,int8", "--steps", "3", "--layers", "0,2", "--threads", "1"]
    assert main(base + given + ["--no-progress"]) == 2
    o = seen["opts"]
    assert (o.max_f1_drop, o.timed_n, o.passes, o.eval_n, o.eval_max, o.steps, o.layers, o.threads) == \
        (1.5, 7, 2, 5, 10, 3, [0, 2], 1) and o.precision == "fp32,int8"
    # the recorded command is every flag given, and no default (read from the parser: no list of its own)
    assert all(f"{a} {b}" in seen["command"] for a, b in zip(given[::2], given[1::2])), seen["command"]
    assert "--no-progress" in seen["command"]
    main(base)
    assert "--passes" not in seen["command"] and "--arch" not in seen["command"] and "--timed-n" not in seen["command"]


def test_cli_is_a_thin_layer_over_the_api(monkeypatch, tmp_path, capsys):
    # One front door: `edgekit shrink` calls `edgekit.shrink` (never ShrinkOptions itself), and prints
    # the chosen file (exit 0) or why none was chosen (exit 1) from the report it returns.
    import edgekit.api as api
    from edgekit.cli import main

    calls = []

    class Rep:
        out, reason = str(tmp_path), "the fastest whose interval lies within 2 points"
        chosen_candidate = type("C", (), {"artifact": "files/student/x.tflite"})()

    def fake_shrink(*args, **kw):
        calls.append((args, kw))
        return Rep

    monkeypatch.setattr(api, "shrink", fake_shrink)
    argv = ["shrink", "--model", "M", "--task", "qa", "--data", "T", "--eval-data", "D", "--target", "onnx",
            "--out", str(tmp_path), "--max-f1-drop", "1"]
    assert main(argv) == 0
    (args, kw), = calls
    assert args == ("M", "qa", "T", "D", "onnx", str(tmp_path)) and kw["max_f1_drop"] == 1.0
    assert kw["command"].startswith("edgekit shrink --model M") and "--max-f1-drop 1.0" in kw["command"]
    out = capsys.readouterr()
    assert out.out.strip() == f"{tmp_path}/report.md" and "chosen: files/student/x.tflite" in out.err
    Rep.chosen_candidate = None
    assert main(argv) == 1 and "no file chosen" in capsys.readouterr().err


def test_a_run_resumes_only_with_its_own_options(qa_teacher, train_file, dev_file, tmp_path):
    from edgekit.shrinker.run import _Run

    args = dict(model=str(qa_teacher), task="qa", data=str(train_file), eval_data=str(dev_file), target="onnx",
                out=str(tmp_path / "out"), steps=5)
    _Run(ShrinkOptions(**args), print).open()
    with pytest.raises(UsageError, match="--resume auto"):
        _Run(ShrinkOptions(**args), print).open()
    with pytest.raises(UsageError, match="steps: 5 then, 6 now"):
        _Run(ShrinkOptions(**{**args, "steps": 6, "resume": "auto"}), print).open()
    _Run(ShrinkOptions(**{**args, "resume": "auto", "threads": 2}), print).open()  # threads may change
    with pytest.raises(UsageError, match="training: {} then, {'lr': 0.0002} now"):
        _Run(ShrinkOptions(**{**args, "resume": "auto", "training": {"lr": 2e-4}}), print).open()
    with pytest.raises(UsageError, match="heldout_n: 1000 then, 100 now"):  # the slice that chose the checkpoint
        _Run(ShrinkOptions(**{**args, "resume": "auto", "heldout_n": 100}), print).open()
    # a state written under the options' old names resumes as the same run (nothing redone, nothing refused)
    state_path = tmp_path / "out" / "shrink_state.json"
    st = json.loads(state_path.read_text())
    st["options"]["max_drop"], st["options"]["n_timed"] = st["options"].pop("max_f1_drop"), st["options"].pop("timed_n")
    st["measured"] = {"kept": 1}
    state_path.write_text(json.dumps(st))
    said = []
    again = _Run(ShrinkOptions(**{**args, "resume": "auto"}), said.append)
    again.open()
    assert again.state["measured"] == {"kept": 1} and not [s for s in said if "redoing" in s]


def test_a_finished_run_redoes_its_files_for_other_buckets(qa_teacher, train_file, dev_file, tmp_path):
    # Another --seq-len (or --precision) on --resume auto re-exports and re-times from the kept student:
    # the files, their times and the old report go (the folder never mixes two sets), training stays.
    from edgekit.shrinker.run import _Run

    args = dict(model=str(qa_teacher), task="qa", data=str(train_file), eval_data=str(dev_file), target="tflite",
                out=str(tmp_path / "out"), steps=5)
    first = _Run(ShrinkOptions(**args), print)
    first.open()
    first.state.update({"training": {"done": True}, "student": "kept", "teacher_dev": {"metric": 1.0},
                        "files": [{"artifact": "files/student/a.tflite"}], "measured": {"a": {}},
                        "extended": {"files/student/a.tflite": {"n": 10, "predictions": {}}}})
    first.save()
    (tmp_path / "out" / "files" / "student").mkdir(parents=True)
    (tmp_path / "out" / "report.md").write_text("old")
    said = []
    again = _Run(ShrinkOptions(**{**args, "resume": "auto", "seq_len": "64,128,192,256,320,384"}), said.append)
    again.open()
    st = json.loads((tmp_path / "out" / "shrink_state.json").read_text())
    assert "files" not in st and "measured" not in st and "extended" not in st  # answers of the old files too
    assert st["training"] == {"done": True} and st["student"] == "kept" and st["teacher_dev"] == {"metric": 1.0}
    assert st["options"]["seq_len"] == "64,128,192,256,320,384" and st["options"]["steps"] == 5
    assert not (tmp_path / "out" / "files").exists() and not (tmp_path / "out" / "report.md").exists()
    assert any("redoing the extended, files, measured" in line and "seq_len (None then" in line for line in said), said
    # the same options again: nothing is redone; other DEV questions re-answer the teacher too
    _Run(ShrinkOptions(**{**args, "resume": "auto", "seq_len": "64,128,192,256,320,384"}), print).open()
    third = _Run(ShrinkOptions(**{**args, "resume": "auto", "seq_len": "64,128,192,256,320,384", "eval_n": 5}), print)
    third.open()
    assert "teacher_dev" not in third.state and third.state["student"] == "kept"


def test_calibration_text_goes_only_to_the_plans_with_int8_static(qa_teacher, train_file, dev_file, tmp_path,
                                                                  monkeypatch):
    # The real run of 2026-12-05 stopped here after 1 h 45 min of training: the baseline's fp32 plan got the
    # calibration file too, which the plan refuses ("--calibration only applies to --precision int8-static").
    import types

    from edgekit.build import plan as P
    from edgekit.shrinker import run as R
    from edgekit.shrinker.data import split_train

    opts = ShrinkOptions(model=str(qa_teacher), task="qa", data=str(train_file), eval_data=str(dev_file),
                         target="tflite", out=str(tmp_path / "out"), precision="fp32,int8-static")
    r = R._Run(opts, print)
    r.open()
    r.state["split"] = split_train("question-answering", opts.data, r.work / "data", 8).to_dict()
    calls, real = [], P.plan

    def plan(target, precisions, seqs, task, calibration=None, **kw):
        calls.append((precisions, calibration is not None))
        return real(target, precisions, seqs, task, calibration=calibration, **kw)  # the real checks

    monkeypatch.setattr(P, "plan", plan)
    monkeypatch.setattr(P, "run", lambda jobs, *a, **k: types.SimpleNamespace(records=[]))
    R._export_all(r, str(qa_teacher))
    assert calls == [("fp32", False), ("fp32,int8-static", True), ("fp32,int8-static", True)]


def test_a_state_with_absolute_paths_follows_its_folder(qa_teacher, train_file, dev_file, tmp_path):
    # States written before "$OUT" named their paths absolutely; moved with their folder, they resume there.
    from edgekit.shrinker.run import _Run

    args = dict(model=str(qa_teacher), task="qa", data=str(train_file), eval_data=str(dev_file), target="onnx",
                out=str(tmp_path / "old"), steps=5)
    _Run(ShrinkOptions(**args), print).open()
    old = str(tmp_path / "old")
    legacy = json.loads((tmp_path / "old" / "shrink_state.json").read_text().replace("$OUT", old))
    legacy.update({"student": f"{old}/student", "measured": {f"{old}/files/a.onnx": {"ms_per_question": 1.0}},
                   "split": {"train": f"{old}/work/data/train.jsonl", "n_train": 3}})
    (tmp_path / "old" / "shrink_state.json").write_text(json.dumps(legacy))
    (tmp_path / "old").rename(tmp_path / "new")
    run = _Run(ShrinkOptions(**{**args, "out": str(tmp_path / "new"), "resume": "auto"}), print)
    run.open()
    new = str(tmp_path / "new")
    assert run.state["student"] == f"{new}/student" and list(run.state["measured"]) == [f"{new}/files/a.onnx"]
    assert run.state["split"]["train"] == f"{new}/work/data/train.jsonl" and run.state["options"]["model"] == str(qa_teacher)
    run.save()
    assert old not in (tmp_path / "new" / "shrink_state.json").read_text() and new not in (
        tmp_path / "new" / "shrink_state.json").read_text()


def test_the_qa_recipe_trains_without_dropout_at_2e_4(qa_teacher, train_file, dev_file, tmp_path):
    # The measured QA recipe (squad_quality.md, all DEV: dropout 0 +1.94 F1, then lr 2e-4 +1.77); a user's setting wins;
    # classification keeps lr 1e-4 and its model's dropout (not measured there).
    from edgekit.shrinker.run import training_config

    args = dict(model=str(qa_teacher), task="qa", data=str(train_file), eval_data=str(dev_file), target="onnx",
                out=str(tmp_path / "out"))
    assert training_config(ShrinkOptions(**args)).dropout == 0.0
    assert training_config(ShrinkOptions(**args)).lr == 2e-4  # +1.77 F1 over 1e-4 without dropout (all DEV)
    assert training_config(ShrinkOptions(**{**args, "training": {"lr": 1e-4}})).lr == 1e-4
    assert training_config(ShrinkOptions(**{**args, "training": {"dropout": 0.1}})).dropout == 0.1
    with pytest.raises(UsageError, match="--dropout must be in"):
        ShrinkOptions(**{**args, "training": {"dropout": 1.5}})
    opts = ShrinkOptions(**args)
    object.__setattr__(opts, "task", "sequence-classification")
    assert training_config(opts).dropout is None and training_config(opts).lr == 1e-4


def test_the_report_shows_how_far_the_kept_map_is_ahead():
    from edgekit.shrinker.layers import probe_margin
    from edgekit.shrinker.report import ShrinkReport, header_lines

    margin = probe_margin([0, 1, 3], [70.0, 80.0, 60.0, 72.0], [0, 2, 4], [70.0, 70.0, 70.0, 70.0])
    lm = {"map": [0, 1, 3], "teacher_layers": 6, "chosen_by": "probe", "measured": [{"map": [0, 1, 3], "score": 15.0}],
          "probed": [{"map": [0, 1, 3], "score": 70.5}, {"map": [0, 2, 4], "score": 70.0}], "probe": {"steps": 271},
          "margin": margin}
    rep = ShrinkReport(task="question-answering", metric="f1", target="onnx", teacher="t", student="s", out="o",
                       max_drop=2.0, n_dev=10, teacher_metric=80.0, candidates=[], chosen=None, reason="", layer_map=lm)
    line = next(x for x in header_lines(rep) if x.startswith("Student:"))
    assert "after a probe of 271 steps: [0, 1, 3] 70.50, [0, 2, 4] 70.00" in line
    assert f"the kept map +0.50 [{margin['interval'][0]:+.2f}, {margin['interval'][1]:+.2f}] over the evenly spaced " \
           "[0, 2, 4] on 4 held-out questions (within the sampling error)" in line
