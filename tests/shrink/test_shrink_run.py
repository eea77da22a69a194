"""``edgekit shrink`` end to end on tiny teachers (seconds of training): ONNX and TFLite, resume after an
interruption, DEV never reaching training, classification, --bundle android."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import edgekit
from shrink_fixtures import TINY_TRAINING, squad
from edgekit.core.record import ArtifactRecord

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _check_report(rep, out: Path) -> None:
    """Every candidate has F1, size and ms per question; the chosen one is the fastest whose interval passes."""
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    on_disk = json.loads((out / "report.json").read_text())
    assert len(on_disk["candidates"]) == len(rep.candidates)
    md = (out / "report.md").read_text()
    base = [c for c in rep.candidates if c.baseline]
    assert len(base) == 1 and base[0].model == "teacher" and base[0].precision == "fp32" and len(base[0].buckets) == 1
    for c in rep.candidates:
        assert (out / c.artifact).exists(), c.artifact
        assert c.metric is not None and c.size_mb and c.ms_per_question and c.interval and c.speedup, c
        assert c.precision in md
    assert {c.model for c in rep.candidates} == {"teacher", "student"}
    ok = [c for c in rep.candidates if c.verdict == "pass" and c.status == "validated"]
    assert rep.chosen == min(ok, key=lambda c: c.ms_per_question).artifact
    assert "<svg" in (out / "report.html").read_text()


def test_onnx_end_to_end_resumes_after_an_interruption(qa_teacher, train_file, dev_file, tmp_path, monkeypatch,
                                                       capsys):
    import edgekit.distill.train as T

    real, calls = T.save_checkpoint, []

    def interrupting(*a, **kw):  # Ctrl-C right after the fourth checkpoint (step 3 of 6) is on disk
        path = real(*a, **kw)
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(T, "save_checkpoint", interrupting)
    out = tmp_path / "out"
    kw = dict(steps=6, precision="fp32", passes=1, timed_n=3, heldout_n=8, threads=1, progress=False,
              training=TINY_TRAINING)
    with pytest.raises(KeyboardInterrupt):
        edgekit.shrink(qa_teacher, "qa", train_file, dev_file, "onnx", out, **kw)
    state = json.loads((out / "shrink_state.json").read_text())
    scored = [s["step"] for s in state["training"]["scores"]]
    assert not state["training"]["done"] and scored
    monkeypatch.setattr(T, "save_checkpoint", real)
    capsys.readouterr()
    rep = edgekit.shrink(qa_teacher, "qa", train_file, dev_file, "onnx", out, resume="auto", **kw)
    got = capsys.readouterr()
    err = got.err + got.out  # distill_task says "resumed from" on stdout
    assert "resuming the run" in err and f"resumed from {out / 'work' / 'train' / 'checkpoints'}" in err
    tr = rep.training
    steps = [s["step"] for s in tr["scores"]]
    assert steps[:len(scored)] == scored and len(set(steps)) == len(steps) and steps[-1] == 6
    assert tr["card"]["steps"] == 6
    _check_report(rep, out)
    assert len(rep.candidates) == 3  # baseline + teacher and student fp32 with buckets
    lm = rep.layer_map
    assert lm["chosen_by"] == "probe" and len(lm["measured"]) == 2 and len(lm["probed"]) == 2
    assert lm["map"] == max(lm["probed"], key=lambda r: r["score"])["map"] and lm["probe"] == {"steps": 1}
    assert "after a probe of 1 steps: " in (out / "report.md").read_text()
    # a finished run is not started again by accident
    from edgekit.core.errors import UsageError

    with pytest.raises(UsageError, match="--resume auto"):
        edgekit.shrink(qa_teacher, "qa", train_file, dev_file, "onnx", out, **kw)
    # other buckets on the finished run: the same student, files exported and timed again at the new lengths
    student = json.loads((out / "shrink_state.json").read_text())["student"].replace("$OUT", str(out))
    again = edgekit.shrink(qa_teacher, "qa", train_file, dev_file, "onnx", out, resume="auto", seq_len="192,384", **kw)
    assert again.student == student and again.training["scores"] == tr["scores"]
    assert sorted(tuple(c.buckets) for c in again.candidates) == [(192, 384), (192, 384), (384,)]
    _check_report(again, out)
    assert not list((out / "files").rglob("*s128_256_384*"))  # none of the old files is left beside the new


def _train_only(teacher, train, dev, out, monkeypatch):
    """A run stopped where the exports start: what training and the choice of checkpoint produced."""
    import edgekit.build.plan as P

    def stop(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(P, "run", stop)
    with pytest.raises(KeyboardInterrupt):
        edgekit.shrink(teacher, "qa", train, dev, "onnx", out, steps=4, precision="fp32", heldout_n=8,
                       threads=1, progress=False, training=TINY_TRAINING)
    state = json.loads((out / "shrink_state.json").read_text())
    student = Path(state["student"].replace("$OUT", str(out)))  # the state names OUT "$OUT"
    weights = hashlib.sha256((student / "model.safetensors").read_bytes()).hexdigest()
    return state["layer_map"], state["training"]["scores"], state["training"]["chosen_step"], weights


def test_general_distillation_runs_before_the_task_and_resumes(qa_teacher, train_file, dev_file, tmp_path,
                                                                monkeypatch, capsys):
    # --general-data: the chosen cut first learns the teacher's hidden states on unlabelled text, then its task
    # training starts from that folder; Ctrl-C inside the general phase continues there with --resume auto.
    import edgekit.build.plan as P
    import edgekit.distill.train as T

    d = json.loads(__import__("lzma").open(Path(__file__).parents[1] / "data" / "squad-dev-50.json.xz", "rt").read())
    text = tmp_path / "text.txt"
    text.write_text("\n".join(s.strip() + "." for a in d["data"] for p in a["paragraphs"]
                               for s in p["context"].split(". ") if s.strip()))
    real, calls = T.save_checkpoint, []

    def interrupting(*a, **kw):  # Ctrl-C once the general phase's second checkpoint is on disk
        path = real(*a, **kw)
        calls.append(path)
        if "general" in str(path) and len([c for c in calls if "general" in str(c)]) == 2:
            raise KeyboardInterrupt
        return path

    def stop(*a, **kw):  # stop where the exports start: this test is about training
        raise KeyboardInterrupt

    monkeypatch.setattr(T, "save_checkpoint", interrupting)
    monkeypatch.setattr(P, "run", stop)
    out = tmp_path / "out"
    kw = dict(steps=4, precision="fp32", heldout_n=8, threads=1, progress=False, training=TINY_TRAINING,
              general_data=text, general_steps=6)
    with pytest.raises(KeyboardInterrupt):
        edgekit.shrink(qa_teacher, "qa", train_file, dev_file, "onnx", out, **kw)
    state = json.loads((out / "shrink_state.json").read_text())
    assert "general" not in state and "training" not in state
    capsys.readouterr()
    with pytest.raises(KeyboardInterrupt):
        edgekit.shrink(qa_teacher, "qa", train_file, dev_file, "onnx", out, resume="auto", **kw)
    got = capsys.readouterr()
    assert f"resumed from {out / 'work' / 'general' / 'checkpoints'}" in got.err + got.out
    state = json.loads((out / "shrink_state.json").read_text())
    g = state["general"]
    assert g["done"] and g["card"]["steps"] == 6 and g["final_loss"] < g["first_loss"]
    card = json.loads((out / "work" / "general" / "general_distillation_card.json").read_text())
    assert len(card["history"]) == 6 and card["config"]["phase"] == "general"
    # the task training started from the general phase's folder, and the kept student says both
    task_card = json.loads((out / "work" / "train" / "task_distillation_card.json").read_text())
    assert task_card["student_init"] == str(out / "work" / "general")
    student = Path(state["student"].replace("$OUT", str(out)))
    meta = json.loads((student / "edgekit_student.json").read_text())
    assert meta["general_distillation"]["steps"] == 6 and meta["layer_map"] == state["layer_map"]["map"]
    # another length of general distillation is another run
    from edgekit.core.errors import UsageError

    with pytest.raises(UsageError, match="general_steps: 6 then, 7 now"):
        edgekit.shrink(qa_teacher, "qa", train_file, dev_file, "onnx", out, resume="auto", **{**kw, "general_steps": 7})


def test_a_poisoned_dev_changes_nothing_in_training(qa_teacher, train_file, dev_file, tmp_path, monkeypatch):
    poisoned = squad(tmp_path / "poisoned.json", garble=True, n=30)
    clean = _train_only(qa_teacher, train_file, dev_file, tmp_path / "clean", monkeypatch)
    bad = _train_only(qa_teacher, train_file, poisoned, tmp_path / "bad", monkeypatch)
    assert clean == bad


def test_arm64_verdicts_reach_the_records_the_report_and_the_choice(qa_teacher, train_file, dev_file, tmp_path,
                                                                    monkeypatch):
    # --arch arm64 hands the CPU models to the plan's own ARM64 check (check.arm64, run for real under QEMU by
    # tests/check/test_arm64.py; minutes per file there, so replaced here by one that fails the student's files):
    # a file failing on the phone's CPU is parity-failed and never chosen, though it is the fastest.
    import edgekit.check.arm64 as A
    from edgekit.core.record import Status

    seen = []

    def fake_check(path, record, model, feeds, real, tolerance, cpus, index=None, verbose=True):
        seen.append((Path(path).name, cpus))
        bad = "3layers" in Path(path).name or "1layers" in Path(path).name
        record.arm64 = {"checked": True, "cpus": {c: {"passed": not bad, "failures": ["cosine 0.5"] if bad else []}
                                                  for c in cpus}}
        if bad:
            record.status, record.reason = Status.PARITY_FAILED, "arm64 max: cosine 0.5"

    monkeypatch.setattr(A, "unavailable", lambda target: None)
    monkeypatch.setattr(A, "check", fake_check)
    out = tmp_path / "out"
    rep = edgekit.shrink(qa_teacher, "qa", train_file, dev_file, "onnx", out, steps=2, layers=1, precision="fp32",
                         passes=1, timed_n=3, heldout_n=8, threads=1, progress=False, training=TINY_TRAINING,
                         max_f1_drop=100, arm64=["max"])
    _check_report(rep, out)
    assert len(seen) == len(rep.candidates) == 3 and all(cpus == ("max",) for _, cpus in seen)
    student = [c for c in rep.candidates if c.model == "student"]
    assert student and all(c.status == "parity-failed" and c.arm64 == "✗ max (cosine 0.5)" for c in student)
    assert all(c.arm64 == "✓ max" for c in rep.candidates if c.model == "teacher")
    assert rep.chosen_candidate.model == "teacher"
    header = next(line for line in (out / "report.md").read_text().splitlines() if line.startswith("| model"))
    assert header.endswith("| arm64 |")


@pytest.mark.slow
def test_tflite_end_to_end_bundles_the_chosen_file(qa_teacher, train_file, dev_file, tmp_path, capsys):
    from edgekit.cli import main

    out = tmp_path / "out"
    code = main(["shrink", "--model", str(qa_teacher), "--task", "qa", "--data", str(train_file), "--eval-data",
                 str(dev_file), "--target", "tflite", "--precision", "fp32,int8-dynamic", "--steps", "3",
                 "--layers", "1", "--passes", "2", "--timed-n", "3", "--threads", "1", "--no-progress",
                 "--max-f1-drop", "100", "--bundle", "android", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err[-2000:]
    assert "chosen:" in printed.err and printed.out.strip().endswith("report.md")
    rep = edgekit.ShrinkReport.from_dict(json.loads((out / "report.json").read_text()))
    _check_report(rep, out)
    assert len(rep.candidates) == 5 and all(len(c.passes_ms) == 2 for c in rep.candidates)
    chosen = rep.chosen_candidate
    shipped = out / "bundle" / "android"
    assert rep.bundle["artifact"] == chosen.artifact
    assert ArtifactRecord.load(out / chosen.artifact).sha256 == hashlib.sha256(
        (shipped / "model.tflite").read_bytes()).hexdigest()
    assert "edgekit shrink" in (out / "report.md").read_text() and "--bundle android" in (out / "report.md").read_text()


def test_classification_end_to_end(cls_teacher, cls_files, tmp_path):
    rep = edgekit.shrink(cls_teacher, "seq-cls", cls_files[0], cls_files[1], "onnx", tmp_path / "out", steps=3,
                         precision="fp32,int8-dynamic", passes=1, timed_n=3, heldout_n=10, threads=1,
                         progress=False, max_f1_drop=100.0, training={"batch_size": 4, "max_len": 64})
    assert rep.metric == "accuracy" and rep.n_dev == 20
    _check_report(rep, tmp_path / "out")
    assert all(c.buckets == [128] for c in rep.candidates) and len(rep.candidates) == 4
    # The state names OUT as "$OUT": the folder moved elsewhere resumes there, nothing trained, exported
    # or timed again, and nothing read from the old place.
    assert str(tmp_path) not in (tmp_path / "out" / "shrink_state.json").read_text()
    (tmp_path / "out").rename(tmp_path / "moved")
    files = sorted((tmp_path / "moved" / "files").rglob("*.onnx"))
    stamps = [f.stat().st_mtime_ns for f in files]
    again = edgekit.shrink(cls_teacher, "seq-cls", cls_files[0], cls_files[1], "onnx", tmp_path / "moved",
                           resume="auto", steps=3, precision="fp32,int8-dynamic", passes=1, timed_n=3, heldout_n=10,
                           threads=1, progress=False, max_f1_drop=100.0, training={"batch_size": 4, "max_len": 64})
    assert [(c.artifact, c.metric, c.ms_per_question) for c in again.candidates] == [
        (c.artifact, c.metric, c.ms_per_question) for c in rep.candidates]
    assert files and [f.stat().st_mtime_ns for f in files] == stamps and again.out == str(tmp_path / "moved")
    assert json.loads((tmp_path / "moved" / "shrink_state.json").read_text())["student"].startswith("$OUT/")


def test_an_undecided_file_is_scored_on_more_dev_rows_until_decided(cls_teacher, cls_files, tmp_path, monkeypatch):
    """Every interval on fewer than all 20 DEV rows is made to straddle the bound: the run scores the
    undecided files on 5, then 10, then 20 rows (the teacher too), and each file's accuracy on 20 is the
    one its file gets when evaluated on all 20 directly; a resumed run answers nothing again."""
    import edgekit.quality.gate as G
    import edgekit.shrinker.measure as M
    from edgekit.quality.evaluate import run_eval

    real, rounds = G.paired_interval, []

    def straddling(reference, artifact, *a, **kw):
        if len(reference) < 20:
            return (0.0, 5.0)  # bound 2: undecided whatever the point
        return real(reference, artifact, *a, **kw)

    real_more = M.answer_more

    def counted(files, task, dev, start, n, *a, **kw):
        rounds.append((start, n, len(files)))
        return real_more(files, task, dev, start, n, *a, **kw)

    monkeypatch.setattr(G, "paired_interval", straddling)
    monkeypatch.setattr(M, "answer_more", counted)
    out = tmp_path / "out"
    kw = dict(steps=2, precision="fp32", passes=1, timed_n=3, heldout_n=10, threads=1, progress=False,
              max_f1_drop=2.0, eval_n=5, training={"batch_size": 4, "max_len": 64})
    rep = edgekit.shrink(cls_teacher, "seq-cls", cls_files[0], cls_files[1], "onnx", out, **kw)
    assert rep.n_dev == 5 and [r[:2] for r in rounds] == [(5, 10), (10, 20)]
    timed = [c for c in rep.candidates if c.ms_per_question]
    assert timed and all(c.n == 20 for c in timed), [(c.label, c.n) for c in rep.candidates]
    state = json.loads((out / "shrink_state.json").read_text())
    assert state["teacher_dev"]["n"] == 20 and sorted(state["teacher_dev"]["predictions"], key=int) == [
        str(i) for i in range(20)]
    for c in timed:
        direct = run_eval([str(out / c.artifact)], jsonl=str(cls_files[1]), threads=1, progress=False)
        mine = next(r for r in direct if Path(r.name).name == Path(c.artifact).name)
        assert c.metric == pytest.approx(mine.metrics["accuracy"], abs=1e-3)
    assert "DEV n" in (out / "report.md").read_text() and "evaluate more" not in rep.reason
    rounds.clear()
    again = edgekit.shrink(cls_teacher, "seq-cls", cls_files[0], cls_files[1], "onnx", out, resume="auto", **kw)
    assert rounds == [] and [c.metric for c in again.candidates] == [c.metric for c in rep.candidates]


def test_a_wall_clock_budget_is_split_into_scored_segments(qa_teacher, train_file, dev_file, tmp_path, monkeypatch):
    import edgekit.build.plan as P

    def stop(*a, **kw):  # only the training is under test here
        raise KeyboardInterrupt

    monkeypatch.setattr(P, "run", stop)
    with pytest.raises(KeyboardInterrupt):
        edgekit.shrink(qa_teacher, "qa", train_file, dev_file, "onnx", tmp_path / "out", budget_minutes=0.1,
                       precision="fp32", heldout_n=8, threads=1, progress=False, training=TINY_TRAINING)
    tr = json.loads((tmp_path / "out" / "shrink_state.json").read_text())["training"]
    assert tr["done"] and tr["card"]["budget"] == {"minutes": 0.1}
    steps = [s["step"] for s in tr["scores"]]
    assert steps[0] == 6 and len(steps) >= 2 and steps == sorted(steps) and steps[-1] == tr["card"]["steps"]


def test_a_training_begun_under_another_recipe_goes_on_as_it_began(qa_teacher, train_file, tmp_path):
    # A shrink run interrupted under an older edgekit (QA trained with its model's dropout) and resumed under
    # this one (QA without dropout): its options are the same, so shrink's own check lets it on, and the
    # training continues with the recipe its checkpoint started with (distill task alone would refuse), says
    # so, and its card records that recipe.
    from dataclasses import replace

    from edgekit.distill.task import TaskConfig, distill_task
    from edgekit.shrinker.train import train_student

    train_dir = tmp_path / "train"
    cfg = TaskConfig(task="qa", teacher=str(qa_teacher), student=str(qa_teacher), data=str(train_file),
                     out=str(train_dir), steps=6, max_examples=16, progress=False, bf16="no", threads=1,
                     dropout=0.0, **TINY_TRAINING)
    distill_task(replace(cfg, dropout=None, stop_after=2, checkpoint_every=2))  # the older edgekit's session
    said: list[str] = []
    tr = train_student(cfg, tmp_path / "best", lambda folder: [50.0, 60.0], {}, lambda: None, said.append)
    assert tr["done"] and tr["final_step"] == 6
    assert any("recipe it started with (dropout None; this edgekit's recipe: 0.0)" in s for s in said), said
    card = json.loads((train_dir / "task_distillation_card.json").read_text())
    assert card["config"]["dropout"] is None and card["steps"] == 6
