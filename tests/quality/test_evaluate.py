"""``edgekit eval`` end to end on a tiny model and the committed 50-question SQuAD slice."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.quality import evaluate, squad
from edgekit.cli import main
from edgekit.core.tasks import Task

SLICE = Path(__file__).parents[1] / "data" / "squad-dev-50.json.xz"


@pytest.fixture(scope="module")
def qa_model(tiny_model):
    return str(tiny_model("bert", Task.QUESTION_ANSWERING))


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_oracle_model_scores_100_through_the_pipeline(qa_model):
    """A 'model' whose logits point at each gold answer's tokens scores EM 100 through windows, decoding and scoring."""
    from edgekit.model.modeling import load_tokenizer
    from edgekit.quality.qa import QAPipeline

    tok = load_tokenizer(qa_model)
    from edgekit.quality.qa import tokenize

    # The tiny vocabulary spells many words letter by letter: keep the answers that fit in 15 tokens.
    questions = [q for q in squad.load_squad(SLICE, n=25) if len(tokenize(tok, q.answers[0]).ids) <= 15]
    assert len(questions) >= 10
    windows: list = []

    def oracle(ids, mask, types):
        q, c, w = windows.pop(0)
        s0, s1 = q.answer_starts[0], q.answer_starts[0] + len(q.answers[0])
        first = next(i for i, (a, b) in enumerate(c.offsets) if b > s0)
        last = max(i for i, (a, b) in enumerate(c.offsets) if a < s1)
        start = np.full(ids.shape[1], -5.0, np.float32)
        end = start.copy()
        if w.context_first <= first and last < w.context_first + w.context_len:
            start[w.context_start + first - w.context_first] = 10.0
            end[w.context_start + last - w.context_first] = 10.0
        return start[None], end[None]

    subject = evaluate.Subject("oracle", "pytorch", "fp32", "question-answering", qa_model, tok, oracle, 384, None)
    preds = {}
    for q in questions:
        _, c, ws = QAPipeline(tok, oracle, evaluate.qa_config(subject)).encode(q.question, q.context)
        windows[:] = [(q, c, w) for w in ws]
        preds.update(evaluate.evaluate_subject(subject, "slice", [q], progress=False).predictions)
        assert not windows
    got = {k: p.text for k, p in preds.items()}
    assert squad.evaluate(questions, got)["exact_match"] == 100.0, [
        (q.answers[0], got[q.id]) for q in questions if not squad.exact_match_score(got[q.id], q.answers[0])]
    # and a wrong answer everywhere scores 0
    assert squad.evaluate(questions, {q.id: "zzz" for q in questions})["f1"] == 0.0


def test_eval_pytorch_and_artifact_end_to_end(qa_model, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", "--model", qa_model, "--target", "torchscript", "--seq-len", "128",
                 "--out", str(out)]) == 0
    art = next(out.glob("*.pt"))
    capsys.readouterr()
    js = tmp_path / "eval.json"
    assert main(["eval", qa_model, str(art), "--squad", str(SLICE), "--output", str(js), "--no-progress", "--threads", "1"]) == 0
    table = capsys.readouterr().out
    assert "| EM | F1 | ΔF1 | same answer |" in table
    data = json.loads(js.read_text())["results"]
    assert [r["kind"] for r in data] == ["pytorch", "torchscript"]
    assert all(r["n"] == 50 for r in data)
    torch_r, art_r = data
    # The PyTorch model reads 384-token windows, the file 128: the comparison must still be on the same questions.
    assert set(torch_r["predictions"]) == set(art_r["predictions"]) == {q.id for q in squad.load_squad(SLICE)}
    # The numbers in the table are the official scores of the predictions in the JSON.
    qs = squad.load_squad(SLICE)
    for r in data:
        s = squad.evaluate(qs, {k: p["text"] for k, p in r["predictions"].items()})
        assert r["metrics"]["f1"] == pytest.approx(s["f1"]) and r["metrics"]["exact_match"] == pytest.approx(s["exact_match"])
        assert r["seconds_per_question"] > 0
    same = evaluate.same_answer_rate({k: evaluate.Prediction(**v) for k, v in art_r["predictions"].items()},
                                     {k: evaluate.Prediction(**v) for k, v in torch_r["predictions"].items()})
    assert art_r["same_answer"] == pytest.approx(same)
    assert torch_r["same_answer"] == 1.0


