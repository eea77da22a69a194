"""The Task Library client: its environment, the metadata it reads, and that its check can fail.

Tests that need the tflite-support environment take the ``tasklib_env`` fixture, which creates it
when missing and fails (never passes silently) when it cannot.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit.targets.tflite import tasklib
from edgekit.core.errors import ValidationError
from edgekit.targets.tflite.tasklib.check import check_classification, check_question_answering, normalize_answer
from edgekit.core.tasks import Task

pytest.importorskip("litert_torch")
from edgekit.targets.tflite import converter as tflite  # noqa: E402
from tflite_fixtures import cls_checkpoint, qa_checkpoint, tasklib_env  # noqa: E402,F401


def _plain_export(path: Path, task: Task, seq: int, out: Path) -> Path:
    """A .tflite without metadata (the test then writes metadata itself)."""
    from edgekit.core.config import ExportOptions, SeqLen
    from edgekit.build.stage import export_model
    from edgekit.model.modeling import load_model

    opts = ExportOptions(target="tflite", task=task, seq_len=SeqLen.parse(str(seq)), flags={"metadata": False})
    record = export_model(load_model(path, task), opts, out, verbose=False, validate=False)
    return out / record.artifact


def _io(path: Path) -> dict:
    return tflite.signature_tensors(path.read_bytes())


# ---- no environment needed ------------------------------------------------------------------
def test_missing_env_reason_names_the_create_command(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EDGEKIT_TASKLIB_ENV", str(tmp_path / "absent"))
    assert tasklib.env_dir() == tmp_path / "absent"
    reason = tasklib.unavailable()
    assert reason and str(tmp_path / "absent") in reason and "python -m edgekit.targets.tflite.tasklib.env --create" in reason
    with pytest.raises(ValidationError, match="edgekit.targets.tflite.tasklib.env --create"):
        tasklib.answer(tmp_path / "x.tflite", [("q", "c")])
    proc = subprocess.run([sys.executable, "-m", "edgekit.targets.tflite.tasklib.env", "--check"], capture_output=True, text=True,
                          env={"EDGEKIT_TASKLIB_ENV": str(tmp_path / "absent"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1 and "create it with" in proc.stderr


def test_missing_env_check_is_skipped_not_passed(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EDGEKIT_TASKLIB_ENV", str(tmp_path / "absent"))
    result = check_question_answering(tmp_path / "x.tflite", runner=None, tokenizer=None, seq_len=384)
    assert result.status == "skipped" and result.agreement is None and "create" in result.reason


def test_default_env_sits_beside_the_active_venv(monkeypatch) -> None:
    monkeypatch.delenv("EDGEKIT_TASKLIB_ENV", raising=False)
    assert tasklib.env_dir() == Path(sys.prefix).resolve().parent / ".venv-tasklib"


def test_normalize_answer() -> None:
    assert normalize_answer("Paris.") == normalize_answer("paris") == "paris"
    assert normalize_answer("  the  Seine,\n river ") == "the seine, river"
    assert normalize_answer("paris") != normalize_answer("london")


# ---- with the environment -------------------------------------------------------------------
def test_environment_pins(tasklib_env) -> None:  # noqa: F811
    reply = tasklib.call({"cmd": "ping"})
    assert reply["tflite_support"].startswith("0.4.4") and reply["protobuf"].startswith("3.")


def test_worker_errors_become_edgekit_errors(tasklib_env, tmp_path) -> None:  # noqa: F811
    with pytest.raises(tasklib.TaskLibError, match="KeyError"):
        tasklib.call({"cmd": "no-such-command"})
    with pytest.raises(tasklib.TaskLibError):
        tasklib.answer(tmp_path / "missing.tflite", [("q", "c")])


@pytest.mark.slow
def test_qa_metadata_is_what_the_task_library_needs(qa_checkpoint, tasklib_env, tmp_path) -> None:  # noqa: F811
    plain = _plain_export(qa_checkpoint, Task.QUESTION_ANSWERING, 384, tmp_path)
    io = _io(plain)
    with pytest.raises(tasklib.TaskLibError):  # a file without metadata: the field failure, reproduced
        tasklib.answer(plain, [("where is the tower", "the tower is in paris france")])
    dst = tmp_path / "with-metadata.tflite"
    tasklib.write_metadata(plain, dst, kind="qa", vocab=qa_checkpoint / "vocab.txt", labels=[],
                           inputs={"ids": io["inputs"]["input_ids"], "mask": io["inputs"]["attention_mask"],
                                   "segment_ids": io["inputs"]["segment_ids"]},
                           outputs={"start_logits": io["outputs"]["start_logits"], "end_logits": io["outputs"]["end_logits"]})
    meta = tasklib.read_metadata(dst)
    assert meta["packed_files"] == ["vocab.txt"]
    sub = meta["metadata"]["subgraph_metadata"][0]
    unit = sub["input_process_units"][0]
    assert unit["options_type"] == "BertTokenizerOptions"
    assert unit["options"]["vocab_file"][0]["name"] == "vocab.txt"
    # tensor metadata follows the model's tensor order, so the names must line up with the tensors
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(dst))
    tensor_order = [d["name"] for d in interp.get_input_details()]
    by_tensor = {v: k for k, v in io["inputs"].items()}
    md_name = {"input_ids": "ids", "attention_mask": "mask", "segment_ids": "segment_ids"}
    assert [t["name"] for t in sub["input_tensor_metadata"]] == [md_name[by_tensor[t]] for t in tensor_order]
    out_order = [d["name"] for d in interp.get_output_details()]
    out_by_tensor = {v: k for k, v in io["outputs"].items()}
    assert [t["name"] for t in sub["output_tensor_metadata"]] == [out_by_tensor[t] for t in out_order]
    answers = tasklib.answer(dst, [("where is the tower", "the tower is in paris france and the bridge is in london")])
    assert normalize_answer(answers[0][0]["text"]) == "paris france"


@pytest.mark.slow
def test_qa_check_fails_on_swapped_logits(qa_checkpoint, tasklib_env, tmp_path) -> None:  # noqa: F811
    """Metadata naming start as end (and vice versa): the Task Library must disagree with edgekit."""
    from edgekit.model.modeling import load_tokenizer

    plain = _plain_export(qa_checkpoint, Task.QUESTION_ANSWERING, 384, tmp_path)
    io = _io(plain)
    good, bad = tmp_path / "good.tflite", tmp_path / "swapped.tflite"
    inputs = {"ids": io["inputs"]["input_ids"], "mask": io["inputs"]["attention_mask"],
              "segment_ids": io["inputs"]["segment_ids"]}
    outs = io["outputs"]
    tasklib.write_metadata(plain, good, kind="qa", vocab=qa_checkpoint / "vocab.txt", labels=[], inputs=inputs,
                           outputs={"start_logits": outs["start_logits"], "end_logits": outs["end_logits"]})
    tasklib.write_metadata(plain, bad, kind="qa", vocab=qa_checkpoint / "vocab.txt", labels=[], inputs=inputs,
                           outputs={"start_logits": outs["end_logits"], "end_logits": outs["start_logits"]})
    tok = load_tokenizer(qa_checkpoint)
    ok = check_question_answering(good, tflite.LiteRTRunner(good), tok, 384)
    assert ok.status == "agreed", ok
    broken = check_question_answering(bad, tflite.LiteRTRunner(bad), tok, 384)
    assert broken.status == "disagreed", broken
    assert "disagrees" in broken.reason


@pytest.mark.slow
def test_classifier_metadata_and_label_check(cls_checkpoint, tasklib_env, tmp_path) -> None:  # noqa: F811
    from edgekit.model.modeling import load_model, load_tokenizer

    plain = _plain_export(cls_checkpoint, Task.SEQUENCE_CLASSIFICATION, 64, tmp_path)
    io = _io(plain)
    labels = list(load_model(cls_checkpoint, Task.SEQUENCE_CLASSIFICATION).config.labels)
    inputs = {"ids": io["inputs"]["input_ids"], "mask": io["inputs"]["attention_mask"],
              "segment_ids": io["inputs"]["segment_ids"]}
    good, bad = tmp_path / "good.tflite", tmp_path / "relabelled.tflite"
    tasklib.write_metadata(plain, good, kind="classifier", vocab=cls_checkpoint / "vocab.txt", labels=labels,
                           inputs=inputs, outputs={"probability": io["outputs"]["logits"]})
    tasklib.write_metadata(plain, bad, kind="classifier", vocab=cls_checkpoint / "vocab.txt",
                           labels=labels[1:] + labels[:1], inputs=inputs, outputs={"probability": io["outputs"]["logits"]})
    meta = tasklib.read_metadata(good)
    assert meta["packed_files"] == ["labels.txt", "vocab.txt"]
    out_md = meta["metadata"]["subgraph_metadata"][0]["output_tensor_metadata"][0]
    assert out_md["name"] == "probability"
    assert out_md["associated_files"][0]["name"] == "labels.txt"
    tok = load_tokenizer(cls_checkpoint)
    ok = check_classification(good, tflite.LiteRTRunner(good), tok, labels, 64)
    assert ok.status == "agreed", ok
    assert len({c["task_library"] for c in ok.cases}) >= 2
    broken = check_classification(bad, tflite.LiteRTRunner(bad), tok, labels, 64)
    assert broken.status == "disagreed", broken
    with pytest.raises(ValidationError, match="labels"):
        tasklib.write_metadata(plain, bad, kind="classifier", vocab=cls_checkpoint / "vocab.txt", labels=[],
                               inputs=inputs, outputs={"probability": io["outputs"]["logits"]})


def test_port_of_the_task_library_decoder_keeps_its_rules() -> None:
    """top-5 x top-5 over the whole sequence, context tokens only, start <= end, <= 32 tokens."""
    from edgekit.targets.tflite.tasklib.check import TaskLibraryFeatures, task_library_postprocess

    n = 40
    feats = TaskLibraryFeatures({}, {p + 1: p - 5 for p in range(5, 20)}, [f"w{i}" for i in range(15)])
    start, end = np.zeros(n), np.zeros(n)
    start[[30, 31, 32, 33, 34]] = 9.0   # top-5 starts all on padding: no answer at all
    end[[6, 7, 8, 9, 10]] = 5.0
    assert task_library_postprocess(start, end, feats) == []
    start[[30, 31]] = 0.0
    start[[6, 8]] = 8.0
    got = task_library_postprocess(start, end, feats)
    assert (got[0]["start"], got[0]["end"]) in {(6, 6), (8, 8), (6, 7), (6, 8), (6, 9), (6, 10), (8, 9), (8, 10)}
    assert all(a["start"] <= a["end"] and a["start"] >= 5 for a in got) and len(got) == 5
    assert got[0]["text"] == " ".join(feats.orig_tokens[got[0]["start"] - 5:got[0]["end"] - 4])


@pytest.mark.slow
def test_random_head_qa_fp32_at_384_is_not_failed_when_numbers_match(tiny_model, tasklib_env, tmp_path) -> None:  # noqa: F811
    """A random head puts its top logits on padding; the Task Library then answers nothing, and
    that is its decoder's rule, not a broken file."""
    from edgekit.core.config import ExportOptions, SeqLen
    from edgekit.build.stage import export_model
    from edgekit.model.modeling import load_model, load_tokenizer
    from edgekit.core.record import Status

    path = tiny_model("bert", Task.QUESTION_ANSWERING)
    opts = ExportOptions(target="tflite", task=Task.QUESTION_ANSWERING, seq_len=SeqLen.parse("384"))
    rec = export_model(load_model(path, Task.QUESTION_ANSWERING), opts, tmp_path, tokenizer=load_tokenizer(path),
                       verbose=False)
    tl = rec.options["task_library"]
    assert tl["status"] == "agreed", tl["reason"]
    assert all(c["numbers_ok"] and c["decoding_ok"] for c in tl["cases"])
    assert rec.status == Status.VALIDATED, rec.reason


