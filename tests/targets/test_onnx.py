"""ONNX target: export, fusion, precisions, dynamic lengths and the onnxruntime runner (tiny models)."""
from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from edgekit.core.config import ExportOptions, SeqLen
from edgekit.core.errors import UsageError, ValidationError
from edgekit.build.stage import context
from edgekit.model.modeling import load_model, load_tokenizer
from edgekit.core.precision import Precision
from edgekit.core.record import ArtifactRecord, Status
from edgekit.core.tasks import Task

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
import onnx  # noqa: E402

onnx_target = importlib.import_module("edgekit.targets.onnx.converter")
CONVERTER = onnx_target.CONVERTER


def _export(model, tmp_path, precision=Precision.FP32, seq="32", **kw):
    opts = ExportOptions("onnx", model.task, precision, SeqLen.parse(seq), **kw)
    dest = tmp_path / f"m.{precision}.onnx"
    result = CONVERTER.convert(context(model, opts), dest)
    return dest, result


def _torch(model, feed):
    with torch.inference_mode():
        out = model(*[torch.from_numpy(feed[n]) for n in model.input_names])
    return {n: t.numpy() for n, t in zip(model.output_names, out)}


def _feed(model, seq, length, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.zeros((1, seq), np.int32)
    ids[0, :length] = rng.integers(5, model.config.vocab_size, length)
    mask = np.zeros((1, seq), np.int32)
    mask[0, :length] = 1
    feed = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in model.input_names:
        types = np.zeros((1, seq), np.int32)
        types[0, length // 2:length] = 1
        feed["token_type_ids"] = types
    return feed


def test_registered_with_its_contract():
    from edgekit.core import registry

    conv = registry.get("onnx")
    assert conv is CONVERTER
    assert conv.suffix == ".onnx" and set(conv.precisions) == set(conv.tolerances)
    assert {"fixed", "range"} <= set(conv.seq_kinds)


@pytest.mark.parametrize("arch,task", [
    ("distilbert", Task.QUESTION_ANSWERING),
    ("bert", Task.SEQUENCE_CLASSIFICATION),
    ("distilbert", Task.FEATURE_EXTRACTION),  # the float mask is also read by mean pooling
])
def test_attention_is_fused_and_values_match(tiny_model, tmp_path, arch, task):
    model = load_model(tiny_model(arch, task), task)
    path, result = _export(model, tmp_path)
    proto = onnx.load(str(path))
    ops = [n.op_type for n in proto.graph.node]
    # Without the graph rewrites ORT fuses no attention at all; this pins that they still apply.
    assert ops.count("Attention") == model.config.num_layers, result.options
    assert result.options["graph_rewrites"]["mask_to_additive"] == model.config.num_layers
    assert result.options["graph_rewrites"]["scale_mul_to_div"] == model.config.num_layers
    assert "Softmax" not in ops
    assert not result.notes  # a partial fusion would be noted
    assert any(o.domain == "com.microsoft" for o in proto.opset_import)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["edgekit.task"] == task.value and meta["edgekit.outputs"] == ",".join(model.output_names)

    runner = CONVERTER.load(path, None, threads=1)
    assert runner.input_names == model.input_names and runner.output_names == model.output_names
    feed = _feed(model, 32, 20)  # padded: the rewritten mask path must still mask
    got, ref = runner.run(feed), _torch(model, feed)
    for name in model.output_names:
        assert got[name].dtype == np.float32
        np.testing.assert_allclose(got[name], ref[name], atol=1e-4, rtol=0)


def test_range_exports_a_dynamic_sequence_axis(tiny_model, tmp_path):
    task = Task.QUESTION_ANSWERING
    model = load_model(tiny_model("bert", task), task)  # keeps token_type_ids
    assert "token_type_ids" in model.input_names
    path, _ = _export(model, tmp_path, seq="16:64")
    proto = onnx.load(str(path))
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
    assert dims["input_ids"] == [1, "seq"]
    assert [n.op_type for n in proto.graph.node].count("Attention") == model.config.num_layers
    runner = CONVERTER.load(path, None, threads=1)
    for seq, length in ((16, 16), (40, 33), (64, 50)):
        feed = _feed(model, seq, length, seed=seq)
        got, ref = runner.run(feed), _torch(model, feed)
        for name in model.output_names:
            assert got[name].shape == (1, seq)
            np.testing.assert_allclose(got[name], ref[name], atol=1e-4, rtol=0)


def test_buckets_export_one_dynamic_graph_with_its_upper_bound(tiny_model, tmp_path):
    """``--seq-len 128,256,384``: one graph, dynamic ``seq``, validated at every bucket, bound enforced."""
    from edgekit.build.stage import export_model

    task = Task.QUESTION_ANSWERING
    src = tiny_model("distilbert", task)
    model = load_model(src, task)
    opts = ExportOptions("onnx", task, Precision.FP32, SeqLen.parse("32,48,64"))
    record = export_model(model, opts, tmp_path, tokenizer=load_tokenizer(src), verbose=False)
    assert record.status == Status.VALIDATED, record.reason
    assert str(record.seq_len) == "32,48,64" and record.inputs[0].shape == [1, "seq"]
    path = tmp_path / record.artifact
    proto = onnx.load(str(path))
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
    assert dims["input_ids"] == [1, "seq"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["edgekit.max_seq_len"] == "64" and meta["edgekit.seq_len"] == "32,48,64"
    runner = CONVERTER.load(path, record, threads=1)
    assert runner.seq_lens == (32, 48, 64) and runner.max_seq_len == 64
    for seq in (32, 48, 64):
        feed = _feed(model, seq, seq - 7, seed=seq)
        got, ref = runner.run(feed), _torch(model, feed)
        for name in model.output_names:
            np.testing.assert_allclose(got[name], ref[name], atol=1e-4, rtol=0)
    with pytest.raises(UsageError, match="up to 64 tokens"):
        runner.run(_feed(model, 80, 70))


def test_fixed_length_file_rejects_other_lengths(tiny_model, tmp_path):
    task = Task.SEQUENCE_CLASSIFICATION
    model = load_model(tiny_model("distilbert", task), task)
    path, _ = _export(model, tmp_path, seq="32")
    runner = CONVERTER.load(path, None)
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        runner.run(_feed(model, 48, 40))


def test_runner_names_missing_inputs(tiny_model, tmp_path):
    task = Task.SEQUENCE_CLASSIFICATION
    model = load_model(tiny_model("distilbert", task), task)
    path, _ = _export(model, tmp_path)
    runner = CONVERTER.load(path, None)
    with pytest.raises(ValidationError, match="attention_mask"):
        runner.run({"input_ids": np.zeros((1, 32), np.int32)})


@pytest.mark.slow
@pytest.mark.parametrize("precision", CONVERTER.precisions)
def test_export_model_validates_every_precision(tiny_model, tmp_path, precision):
    from edgekit.build.stage import export_model

    task = Task.SEQUENCE_CLASSIFICATION
    path = tiny_model("distilbert", task)
    model, tok = load_model(path, task), load_tokenizer(path)
    record = export_model(model, ExportOptions("onnx", task, precision, SeqLen.parse("32")), tmp_path,
                          tokenizer=tok, verbose=False)
    assert record.status == Status.VALIDATED, record.reason
    assert record.parity.passed and record.parity.agreement == 1.0
    worst = record.parity.outputs[0]
    if precision == Precision.FP32:
        assert worst.max_abs < 1e-5
    else:
        assert 0 < worst.max_abs and worst.cosine > 0.999  # changed numbers, still the same model
    assert record.versions["onnxruntime"] and record.options["opset"] == 17
    saved = ArtifactRecord.load(tmp_path / record.artifact)
    assert saved.sha256 == record.sha256 and saved.size_bytes == (tmp_path / record.artifact).stat().st_size


def test_int8_files_are_smaller_and_quantised(tiny_model, tmp_path):
    task = Task.MASKED_LM  # the vocabulary projection dominates: int8 must shrink it
    model = load_model(tiny_model("bert", task), task)
    fp32, _ = _export(model, tmp_path, Precision.FP32)
    int8, res = _export(model, tmp_path, Precision.INT8_DYNAMIC)
    fp16, _ = _export(model, tmp_path, Precision.FP16)
    # ~0.51 here: the FFN down-projection stays float (all-MiniLM-L6-v2 QA: 33.9 of 90.1 MB, 0.38)
    assert int8.stat().st_size < 0.55 * fp32.stat().st_size
    assert fp16.stat().st_size < 0.65 * fp32.stat().st_size
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeMatMul", "QAttention"}, ops
    assert any("per-channel" in n for n in res.notes)


@pytest.mark.parametrize("precision", [Precision.INT8_DYNAMIC, Precision.INT8_STATIC])
def test_int8_keeps_the_ffn_down_projection_float(tiny_model, tmp_path, precision):
    # One activation scale per tensor cannot hold the GELU outliers: quantised, ffn_out cost the shared
    # SQuAD model 3.56 F1 on 200 dev questions (DESIGN.md, ONNX). Every other MatMul is int8.
    task = Task.QUESTION_ANSWERING
    model = load_model(tiny_model("bert", task), task)
    path, _ = _export(model, tmp_path, precision)
    nodes = onnx.load(str(path)).graph.node
    made_by = {o: n.op_type for n in nodes for o in n.output}
    # Float: a MatMul left as is (dynamic renames the ones it quantises; QDQ feeds them from DequantizeLinear).
    float_mm = {n.name for n in nodes if n.op_type == "MatMul" and made_by.get(n.input[0]) != "DequantizeLinear"}
    down = {f"/layers.{i}/ffn_out/MatMul" for i in range(model.config.num_layers)}
    assert down <= float_mm, float_mm
    assert not {m for m in float_mm - down if m.startswith("/layers.")}, float_mm  # the rest is int8
    int8 = {"MatMulInteger", "DynamicQuantizeMatMul", "QAttention"} if precision == Precision.INT8_DYNAMIC else {
        "QuantizeLinear"}
    assert {n.op_type for n in nodes} & int8


def test_int8_static_uses_the_calibration_file(tiny_model, tmp_path):
    task = Task.SEQUENCE_CLASSIFICATION
    model = load_model(tiny_model("distilbert", task), task)
    calib = tmp_path / "calib.txt"
    calib.write_text("the city is on the river\n\nwhere is the tower\nthe quick brown fox\n")
    path, res = _export(model, tmp_path, Precision.INT8_STATIC, calibration=calib)
    assert any("calibrated on 3 samples of" in n and "calib.txt" in n for n in res.notes), res.notes
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops and "Cast" in ops  # QDQ + int8 embeddings
    feed = _feed(model, 32, 25)
    got, ref = CONVERTER.load(path, None).run(feed), _torch(model, feed)
    assert np.abs(got["logits"] - ref["logits"]).max() < 0.05


def test_empty_calibration_file_is_a_usage_error(tiny_model, tmp_path):
    task = Task.SEQUENCE_CLASSIFICATION
    model = load_model(tiny_model("distilbert", task), task)
    calib = tmp_path / "calib.txt"
    calib.write_text("\n\n")
    with pytest.raises(UsageError, match="one sample per line"):
        _export(model, tmp_path, Precision.INT8_STATIC, calibration=calib)


def test_export_does_not_touch_the_model(tiny_model, tmp_path):
    task = Task.QUESTION_ANSWERING
    model = load_model(tiny_model("distilbert", task), task)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _export(model, tmp_path, Precision.INT8_DYNAMIC)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not model.training


def test_embedding_tables_are_int8_per_row(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    table = rng.normal(size=(300, 16)).astype(np.float32)
    table[7] *= 100  # an outlier row must not coarsen the others (it would with one scale per table)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["out"], axis=0)], "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT32, [1, 5])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 5, 16])],
        [numpy_helper.from_array(table, "table")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    assert onnx_target.quantize_embeddings(proto) == 1
    assert {i.name for i in proto.graph.initializer} == {"table_int8", "table_int8_row_scale"}
    onnx.checker.check_model(proto)
    path = tmp_path / "g.onnx"
    onnx.save(proto, str(path))
    ids = np.array([[0, 7, 42, 299, 7]], np.int32)
    got = onnx_target.OnnxRunner(path).run({"ids": ids})["out"]
    want = table[ids]
    step = np.abs(table[ids]).max(axis=-1, keepdims=True) / 127
    assert np.all(np.abs(got - want) <= step / 2 + 1e-6)
    assert np.abs(got[0, 2] - want[0, 2]).max() < 0.05  # an ordinary row keeps its own fine scale


def _outlier_matmul(tmp_path, rng):
    """``X @ W`` as an ONNX file, with X's channel 3 a hundred times the others (GELU outputs' outliers)."""
    from onnx import TensorProto, helper, numpy_helper

    weight = rng.normal(size=(64, 32)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="/layers.0/ffn_out/MatMul")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 32])],
        [numpy_helper.from_array(weight, "w")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = tmp_path / "mm.onnx"
    onnx.save(proto, str(path))
    feeds = []
    for _ in range(4):
        x = rng.normal(size=(1, 8, 64)).astype(np.float32)
        x[..., 3] *= 100
        feeds.append({"x": x})
    return path, weight, feeds


def test_smoothing_is_exact_in_float_and_flattens_the_outlier_channel(tmp_path):
    # SmoothQuant (issue 27): X @ W = (X / s) @ (s W). In float the smoothed graph computes the same
    # numbers; the activation the quantiser sees has its outlier channel divided down.
    import onnxruntime as ort
    from onnx import numpy_helper

    rng = np.random.default_rng(0)
    path, weight, feeds = _outlier_matmul(tmp_path, rng)
    absmax = onnx_target.activation_absmax(path, feeds, ["/layers.0/ffn_out/MatMul"])
    peak = absmax["/layers.0/ffn_out/MatMul"]
    assert peak.shape == (64,) and peak[3] > 50 * np.median(peak)
    proto = onnx.load(str(path))
    assert onnx_target.smooth_matmuls(proto, absmax, alpha=0.5) == 1
    onnx.checker.check_model(proto)
    mul = next(n for n in proto.graph.node if n.op_type == "Mul")
    mm = next(n for n in proto.graph.node if n.op_type == "MatMul")
    assert mm.input[0] == mul.output[0]  # the Mul by 1/s feeds the MatMul
    assert "w" not in {i.name for i in proto.graph.initializer}  # the weight was replaced by s * W
    smoothed = tmp_path / "smoothed.onnx"
    onnx.save(proto, str(smoothed))
    before = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    after = ort.InferenceSession(str(smoothed), providers=["CPUExecutionProvider"])
    for feed in feeds:
        np.testing.assert_allclose(after.run(None, feed)[0], before.run(None, feed)[0], rtol=1e-4, atol=1e-3)
    inv = next(numpy_helper.to_array(i) for i in proto.graph.initializer if i.name.endswith("_inv_scale"))
    x = np.concatenate([f["x"] for f in feeds]).reshape(-1, 64) * inv
    flat = np.abs(x).max(axis=0)
    assert flat.max() / np.median(flat) < 0.2 * peak.max() / np.median(peak)  # the outlier moved into the weights


def test_smoothing_scales_follow_the_paper():
    x = np.array([1.0, 100.0, 0.0, 4.0], np.float32)
    w = np.array([[1.0, -2.0], [0.5, 0.25], [3.0, 1.0], [0.0, 0.0]], np.float32)  # max |W_j|: 2, 0.5, 3, 0
    s = onnx_target.smoothing_scales(x, w, alpha=0.5)
    np.testing.assert_allclose(s[:2], [np.sqrt(1 / 2), np.sqrt(100 / 0.5)], rtol=1e-6)
    assert s[2] == 1 and s[3] == 1  # an all-zero channel on either side is left alone
    np.testing.assert_allclose(onnx_target.smoothing_scales(x, w, alpha=1.0)[:2], [1, 100], rtol=1e-6)


@pytest.mark.parametrize("recipe", ["smooth-0.5", "all-int8"])
def test_ffn_down_projection_int8_recipes(tiny_model, tmp_path, monkeypatch, recipe):
    # Issue 27's recipes that quantise the FFN down-projection too: with smoothing, a Mul by 1/s reads
    # GELU's output and feeds the (now int8) down-projection; the file still runs and stays close.
    task = Task.QUESTION_ANSWERING
    model = load_model(tiny_model("bert", task), task)
    monkeypatch.setattr(onnx_target, "DYNAMIC_RECIPE", onnx_target.DYNAMIC_RECIPES[recipe])
    path, res = _export(model, tmp_path, Precision.INT8_DYNAMIC)
    nodes = onnx.load(str(path)).graph.node
    made_by = {o: n for n in nodes for o in n.output}
    assert not [n.name for n in nodes if n.op_type == "MatMul"]  # every MatMul is int8 now
    for i in range(model.config.num_layers):
        down = next(n for n in nodes if n.name.startswith(f"/layers.{i}/ffn_out/MatMul") and n.op_type == "MatMulInteger")
        quant = made_by[down.input[0]]
        assert quant.op_type == "DynamicQuantizeLinear"
        before = made_by.get(quant.input[0])
        if recipe.startswith("smooth"):
            assert before.op_type == "Mul" and made_by[before.input[0]].op_type in ("BiasGelu", "Gelu", "FastGelu")
        else:
            assert before.op_type in ("BiasGelu", "Gelu", "FastGelu")
    assert any(recipe in n for n in res.notes) and (not recipe.startswith("smooth") or any("SmoothQuant" in n for n in res.notes))
    feed = _feed(model, 32, 25)
    got, ref = CONVERTER.load(path, None).run(feed), _torch(model, feed)
    for name in ref:
        a, b = got[name][0, :25].ravel(), ref[name][0, :25].ravel()
        assert np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.98


def test_int8_dynamic_full_quantises_every_matmul_and_reads_as_itself(tiny_model, tmp_path):
    # Issue 27: the fast recipe ships under its own name. Its file has no float-weight MatMul left (the
    # FFN down-projection is int8 too), is smaller than int8-dynamic's, and the integrity reader tells
    # the two apart from the bytes, so a file recorded as one but holding the other is caught.
    from edgekit.targets.onnx import reader

    task = Task.QUESTION_ANSWERING
    model = load_model(tiny_model("bert", task), task)
    full, res = _export(model, tmp_path, Precision.INT8_DYNAMIC_FULL)
    part, _ = _export(model, tmp_path, Precision.INT8_DYNAMIC)
    assert not [n.name for n in onnx.load(str(full)).graph.node if n.op_type == "MatMul"]
    assert any(n.startswith("int8-dynamic-full (all-int8)") for n in res.notes), res.notes
    assert full.stat().st_size < part.stat().st_size
    assert reader.inspect(full).precisions == {"int8-dynamic-full"}
    got = reader.inspect(part)
    assert got.precisions == {"int8-dynamic"} and "float-weight MatMul" in got.evidence, got
