"""ORT-format files run in the same aarch64 ONNX Runtime as .onnx files (``edgekit.targets.onnx.arm64``)."""
from edgekit.targets.onnx.arm64 import RUNTIME, run_file

__all__ = ["RUNTIME", "run_file"]