@pytest.mark.slow
def test_wrong_vocab_in_the_metadata_fails_the_file(qa_checkpoint, tasklib_env, tmp_path) -> None:  # noqa: F811
    from edgekit.model.modeling import load_tokenizer

    plain = _plain_export(qa_checkpoint, Task.QUESTION_ANSWERING, 384, tmp_path)
    io = _io(plain)
    words = (qa_checkpoint / "vocab.txt").read_text().split("\n")
    body = [w for w in words[5:] if w]
    wrong = tmp_path / "vocab.txt"
    wrong.write_text("\n".join(words[:5] + body[::-1]) + "\n")  # same tokens, other ids
    bad = tmp_path / "wrong-vocab.tflite"
    tasklib.write_metadata(plain, bad, kind="qa", vocab=wrong, labels=[],
                           inputs={"ids": io["inputs"]["input_ids"], "mask": io["inputs"]["attention_mask"],
                                   "segment_ids": io["inputs"]["segment_ids"]},
                           outputs={"start_logits": io["outputs"]["start_logits"], "end_logits": io["outputs"]["end_logits"]})
    res = check_question_answering(bad, tflite.LiteRTRunner(bad), load_tokenizer(qa_checkpoint), 384)
    assert res.status == "disagreed", res
    assert "numbers" in res.reason or "decoding" in res.reason
