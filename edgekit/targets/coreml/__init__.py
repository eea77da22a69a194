"""Core ML (.mlpackage): coremltools converter, the MIL interpreter that runs it on Linux, ANE-like numbers."""
from edgekit.targets.coreml.converter import CONVERTER

__all__ = ["CONVERTER"]
