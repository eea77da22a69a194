"""TorchScript for the PyTorch Lite interpreter (.ptl)."""
from edgekit.targets.torchscript_lite.converter import CONVERTER

__all__ = ["CONVERTER"]
