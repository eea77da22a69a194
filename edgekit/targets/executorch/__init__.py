"""ExecuTorch (.pte) through XNNPACK."""
from edgekit.targets.executorch.converter import CONVERTER

__all__ = ["CONVERTER"]
