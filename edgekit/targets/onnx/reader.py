"""What an .onnx file is, read from its protobuf (the integrity check's ONNX reader)."""
from __future__ import annotations

from pathlib import Path

from edgekit.core.errors import IntegrityError
from edgekit.core.target import FLOAT, HALF, Contents



def claims(path: Path, head: bytes) -> bool:
    """Protobuf field 1 (ir_version) as a varint: how every ONNX model starts."""
    return head[:1] == b"\x08"


STATIC_OPS = {"QuantizeLinear", "QLinearMatMul", "QLinearConv", "QLinearAdd"}
DYNAMIC_OPS = {"DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul"}


def verdict(fmt: str, ops: set[str], int8_weights: int, fp16_weights: int,
            float_weight_matmuls: int | None = None) -> Contents:
    """What the ops and initializers say the file is. ``float_weight_matmuls``: MatMuls that still
    multiply by a float weight (int8-dynamic keeps the FFN down-projections so, int8-dynamic-full
    none); ``None`` when the reader cannot count them (the .ort flatbuffer): either dynamic precision."""
    if ops & DYNAMIC_OPS:
        what = ", ".join(sorted(ops & DYNAMIC_OPS)) + " nodes"
        if float_weight_matmuls is None:
            return Contents(fmt, frozenset({"int8-dynamic", "int8-dynamic-full"}), what)
        if float_weight_matmuls:
            return Contents(fmt, frozenset({"int8-dynamic"}), f"{what}; {float_weight_matmuls} float-weight MatMul(s)")
        return Contents(fmt, frozenset({"int8-dynamic-full"}), f"{what}; no float-weight MatMul")
    if ops & STATIC_OPS:
        return Contents(fmt, frozenset({"int8-static"}), ", ".join(sorted(ops & STATIC_OPS)) + " nodes")
    if int8_weights:
        return Contents(fmt, frozenset({"int8-weight", "int8-dynamic", "int8-static"}), f"{int8_weights} int8 initializers")
    if fp16_weights:
        return Contents(fmt, HALF, f"{fp16_weights} float16 initializers")
    return Contents(fmt, FLOAT, "float32 initializers only")


def inspect(path: Path) -> Contents:
    import onnx
    from onnx import TensorProto

    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - any parse failure means "not ONNX"
        raise IntegrityError(f"{path.name}: not a readable ONNX model ({type(e).__name__})") from None
    if not model.graph.node:
        raise IntegrityError(f"{path.name}: not an ONNX model (no graph)")
    ops = {n.op_type for n in model.graph.node}
    dtypes = [i.data_type for i in model.graph.initializer]
    int8 = sum(d in (TensorProto.INT8, TensorProto.UINT8) for d in dtypes)
    fp16 = sum(d == TensorProto.FLOAT16 for d in dtypes)
    floats = {i.name for i in model.graph.initializer if i.data_type == TensorProto.FLOAT and len(i.dims) == 2}
    float_matmuls = sum(n.op_type == "MatMul" and any(x in floats for x in n.input) for n in model.graph.node)
    return verdict("onnx", ops, int8, fp16, float_matmuls)
