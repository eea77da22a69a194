"""The one reader of a .tflite flatbuffer: which operators a file uses, what they compute on, and
what its constant tensors are. ``op_report`` (the converter's checks) and ``inspect`` (the integrity
reader) both come from the single walk here."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Walk:
    """What one pass over the flatbuffer saw."""

    ops: set[str] = field(default_factory=set)        # builtin operator names
    flex: set[str] = field(default_factory=set)       # SELECT_TF_OPS kernels (Flex* custom codes)
    custom: set[str] = field(default_factory=set)     # any other custom op
    # ops whose first input is an int8 tensor, by name (DEQUANTIZE and EMBEDDING_LOOKUP among them:
    # they read int8 constants; every other one computes on int8 activations)
    int8_input_ops: dict[str, int] = field(default_factory=dict)
    # what each FULLY_CONNECTED multiplies by: int8 weights per tensor / per channel (a hybrid or
    # int8 kernel), or float (fp32, or int8 dequantised before it)
    fc_weights: dict[str, int] = field(default_factory=lambda: {"int8 per-tensor": 0, "int8 per-channel": 0,
                                                                 "float": 0})
    const_types: dict[str, int] = field(default_factory=dict)  # constant tensors by type name


def walk(model_content: bytes) -> Walk:
    """Read ``model_content`` (a .tflite file's bytes) once."""
    from ai_edge_litert import schema_py_generated as schema

    m = schema.Model.GetRootAsModel(bytearray(model_content), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    INT8 = schema.TensorType.INT8
    w = Walk()
    for i in range(m.OperatorCodesLength()):
        code = m.OperatorCodes(i)
        # Codes < 127 live in the deprecated int8 field; newer ones only in the int32 field.
        op = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        if op == schema.BuiltinOperator.CUSTOM:
            name = (code.CustomCode() or b"").decode("utf-8", "replace")
            (w.flex if name.startswith("Flex") else w.custom).add(name)
        else:
            w.ops.add(names.get(op, f"BUILTIN_{op}"))
    for g in range(m.SubgraphsLength()):
        sg = m.Subgraphs(g)
        for t in range(sg.TensorsLength()):
            tensor = sg.Tensors(t)
            buf = m.Buffers(tensor.Buffer()) if tensor.Buffer() < m.BuffersLength() else None
            if buf is not None and (buf.DataLength() > 0 or buf.Size() > 0):
                tn = type_names.get(tensor.Type(), str(tensor.Type()))
                w.const_types[tn] = w.const_types.get(tn, 0) + 1
        for k in range(sg.OperatorsLength()):
            op = sg.Operators(k)
            if op.InputsLength() == 0 or op.Inputs(0) < 0:
                continue
            code = m.OperatorCodes(op.OpcodeIndex())
            name = names.get(max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode())), "?")
            first = sg.Tensors(op.Inputs(0))
            if first.Type() == INT8:
                w.int8_input_ops[name] = w.int8_input_ops.get(name, 0) + 1
            if name == "FULLY_CONNECTED" and op.InputsLength() > 1 and op.Inputs(1) >= 0:
                wt = sg.Tensors(op.Inputs(1))
                q = wt.Quantization()
                kind = "float" if wt.Type() != INT8 else (
                    "int8 per-channel" if q is not None and q.ScaleLength() > 1 else "int8 per-tensor")
                w.fc_weights[kind] += 1
    return w


def op_report(model_content: bytes) -> dict[str, Any]:
    """Operators a .tflite file uses, read from its flatbuffer operator codes.

    ``ops``: builtin names; ``flex``: SELECT_TF_OPS kernels (``Flex*`` custom codes); ``custom``:
    any other custom op. Both of the latter need runtimes a stock Android app does not ship.
    ``int8_activation_ops``: ops whose first input is int8, by name; ``fc_weights``: what each
    FULLY_CONNECTED multiplies by.
    """
    w = walk(model_content)
    return {"ops": sorted(w.ops), "flex": sorted(w.flex), "custom": sorted(w.custom),
            "int8_activation_ops": dict(w.int8_input_ops), "fc_weights": dict(w.fc_weights)}
