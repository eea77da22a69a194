"""A reference interpreter for Core ML ML Programs, so ``.mlpackage`` files can be checked on Linux.

Core ML itself only runs on Apple hardware. This package reads a saved ``.mlpackage`` back from
disk (the MIL program in ``model.mlmodel`` plus the weight blobs in ``weights/weight.bin``) and
evaluates it op by op in numpy, with fp16 ops rounded to fp16 and the weight-compression ops
(``constexpr_affine_dequantize``, ``constexpr_lut_to_dense``, ``constexpr_blockwise_shift_scale``)
decoded. An op it does not implement raises ``UnsupportedOpError`` naming the op, so a file is
never reported as validated on an interpreter that cannot run it.

Only ``coremltools.proto`` (the protobuf classes) is needed, not the Core ML runtime.
"""
from __future__ import annotations

from edgekit.targets.coreml.mil.errors import ProgramError
from edgekit.targets.coreml.mil.interpreter import Interpreter
from edgekit.targets.coreml.mil.ops import supported_ops
from edgekit.targets.coreml.mil.program import load_package

__all__ = ["Interpreter", "ProgramError", "load_package", "supported_ops"]
