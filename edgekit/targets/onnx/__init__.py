"""ONNX (.onnx) run by ONNX Runtime."""
from edgekit.targets.onnx.converter import CONVERTER

__all__ = ["CONVERTER"]
