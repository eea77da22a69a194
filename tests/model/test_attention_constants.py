"""No file carries a constant that grows with S² (a baked attention mask or its fill value).

Each target's constants are read back from the exported file at a length S = 96 that no other
dimension of the tiny model has (hidden 64, FFN 128, 4 heads, 512 positions, ~200 tokens): a
constant with two axes of 96 is an [S, S] attention constant. The mask must be computed from the
``attention_mask`` input instead; a fixed-length Core ML file used to carry a [1, heads, S, S]
fill of -1e4 (coremltools broadcasts every operand of a fixed-shape ``where``).
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from edgekit.core.config import ExportOptions, SeqLen
from edgekit.model.modeling import load_model
from edgekit.core.precision import Precision
from edgekit.core.tasks import Task

S = 96


def _quadratic(shapes: list[tuple[str, tuple[int, ...]]]) -> list[tuple[str, tuple[int, ...]]]:
    return [(n, s) for n, s in shapes if list(s).count(S) >= 2]


def _convert(tiny_model, target: str, tmp_path, precision: Precision = Precision.FP16):
    from edgekit.core import registry

    model = load_model(tiny_model("distilbert", Task.QUESTION_ANSWERING, hidden=64), Task.QUESTION_ANSWERING)
    conv = registry.get(target)
    from edgekit.build.stage import context

    options = ExportOptions(target=target, task=model.task, precision=precision, seq_len=SeqLen.parse(str(S)),
                            flags={"metadata": False} if target == "tflite" else {})
    dest = tmp_path / f"m{conv.suffix}"
    conv.convert(context(model, options), dest)
    return model, dest


def test_detector_sees_a_baked_mask() -> None:
    assert _quadratic([("fill", (1, 4, S, S)), ("w", (S, 64)), ("pos", (1, S, 64))]) == [("fill", (1, 4, S, S))]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("coremltools") is None, reason="coremltools not installed")
def test_coreml_has_no_quadratic_constant(tiny_model, tmp_path) -> None:
    from edgekit.targets.coreml.mil.program import load_package

    _, path = _convert(tiny_model, "coreml", tmp_path)
    shapes = []
    for op in load_package(path).function.operations:
        for binds in op.inputs.values():
            shapes += [(op.name, v.shape) for kind, v in binds if kind == "value" and isinstance(v, np.ndarray)]
    assert shapes, "no constants read: the check would pass vacuously"
    assert _quadratic(shapes) == []


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("litert_torch") is None, reason="litert-torch not installed")
def test_tflite_has_no_quadratic_constant(tiny_model, tmp_path) -> None:
    from ai_edge_litert import schema_py_generated as schema

    _, path = _convert(tiny_model, "tflite", tmp_path, Precision.FP32)
    m = schema.Model.GetRootAsModel(bytearray(path.read_bytes()), 0)
    shapes = []
    for g in range(m.SubgraphsLength()):
        sg = m.Subgraphs(g)
        for t in range(sg.TensorsLength()):
            tensor = sg.Tensors(t)
            if m.Buffers(tensor.Buffer()).DataLength() > 0:
                shapes.append((tensor.Name().decode(), tuple(int(d) for d in tensor.ShapeAsNumpy())))
    assert shapes
    assert _quadratic(shapes) == []


@pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="onnx not installed")
def test_onnx_has_no_quadratic_constant(tiny_model, tmp_path) -> None:
    import onnx
    from onnx import numpy_helper

    _, path = _convert(tiny_model, "onnx", tmp_path, Precision.FP32)
    graph = onnx.load(str(path)).graph
    shapes = [(i.name, tuple(i.dims)) for i in graph.initializer]
    shapes += [(n.name, numpy_helper.to_array(a.t).shape) for n in graph.node if n.op_type == "Constant"
               for a in n.attribute if a.name == "value"]
    assert shapes
    assert _quadratic(shapes) == []


def test_exported_program_has_no_quadratic_constant(tiny_model) -> None:
    """What ExecuTorch (and every torch.export-based path) lowers: parameters, buffers and lifted constants."""
    import torch

    model = load_model(tiny_model("distilbert", Task.QUESTION_ANSWERING, hidden=64), Task.QUESTION_ANSWERING)
    args = (torch.ones(1, S, dtype=torch.int32), torch.ones(1, S, dtype=torch.int32))
    ep = torch.export.export(model, args)
    shapes = [(k, tuple(v.shape)) for k, v in {**ep.state_dict, **ep.constants}.items() if hasattr(v, "shape")]
    assert shapes
    assert _quadratic(shapes) == []


# ---- the mask form each runtime's CPU delegate takes (issue 16: fp32 at its plain peer's speed) ------

@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("litert_torch") is None, reason="litert-torch not installed")
@pytest.mark.parametrize("precision", [Precision.FP32, Precision.INT8_STATIC])
def test_tflite_masks_with_an_add_not_a_select(tiny_model, tmp_path, precision) -> None:
    """XNNPACK does not take a broadcasting SELECT_V2: one per layer leaves the delegate each layer
    (edgekit fp32 was 1.14-1.68x the plain litert-torch file). The file adds a [1, 1, 1, S] bias."""
    from edgekit.targets.tflite.flatbuffer import op_report

    _, path = _convert(tiny_model, "tflite", tmp_path, precision)
    ops = op_report(path.read_bytes())["ops"]
    assert "SOFTMAX" in ops and "SELECT_V2" not in ops and "SELECT" not in ops, ops


@pytest.mark.skipif(importlib.util.find_spec("executorch") is None, reason="executorch not installed")
def test_executorch_mask_is_delegated(tiny_model, tmp_path) -> None:
    """XNNPACK has no select kernel: a masked_fill per layer stayed outside the delegate as
    ``aten::where`` (edgekit fp32 1.07x the plain lowering, 0.99x with the add)."""
    _, path = _convert(tiny_model, "executorch", tmp_path, Precision.FP32)
    data = path.read_bytes()
    assert b"XnnpackBackend" in data
    assert b"aten::where" not in data and b"aten::masked_fill" not in data
