"""What a .tflite file is, read from its bytes (the integrity check's TFLite reader)."""
from __future__ import annotations

from pathlib import Path

from edgekit.core.target import FLOAT, HALF, Contents



def claims(path: Path, head: bytes) -> bool:
    """A TFLite flatbuffer carries the file identifier ``TFL3`` at bytes 4..8."""
    return head[4:8] == b"TFL3"


def inspect(path: Path) -> Contents:
    """Format and precision from the flatbuffer alone (one walk: ``flatbuffer.walk``)."""
    from edgekit.targets.tflite.flatbuffer import walk

    w = walk(Path(path).read_bytes())
    act = sum(n for op, n in w.int8_input_ops.items() if op not in ("DEQUANTIZE", "EMBEDDING_LOOKUP"))
    dequant = w.int8_input_ops.get("DEQUANTIZE", 0)
    hybrid_fc = w.fc_weights["int8 per-tensor"] + w.fc_weights["int8 per-channel"]
    n8, n16 = w.const_types.get("INT8", 0), w.const_types.get("FLOAT16", 0)
    if act:
        return Contents("tflite", frozenset({"int8-static"}), f"{act} ops compute on int8 activations")
    if hybrid_fc:
        # Hybrid kernels (int8 weights, float activations quantised on the fly). A file may also
        # dequantise some int8 weights to float (int8-dynamic with Task Library metadata keeps the
        # FFN down-projection that way): the hybrid FCs are what make it int8-dynamic.
        extra = f", {dequant} DEQUANTIZE ops" if dequant else ""
        return Contents("tflite", frozenset({"int8-dynamic"}),
                        f"{hybrid_fc} FULLY_CONNECTED ops with int8 weights on float activations{extra}")
    if n8 and dequant:
        return Contents("tflite", frozenset({"int8-weight"}),
                        f"{n8} int8 constant tensors, {dequant} DEQUANTIZE ops (weight-only)")
    if n8:
        return Contents("tflite", frozenset({"int8-dynamic"}),
                        f"{n8} int8 constant tensors used by hybrid kernels (float activations)")
    if n16:
        return Contents("tflite", HALF, f"{n16} float16 constant tensors")
    return Contents("tflite", FLOAT, "float32 weights only")