def test_eval_same_window_fp32_file_answers_identically(qa_model, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", "--model", qa_model, "--target", "torchscript", "--out", str(out)]) == 0  # 384
    art = next(out.glob("*.pt"))
    res = evaluate.run_eval([str(art)], squad_file=str(SLICE), n=20, progress=False, threads=1)
    assert [r.kind for r in res] == ["pytorch", "torchscript"]   # the source is evaluated as the reference
    assert res[1].same_answer == 1.0 and res[1].metrics == pytest.approx(res[0].metrics)


def test_multi_length_file_is_evaluated_at_the_smallest_length_that_fits(qa_model, tmp_path):
    """A --seq-len 64,128 file answers each question at 64 when it fits there, as the apps run it,
    and gives the same answers as padding every window to 128."""
    import dataclasses

    out = tmp_path / "out"
    assert main(["export", "--model", qa_model, "--target", "onnx", "--seq-len", "64,128", "--out", str(out)]) == 0
    s = evaluate.artifact_subject(next(out.glob("*.onnx")), threads=1)
    assert s.buckets == (64, 128) and s.pad_to is None and s.max_seq_len == 128
    real = squad.load_squad(SLICE, 4)
    # The tiny vocabulary is mostly characters: a short question and context fit in 64 tokens.
    short = [dataclasses.replace(q, id=q.id + "-short", question=q.question[:20], context=q.context[:30]) for q in real]
    lengths: list[int] = []
    call = s.call

    def spy(ids, mask, types):
        lengths.append(ids.shape[1])
        return call(ids, mask, types)

    bucketed, _ = evaluate.predict_squad(dataclasses.replace(s, call=spy), real + short, progress=False)
    assert set(lengths) == {64, 128}
    padded, _ = evaluate.predict_squad(dataclasses.replace(s, buckets=None, pad_to=128), real + short, progress=False)
    assert bucketed == padded


def test_eval_sequence_classification_accuracy(tiny_model, tmp_path, capsys):
    model = str(tiny_model("bert", Task.SEQUENCE_CLASSIFICATION))
    rows = [{"text": "the city is large", "label": "POSITIVE"}, {"text": "a lazy dog", "label": 0},
            {"text": "where is paris", "text_pair": "in france", "label": 2}]
    data = tmp_path / "cls.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    js = tmp_path / "e.json"
    assert main(["eval", model, "--jsonl", str(data), "--output", str(js), "--no-progress", "--threads", "1"]) == 0
    r = json.loads(js.read_text())["results"][0]
    gold = [1, 0, 2]
    acc = 100 * sum(r["predictions"][str(i)] == g for i, g in enumerate(gold)) / 3
    assert r["metrics"]["accuracy"] == pytest.approx(acc) and r["n"] == 3


@pytest.mark.parametrize("argv, message", [
    (["eval", "nowhere"], "neither a model folder"),
    (["eval", "{model}"], "--squad FILE"),
    (["eval", "{model}", "--squad", "missing.json"], "does not exist"),
])
def test_eval_usage_errors(qa_model, argv, message, capsys):
    argv = [a.replace("{model}", qa_model) for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_default_gate_bounds():
    assert evaluate.default_max_drop("fp32") == 0.05
    assert evaluate.default_max_drop("fp16") == 0.1
    assert evaluate.default_max_drop("int8-dynamic") == 1.0 == evaluate.default_max_drop("palettized-4")


# ---- the accuracy gate ------------------------------------------------------------------------

def test_gate_on_export_passes_fp32_and_report_shows_f1(qa_model, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", "--model", qa_model, "--target", "torchscript", "--out", str(out), "--threads", "1",
                 "--eval-data", str(SLICE), "--eval-n", "10"]) == 0
    stdout = capsys.readouterr().out
    assert "F1 (Δ)" in stdout and "(+0.00)" in stdout
    from edgekit.core.record import ArtifactRecord, Status

    rec = ArtifactRecord.load(next(out.glob("*.pt")))
    q = rec.quality
    assert rec.status == Status.VALIDATED and q.passed and q.n == 10 and q.max_drop == 0.05
    assert q.drop == 0.0 and q.same_answer == 1.0 and q.metric == "f1"
    # validate re-runs the gate with a bound of its own
    assert main(["validate", str(next(out.glob("*.pt"))), "--eval-data", str(SLICE), "--eval-n", "5",
                 "--max-f1-drop", "0.5", "--threads", "1"]) == 0
    assert ArtifactRecord.load(next(out.glob("*.pt"))).quality.max_drop == 0.5
    assert main(["report", str(out)]) == 0
    assert "F1 (Δ)" in capsys.readouterr().out


def test_gate_fails_a_file_whose_f1_drops(qa_model, tmp_path, monkeypatch, capsys):
    """PyTorch answers every question right, the file answers none: parity-failed, numbers in the record."""
    out = tmp_path / "out"
    assert main(["export", "--model", qa_model, "--target", "torchscript", "--out", str(out)]) == 0
    art = next(out.glob("*.pt"))
    real = evaluate.predict_squad

    def fake(subject, questions, progress=True):
        preds, secs = real(subject, questions, progress)
        for q in questions:
            text = q.answers[0] if subject.kind == "pytorch" else "zzz"
            preds[q.id] = evaluate.Prediction(text, 0, len(text))
        return preds, secs

    monkeypatch.setattr(evaluate, "predict_squad", fake)
    assert main(["validate", str(art), "--eval-data", str(SLICE), "--eval-n", "4", "--threads", "1"]) == 1
    from edgekit.core.record import ArtifactRecord, Status

    rec = ArtifactRecord.load(art)
    assert rec.status == Status.PARITY_FAILED and "accuracy gate" in rec.reason
    assert rec.quality.pytorch == 100.0 and rec.quality.artifact == 0.0 and not rec.quality.passed
    # a generous bound lets the same file pass again
    assert main(["validate", str(art), "--eval-data", str(SLICE), "--eval-n", "4", "--max-f1-drop", "100",
                 "--threads", "1"]) == 0


def test_gate_flags_are_checked_before_any_work(qa_model, capsys):
    assert main(["export", "--model", qa_model, "--target", "torchscript", "--eval-data", "missing.json"]) == 2
    assert "--eval-data missing.json does not exist" in capsys.readouterr().err
    assert main(["export", "--model", qa_model, "--target", "torchscript", "--max-f1-drop", "1"]) == 2
    assert "need --eval-data" in capsys.readouterr().err


def test_gate_interval_and_verdict():
    """The gate's paired bootstrap: a clear loss fails, a clear tie passes, a noisy one is undecided."""
    from edgekit.quality.gate import paired_interval, verdict

    ref = [100.0] * 200
    same = paired_interval(ref, ref)
    assert same == (0.0, 0.0) and verdict(0.0, same, 1.0) == "pass"
    worse = paired_interval(ref, [100.0] * 150 + [0.0] * 50)  # 25 F1 points lost on a quarter of questions
    assert worse[0] > 1.0 and verdict(25.0, worse, 1.0) == "fail"
    noisy = paired_interval(ref[:20], [100.0] * 19 + [0.0])  # one question of 20: a 5-point drop, wide interval
    assert noisy[0] <= 1.0 < noisy[1] and verdict(5.0, noisy, 1.0) == "undecided"
    # paired: the same per-question differences give the same interval whatever the scores' level
    assert paired_interval([50.0] * 100, [40.0] * 100) == paired_interval([90.0] * 100, [80.0] * 100)


def test_share_interval_is_the_paired_drop_over_the_teachers_mean():
    # One way to state a student's share of its teacher (MRR in distill, F1 in benchmarks/squad_paired.py).
    from edgekit.quality.gate import paired_interval, share_interval

    teacher = [100.0] * 150 + [0.0] * 50  # mean 75
    student = [100.0] * 120 + [0.0] * 80  # mean 60
    share, (lo, hi) = share_interval(teacher, student)
    d_lo, d_hi = paired_interval(teacher, student)
    assert share == 0.8 and (lo, hi) == (1 - d_hi / 75, 1 - d_lo / 75) and lo < 0.8 < hi
    assert share_interval([0.0] * 10, [1.0] * 10) is None
