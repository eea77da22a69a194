"""TFLite target: conversion at every precision, LiteRT parity, builtin ops only, Task Library metadata.

End-to-end tests go through ``edgekit.build.stage.export_model`` on tiny models (QA at the Task Library's
384 tokens) and assert on the record: status, the parity numbers against the tolerance, the ops in
the file (read back from the flatbuffer), and the Task Library client's verdict.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.core import registry
from edgekit.core.config import ExportOptions, SeqLen
from edgekit.core.errors import UsageError
from edgekit.model.modeling import load_model, load_tokenizer
from edgekit.core.precision import Precision
from edgekit.core.record import ArtifactRecord, Status
from edgekit.core.tasks import Task

pytest.importorskip("litert_torch")
from edgekit.targets.tflite import converter as tflite  # noqa: E402
from tflite_fixtures import calibration_file, cls_checkpoint, qa_checkpoint, tasklib_env  # noqa: E402,F401

PRECISIONS = [Precision.FP32, Precision.FP16, Precision.INT8_DYNAMIC, Precision.INT8_WEIGHT, Precision.INT8_STATIC]


def _export(path: Path, task: Task, precision: Precision, seq: int | str, out: Path, calibration: Path | None = None,
            metadata: bool = True) -> tuple[ArtifactRecord, Path]:
    from edgekit.build.stage import export_model

    model = load_model(path, task)
    options = ExportOptions(target="tflite", task=task, precision=precision, seq_len=SeqLen.parse(str(seq)),
                            calibration=calibration, flags={} if metadata else {"metadata": False})
    record = export_model(model, options, out, tokenizer=load_tokenizer(path), verbose=False)
    return record, out / record.artifact


def _assert_parity(record: ArtifactRecord, precision: Precision) -> None:
    assert record.status == Status.VALIDATED, (record.status, record.reason)
    parity = record.parity
    assert parity is not None and parity.samples >= 8
    assert parity.outputs, "parity must carry per-output numbers"
    for o in parity.outputs:
        assert np.isfinite(o.max_abs) and np.isfinite(o.cosine)
        if precision == Precision.FP32:
            assert o.max_abs <= 1e-4
        if precision == Precision.FP16:
            assert o.cosine >= 0.999
    floor = {Precision.FP32: None, Precision.FP16: 0.99}.get(precision, 0.97)
    if floor is not None:  # None: no decisive sample (a tiny head on real SQuAD text), counts still recorded
        assert parity.decisive is not None
        assert parity.agreement is None or parity.agreement >= floor


def _assert_builtin_only(path: Path) -> dict:
    report = tflite.op_report(path.read_bytes())
    assert report["flex"] == [] and report["custom"] == [], report
    assert "FULLY_CONNECTED" in report["ops"]
    return report


# ---- unit tests ------------------------------------------------------------------------------
def test_registered_with_its_contract() -> None:
    conv = registry.get("tflite")
    assert conv is tflite.CONVERTER
    assert conv.suffix == ".tflite" and conv.seq_kinds == ("fixed", "enumerated")
    assert set(conv.precisions) == set(PRECISIONS)
    assert conv.flag_names == {"metadata"} and conv.flags[0].cli == "--no-metadata"
    assert conv.tolerance(Precision.FP32).max_abs == 1e-4
    assert conv.tolerance(Precision.FP16).min_cosine == 0.9999 and conv.tolerance(Precision.FP16).min_agreement == 0.99
    assert conv.tolerance(Precision.INT8_STATIC).min_cosine == 0.975
    assert Precision.parse("int8", conv.precisions) == Precision.INT8_DYNAMIC


@pytest.mark.slow
def test_op_report_catches_flex_and_custom_ops(tiny_model, tmp_path) -> None:
    """The no-Flex check must be able to fail: add Flex and custom opcodes to a real file."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    record, path = _export(tiny_model("distilbert", Task.MASKED_LM), Task.MASKED_LM, Precision.FP32, 32, tmp_path)
    clean = tflite.op_report(path.read_bytes())
    assert clean["flex"] == [] and clean["custom"] == []
    assert record.options["ops"] == clean["ops"]
    m = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    for name in ("FlexErf", "MyCustomAttention"):
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        code.customCode = name
        m.operatorCodes.append(code)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    dirty = tflite.op_report(bytes(b.Output()))
    assert dirty["flex"] == ["FlexErf"] and dirty["custom"] == ["MyCustomAttention"]


