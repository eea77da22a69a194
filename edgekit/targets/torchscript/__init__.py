"""TorchScript (.pt)."""
from edgekit.targets.torchscript.converter import CONVERTER

__all__ = ["CONVERTER"]
