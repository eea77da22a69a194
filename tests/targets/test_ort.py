"""ORT format target: the onnx target's fused model saved as an ONNX Runtime Mobile flatbuffer."""
from __future__ import annotations

import pytest

from edgekit.core.config import ExportOptions, SeqLen
from edgekit.model.modeling import load_model, load_tokenizer
from edgekit.core.precision import Precision
from edgekit.core.record import Status
from edgekit.core.tasks import Task

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("precision", [Precision.FP32, Precision.INT8_DYNAMIC, Precision.INT8_DYNAMIC_FULL])
def test_ort_file_validates(tiny_model, tmp_path, precision):
    from edgekit.build.stage import export_model

    task = Task.QUESTION_ANSWERING
    path = tiny_model("distilbert", task)
    model, tok = load_model(path, task), load_tokenizer(path)
    record = export_model(model, ExportOptions("ort", task, precision, SeqLen.parse("48")), tmp_path,
                          tokenizer=tok, verbose=False)
    assert record.status == Status.VALIDATED, record.reason
    data = (tmp_path / record.artifact).read_bytes()
    assert data[4:8] == b"ORTM"  # flatbuffer file identifier of the ORT format, not an ONNX protobuf
    assert record.options["format"] == "ORT flatbuffer" and record.options["fused_ops"]["Attention"] == 2