@pytest.mark.slow
def test_offset_buffers_are_inlined(cls_checkpoint) -> None:  # noqa: F811
    """ai-edge-quantizer writes weights after the flatbuffer for models this size; old runtimes drop them."""
    import torch
    from ai_edge_litert.interpreter import Interpreter

    model = load_model(cls_checkpoint, Task.SEQUENCE_CLASSIFICATION)
    sample = {n: torch.zeros(1, 64, dtype=torch.int32) for n in tflite.file_input_names(model)}
    quantized = tflite.TFLiteConverter._quantize(tflite.TFLiteConverter._float_model(model, {tflite.SIGNATURE: sample}),
                                                 Precision.INT8_DYNAMIC, None)
    assert tflite.has_offset_buffers(quantized)
    inline = tflite.inline_buffers(quantized)
    assert not tflite.has_offset_buffers(inline) and tflite.inline_buffers(inline) is inline
    feed = {"input_ids": np.arange(5, 69, dtype=np.int32)[None], "attention_mask": np.ones((1, 64), np.int32),
            "segment_ids": np.zeros((1, 64), np.int32)}
    a, b = (Interpreter(model_content=m).get_signature_runner()(**feed)["logits"] for m in (quantized, inline))
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_runner_maps_token_types_and_rejects_wrong_length(tiny_model, tmp_path) -> None:
    """BERT QA keeps token types: the file's segment_ids input must carry them (a mix-up changes logits)."""
    path = tiny_model("bert", Task.QUESTION_ANSWERING)
    record, art = _export(path, Task.QUESTION_ANSWERING, Precision.FP32, 32, tmp_path, metadata=False)
    _assert_parity(record, Precision.FP32)
    assert [t.name for t in record.inputs] == ["input_ids", "attention_mask", "segment_ids"]
    runner = tflite.CONVERTER.load(art, record)
    assert set(runner.input_names) == {"input_ids", "attention_mask", "token_type_ids"}
    rng = np.random.default_rng(0)
    feed = {"input_ids": rng.integers(5, 100, (1, 32)).astype(np.int32), "attention_mask": np.ones((1, 32), np.int32),
            "token_type_ids": np.zeros((1, 32), np.int32)}
    zero = runner.run(feed)["start_logits"]
    feed["token_type_ids"][0, 16:] = 1
    assert not np.allclose(zero, runner.run(feed)["start_logits"])
    assert any("384" in n for n in record.notes)  # the Task Library QA length is called out
    with pytest.raises(UsageError, match="pad to 32"):
        runner.run({k: v[:, :16] for k, v in feed.items()})


# ---- several lengths in one file ---------------------------------------------------------------
def test_signature_names_and_order() -> None:
    """serving_default (the longest) is converted first: subgraph 0 is what the Task Library runs."""
    assert tflite.signature_lengths(SeqLen.parse("256,128,384")) == [
        ("serving_default", 384), ("s128", 128), ("s256", 256), ("s384", 384)]
    assert tflite.converted_signatures(SeqLen.parse("128,384")) == [("serving_default", 384), ("s128", 128)]
    assert tflite.signature_lengths(SeqLen.parse("128")) == [("serving_default", 128)]


