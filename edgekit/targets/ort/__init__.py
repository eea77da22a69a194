"""ONNX Runtime's own format (.ort)."""
from edgekit.targets.ort.converter import CONVERTER

__all__ = ["CONVERTER"]
