"""What a .pte file is (the integrity check's ExecuTorch reader)."""
from __future__ import annotations

from pathlib import Path

from edgekit.core.target import FLOAT, Contents


def claims(path: Path, head: bytes) -> bool:
    """ExecuTorch's flatbuffer identifier ``ET`` + two digits at bytes 4..8."""
    return head[4:6] == b"ET" and head[6:8].isdigit()


def inspect(path: Path) -> Contents:
    # Quantised weights live inside the XNNPACK delegate, but their per-channel scales are stored
    # as named data ("scale_<sha256>") in the program: present in every int8 .pte, absent in fp32.
    if b"scale_" in path.read_bytes():
        return Contents("executorch", frozenset({"int8-dynamic", "int8-static"}), "int8 weights with per-channel scales")
    return Contents("executorch", FLOAT, "no quantisation scales (float weights)")