@pytest.mark.slow
def test_one_file_per_bucket_shares_weights(tiny_model, tmp_path) -> None:
    """``--seq-len 128,256,384``: one validated file, a signature per length, weights stored once.

    Hidden 256 so that weights dominate the file as in real models (each extra length adds a
    subgraph of operators and tensor names, ~50 KB, which would dominate a 32-wide toy model).
    """
    import torch

    path = tiny_model("distilbert", Task.QUESTION_ANSWERING, hidden=256)
    record, art = _export(path, Task.QUESTION_ANSWERING, Precision.FP32, "128,256,384", tmp_path / "multi",
                          metadata=False)
    _assert_parity(record, Precision.FP32)
    assert str(record.seq_len) == "128,256,384"
    assert record.options["signatures"] == {"serving_default": 384, "s128": 128, "s256": 256, "s384": 384}
    _, single = _export(path, Task.QUESTION_ANSWERING, Precision.FP32, 384, tmp_path / "single", metadata=False)
    ratio = art.stat().st_size / single.stat().st_size
    assert ratio <= 1.05, f"three lengths take {ratio:.2f}x one length: weights are not shared"
    runner = tflite.CONVERTER.load(art, record)
    assert runner.seq_lens == (128, 256, 384)
    model = load_model(path, Task.QUESTION_ANSWERING)
    rng = np.random.default_rng(1)
    for seq in (128, 256, 384):  # every bucket computes what PyTorch computes at its length
        n = seq - 20
        ids = np.zeros((1, seq), np.int32)
        ids[0, :n] = rng.integers(5, 150, n)
        mask = (ids > 0).astype(np.int32)
        out = runner.run({"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
        with torch.no_grad():
            ref = model(torch.from_numpy(ids), torch.from_numpy(mask))
        assert out["start_logits"].shape == (1, seq)
        np.testing.assert_allclose(out["start_logits"], ref[0].numpy(), atol=1e-4)
        np.testing.assert_allclose(out["end_logits"], ref[1].numpy(), atol=1e-4)
    with pytest.raises(UsageError, match="smallest length that fits"):
        runner.run({"input_ids": ids[:, :100], "attention_mask": mask[:, :100]})
    # The QA pipeline on the file: each window at its smallest bucket answers as at 384.
    from edgekit.quality.qa import QAConfig, QAPipeline, artifact_logits_fn

    tok = load_tokenizer(path)
    context = " ".join(["the tower was built in paris france by the river seine"] * 30)
    fixed = QAPipeline(tok, artifact_logits_fn(runner), QAConfig(max_seq_len=384, top_k=3, pad_to=384))
    bucketed = QAPipeline(tok, artifact_logits_fn(runner), QAConfig(max_seq_len=384, top_k=3, buckets=runner.seq_lens))
    for question, ctx in (("where was the tower built", context[:120]), ("which river", context)):
        _, _, wins = bucketed.encode(question, ctx)
        got, ref = bucketed(question, ctx), fixed(question, ctx)
        assert [(a.start, a.end) for a in got] == [(a.start, a.end) for a in ref]
        assert [a.score for a in got] == pytest.approx([a.score for a in ref], rel=1e-3)
    assert len(wins[0].input_ids) == 384 and len(bucketed.encode("where", context[:120])[2][0].input_ids) == 128


@pytest.mark.slow
def test_multi_length_file_keeps_task_library_metadata(qa_checkpoint, tasklib_env, tmp_path) -> None:  # noqa: F811
    """The Task Library reads subgraph 0 (serving_default, 384): metadata and answers must still work."""
    record, path = _export(qa_checkpoint, Task.QUESTION_ANSWERING, Precision.INT8_DYNAMIC, "128,256,384", tmp_path)
    _assert_parity(record, Precision.INT8_DYNAMIC)
    _assert_builtin_only(path)
    assert record.options["metadata"]["written"] is True
    tl = record.options["task_library"]
    assert tl["status"] == "agreed", tl
    from ai_edge_litert.interpreter import Interpreter

    assert set(Interpreter(model_path=str(path)).get_signature_list()) == {"serving_default", "s128", "s256", "s384"}


# ---- end to end: every task at every precision ------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("precision", PRECISIONS, ids=str)
def test_question_answering_both_clients(precision, qa_checkpoint, calibration_file, tasklib_env, tmp_path) -> None:  # noqa: F811
    calib = calibration_file if precision == Precision.INT8_STATIC else None
    record, path = _export(qa_checkpoint, Task.QUESTION_ANSWERING, precision, 384, tmp_path, calibration=calib)
    _assert_parity(record, precision)
    report = _assert_builtin_only(path)
    assert [t.name for t in record.inputs] == ["input_ids", "attention_mask", "segment_ids"]
    assert [t.shape for t in record.inputs] == [[1, 384]] * 3
    assert record.options["metadata"]["written"] is True
    tl = record.options["task_library"]
    assert tl["status"] == "agreed", tl
    # the purpose-built pairs get answers; real SQuAD pairs may get none from a tiny model's head
    assert len(tl["cases"]) >= 5 and all(c["task_library"] for c in tl["cases"][:5])
    assert all(c["numbers_ok"] and c["decoding_ok"] for c in tl["cases"])
    if precision == Precision.INT8_DYNAMIC:  # the Task Library's runtime needs per-tensor hybrid FCs
        assert "per-tensor FULLY_CONNECTED" in record.options["quantization"]["weights"]
        # ... and no per-channel hybrid FC at all; the FFN down-projection (one per layer) computes in float
        layers = json.loads((qa_checkpoint / "config.json").read_text())["n_layers"]
        assert report["fc_weights"]["int8 per-channel"] == 0, report["fc_weights"]
        assert report["fc_weights"]["float"] == layers, report["fc_weights"]
        assert report["fc_weights"]["int8 per-tensor"] >= 5 * layers, report["fc_weights"]  # q/k/v/o/ffn_in
    if precision == Precision.INT8_STATIC:
        assert report["int8_activation_ops"].get("FULLY_CONNECTED", 0) >= 10  # 2 layers x q/k/v/o/ffn_in
        assert record.options["calibration_samples"] == 128
        assert not any("calibrated on only" in n for n in record.notes)
        # the fixture's lines are single texts: a QA file without question<TAB>context pairs is said
        assert any("question<TAB>context" in n for n in record.notes), record.notes


@pytest.mark.slow
@pytest.mark.parametrize("precision", PRECISIONS, ids=str)
def test_classifier_both_clients(precision, cls_checkpoint, tasklib_env, tmp_path) -> None:  # noqa: F811
    # int8-static here uses the embedded default calibration set, which is small: it must say so.
    record, path = _export(cls_checkpoint, Task.SEQUENCE_CLASSIFICATION, precision, 64, tmp_path)
    _assert_parity(record, precision)
    _assert_builtin_only(path)
    assert not tflite.has_offset_buffers(path.read_bytes()), "weights must be inside the flatbuffer"
    tl = record.options["task_library"]
    assert tl["status"] == "agreed", tl
    assert len({c["edgekit"] for c in tl["cases"]}) >= 2, "the check texts must not all get one label"
    if precision == Precision.INT8_STATIC:
        assert any("calibrated on only" in n and "--calibration" in n for n in record.notes)


@pytest.mark.slow
@pytest.mark.parametrize("precision", PRECISIONS, ids=str)
def test_masked_lm(precision, tiny_model, calibration_file, tmp_path) -> None:  # noqa: F811
    calib = calibration_file if precision == Precision.INT8_STATIC else None
    record, path = _export(tiny_model("distilbert", Task.MASKED_LM), Task.MASKED_LM, precision, 32, tmp_path,
                           calibration=calib)
    _assert_parity(record, precision)
    _assert_builtin_only(path)
    assert [t.name for t in record.inputs] == ["input_ids", "attention_mask"]  # no Task Library API: no segment_ids
    if precision == Precision.INT8_DYNAMIC:  # no Task Library file: LiteRT's per-channel hybrid kernels
        assert "per-channel FULLY_CONNECTED" in record.options["quantization"]["weights"]
    assert record.options["metadata"] == {"written": False, "reason": "the Task Library has no BERT API for masked-lm"}
    assert "task_library" not in record.options


@pytest.mark.slow
def test_missing_tasklib_env_writes_plain_model_and_says_how_to_fix(cls_checkpoint, tmp_path, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("EDGEKIT_TASKLIB_ENV", str(tmp_path / "no-such-env"))
    record, path = _export(cls_checkpoint, Task.SEQUENCE_CLASSIFICATION, Precision.FP32, 64, tmp_path)
    assert path.is_file() and record.status == Status.VALIDATED  # the LiteRT client still validated it
    meta = record.options["metadata"]
    assert meta["written"] is False and "edgekit.targets.tflite.tasklib.env --create" in meta["reason"]
    tl = record.options["task_library"]
    assert tl["status"] == "skipped" and "edgekit.targets.tflite.tasklib.env --create" in tl["reason"]
    assert any(n.startswith("Task Library validation skipped") for n in record.notes)
    saved = ArtifactRecord.load(path)
    assert saved.options["task_library"]["status"] == "skipped"
