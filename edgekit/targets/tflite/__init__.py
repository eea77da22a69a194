"""TFLite / LiteRT (.tflite): litert-torch converter, flatbuffer reader, the Task Library check."""
from edgekit.targets.tflite.converter import CONVERTER

__all__ = ["CONVERTER"]
