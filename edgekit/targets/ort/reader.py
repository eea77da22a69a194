"""What an .ort file is (the integrity check's ORT reader)."""
from __future__ import annotations

from pathlib import Path

from edgekit.core.target import Contents
from edgekit.targets.onnx.reader import DYNAMIC_OPS, STATIC_OPS, verdict



def claims(path: Path, head: bytes) -> bool:
    """ORT's flatbuffer identifier ``ORTM`` at bytes 4..8."""
    return head[4:8] == b"ORTM"


def inspect(path: Path) -> Contents:
    # The ORT flatbuffer stores op types as plain strings; that is enough to tell the precisions apart.
    data = path.read_bytes()
    ops = {op for op in DYNAMIC_OPS | STATIC_OPS if op.encode() in data}
    return verdict("ort", ops, 0, 0)
