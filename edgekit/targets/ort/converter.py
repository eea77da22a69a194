"""ORT format (``.ort``): the ONNX target's file, pre-optimised for ONNX Runtime Mobile.

ONNX Runtime Mobile loads the flatbuffer ``.ort`` format (smaller runtime, no protobuf parser, and
the build can be reduced to the operators the model uses). The file is made from the ``onnx``
target's fused model by an ``InferenceSession`` that saves its graph in ORT format after the
hardware-independent ("basic") optimisations, as ``onnxruntime.tools.convert_onnx_models_to_ort``
does. It keeps edgekit's fused Attention/SkipLayerNormalization contrib ops, which the full ORT
Mobile packages (onnxruntime-android, onnxruntime-objc) include; a reduced-operator build must
list them in its operator config.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from edgekit.core.target import ConvertContext, ConvertResult, Converter
from edgekit.core.precision import Precision

from edgekit.targets.onnx.converter import CONVERTER as ONNX, OnnxRunner

if TYPE_CHECKING:
    from edgekit.core.record import ArtifactRecord


class OrtFormatConverter(Converter):
    name = "ort"
    suffix = ".ort"
    order = 70
    extra = "onnx"
    requires = ("onnx", "onnxruntime")
    # The precisions phones run on the ORT CPU provider; fp16 belongs to GPU/NNAPI providers.
    precisions = (Precision.FP32, Precision.INT8_DYNAMIC, Precision.INT8_DYNAMIC_FULL)
    tolerances = {p: ONNX.tolerances[p] for p in precisions}
    seq_kinds = ("fixed", "enumerated", "range")
    description = "ONNX Runtime Mobile .ort flatbuffer (the onnx target's fused model, basic-optimised)"

    def convert(self, ctx: ConvertContext, dest: Path) -> ConvertResult:
        self.require()
        import onnxruntime as ort

        with tempfile.TemporaryDirectory(prefix="edgekit-ort-") as tmp:
            src = Path(tmp) / "model.onnx"
            result = ONNX.convert(ctx, src)
            so = ort.SessionOptions()
            # "basic" rewrites are hardware independent: the file runs on any phone CPU.
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            so.optimized_model_filepath = str(dest)
            so.add_session_config_entry("session.save_model_format", "ORT")
            so.log_severity_level = 3
            ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
        result.options = {**(result.options or {}), "format": "ORT flatbuffer", "optimization": "basic"}
        return result

    def load(self, path: Path, record: ArtifactRecord, threads: int | None = None) -> OnnxRunner:
        self.require()
        return OnnxRunner(path, threads, ort_format=True)


CONVERTER = OrtFormatConverter()
