"""A file and its record are one thing: check that they still are.

A record names its file, size and sha256, and says which target and precision the file is. Each of
those is checked against the file itself: name, size and hash against the bytes; target against
the suffix *and* the format's own header (flatbuffer identifier, zip layout, protobuf, package
manifest); precision against what the file contains (weight dtypes, quantisation parameters,
quantised ops, palettes). A record that contradicts its file is an error (exit 1), never a reason to
pick a looser tolerance. :func:`self_contradictions` recomputes a record's verdict from its own
stored numbers and tolerance, so a hand-edited status shows up too.
"""
from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import IntegrityError
from .record import ArtifactRecord, Status, sha256_of, size_of

FLOAT = frozenset({"fp32"})
HALF = frozenset({"fp16"})


@dataclass(frozen=True)
class Contents:
    """What a file is, read from the file alone."""

    format: str                       # a target name, or "torchscript" for both TorchScript flavours
    precisions: frozenset[str] | None  # the precisions its contents allow; None: the format cannot say
    evidence: str                     # what in the file says so, for messages

    def allows(self, precision: str) -> bool:
        return self.precisions is None or precision in self.precisions


# ---- reading a file ---------------------------------------------------------------------------

def read_contents(path: Path) -> Contents:
    """Identify ``path``'s format from its bytes (not its name) and what precision it holds."""
    path = Path(path)
    if path.is_dir():
        if (path / "Manifest.json").is_file():
            return _coreml(path)
        raise IntegrityError(f"{path} is a folder but not an ML package (no Manifest.json)")
    with open(path, "rb") as f:
        head = f.read(64)
    if head[4:8] == b"TFL3":
        return _tflite(path)
    if head[4:8] == b"ORTM":
        return _ort(path)
    if head[4:6] == b"ET" and head[6:8].isdigit():
        return _executorch(path)
    if head[:4] == b"PK\x03\x04":
        return _torchscript(path)
    if head[:1] == b"\x08":  # protobuf field 1 (ir_version) as a varint: how every ONNX model starts
        return _onnx(path)
    raise IntegrityError(f"{path.name}: not a file format edgekit exports (header {head[:8]!r})")


def _tflite(path: Path) -> Contents:
    from ai_edge_litert import schema_py_generated as schema

    m = schema.Model.GetRootAsModel(bytearray(path.read_bytes()), 0)
    T = schema.TensorType
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    const_types: dict[int, int] = {}
    int8_act_ops = dequant_int8 = 0
    for g in range(m.SubgraphsLength()):
        sg = m.Subgraphs(g)
        for t in range(sg.TensorsLength()):
            tensor = sg.Tensors(t)
            buf = m.Buffers(tensor.Buffer()) if tensor.Buffer() < m.BuffersLength() else None
            if buf is not None and (buf.DataLength() > 0 or buf.Size() > 0):
                const_types[tensor.Type()] = const_types.get(tensor.Type(), 0) + 1
        for k in range(sg.OperatorsLength()):
            op = sg.Operators(k)
            if op.InputsLength() == 0 or op.Inputs(0) < 0:
                continue
            code = m.OperatorCodes(op.OpcodeIndex())
            name = names.get(max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode())), "?")
            first = sg.Tensors(op.Inputs(0))
            if name == "DEQUANTIZE" and first.Type() == T.INT8:
                dequant_int8 += 1
            elif first.Type() == T.INT8 and name not in ("DEQUANTIZE", "EMBEDDING_LOOKUP"):
                int8_act_ops += 1
    n8, n16 = const_types.get(T.INT8, 0), const_types.get(T.FLOAT16, 0)
    if int8_act_ops:
        return Contents("tflite", frozenset({"int8-static"}), f"{int8_act_ops} ops compute on int8 activations")
    if n8 and dequant_int8:
        return Contents("tflite", frozenset({"int8-weight"}),
                        f"{n8} int8 constant tensors, {dequant_int8} DEQUANTIZE ops (weight-only)")
    if n8:
        return Contents("tflite", frozenset({"int8-dynamic"}),
                        f"{n8} int8 constant tensors used by hybrid kernels (float activations)")
    if n16:
        return Contents("tflite", HALF, f"{n16} float16 constant tensors")
    return Contents("tflite", FLOAT, "float32 weights only")


_ONNX_STATIC_OPS = {"QuantizeLinear", "QLinearMatMul", "QLinearConv", "QLinearAdd"}
_ONNX_DYNAMIC_OPS = {"DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul"}


def _onnx_verdict(fmt: str, ops: set[str], int8_weights: int, fp16_weights: int) -> Contents:
    if ops & _ONNX_DYNAMIC_OPS:
        return Contents(fmt, frozenset({"int8-dynamic"}), ", ".join(sorted(ops & _ONNX_DYNAMIC_OPS)) + " nodes")
    if ops & _ONNX_STATIC_OPS:
        return Contents(fmt, frozenset({"int8-static"}), ", ".join(sorted(ops & _ONNX_STATIC_OPS)) + " nodes")
    if int8_weights:
        return Contents(fmt, frozenset({"int8-weight", "int8-dynamic", "int8-static"}), f"{int8_weights} int8 initializers")
    if fp16_weights:
        return Contents(fmt, HALF, f"{fp16_weights} float16 initializers")
    return Contents(fmt, FLOAT, "float32 initializers only")


def _onnx(path: Path) -> Contents:
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
    return _onnx_verdict("onnx", ops, int8, fp16)


def _ort(path: Path) -> Contents:
    # The ORT flatbuffer stores op types as plain strings; that is enough to tell the precisions apart.
    data = path.read_bytes()
    ops = {op for op in _ONNX_DYNAMIC_OPS | _ONNX_STATIC_OPS if op.encode() in data}
    return _onnx_verdict("ort", ops, 0, 0)


def _torchscript(path: Path) -> Contents:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise IntegrityError(f"{path.name}: a broken zip archive, not a TorchScript file") from None
    with zf:
        names = zf.namelist()
        if not any(n.endswith("/constants.pkl") or n.endswith("/data.pkl") for n in names):
            raise IntegrityError(f"{path.name}: a zip archive but not a TorchScript file")
        lite = any(n.endswith("/bytecode.pkl") for n in names)
        code = b"".join(zf.read(n) for n in names if n.endswith((".py", "bytecode.pkl", "constants.pkl")))
    fmt = "torchscript-lite" if lite else "torchscript"
    if re.search(rb"quantized::linear_dynamic|quantized\.linear_dynamic", code):
        return Contents(fmt, frozenset({"int8-dynamic"}), "quantized::linear_dynamic ops")
    if b"quantized::" in code or b"torch.ops.quantized" in code:
        return Contents(fmt, frozenset({"int8-static", "int8-dynamic"}), "quantized ops")
    return Contents(fmt, FLOAT, "no quantized ops")


def _executorch(path: Path) -> Contents:
    # Quantised weights live inside the XNNPACK delegate, but their per-channel scales are stored
    # as named data ("scale_<sha256>") in the program: present in every int8 .pte, absent in fp32.
    if b"scale_" in path.read_bytes():
        return Contents("executorch", frozenset({"int8-dynamic", "int8-static"}), "int8 weights with per-channel scales")
    return Contents("executorch", FLOAT, "no quantisation scales (float weights)")


def _coreml(path: Path) -> Contents:
    manifest = json.loads((path / "Manifest.json").read_text())
    items = manifest.get("itemInfoEntries", {})
    spec_rel = next((v.get("path") for v in items.values() if v.get("name") == "model.mlmodel"), None)
    if not spec_rel:
        raise IntegrityError(f"{path.name}: an ML package whose manifest names no model.mlmodel")
    from coremltools.proto import Model_pb2

    spec = Model_pb2.Model()
    spec.ParseFromString((path / "Data" / spec_rel).read_bytes())
    if not spec.HasField("mlProgram"):
        return Contents("coreml", None, "a neural-network (not ML Program) Core ML model")
    ops: dict[str, int] = {}
    lut_sizes: set[int] = set()
    blockwise_int4 = 0
    fp16_consts = 0

    def walk(block: Any) -> None:
        nonlocal blockwise_int4, fp16_consts
        for op in block.operations:
            ops[op.type] = ops.get(op.type, 0) + 1
            if op.type == "constexpr_lut_to_dense":
                # The palette (lut) holds 2**bits entries: its size says palettize4/6/8.
                lut = op.attributes.get("lut")
                args = op.inputs["lut"].arguments if "lut" in op.inputs else []
                ttype = lut.type.tensorType if lut is not None else (
                    args[0].value.type.tensorType if args and args[0].HasField("value") else None)
                if ttype is not None:
                    dims = [d.constant.size for d in ttype.dimensions]
                    if dims:
                        lut_sizes.add(dims[-1] if len(dims) == 1 else dims[-2])
            if op.type == "constexpr_blockwise_shift_scale":
                data = op.inputs["data"].arguments[0] if "data" in op.inputs else None
                attr = op.attributes.get("data")
                dt = (data.value.type.tensorType.dataType if data is not None and data.HasField("value")
                      else attr.type.tensorType.dataType if attr is not None else None)
                if dt is not None and _mil_dtype(dt) in ("int4", "uint4"):
                    blockwise_int4 += 1
            if op.type == "const":
                val = op.attributes.get("val")
                if val is not None and _mil_dtype(val.type.tensorType.dataType) == "fp16":
                    fp16_consts += 1
            for b in op.blocks:
                walk(b)

    for fn in spec.mlProgram.functions.values():
        for blk in fn.block_specializations.values():
            walk(blk)
    if ops.get("constexpr_lut_to_dense"):
        bits = {s.bit_length() - 1 for s in lut_sizes if s and s & (s - 1) == 0}
        allowed = frozenset(f"palettize{b}" for b in bits) or frozenset({"palettize8", "palettize6", "palettize4"})
        return Contents("coreml", allowed, f"{ops['constexpr_lut_to_dense']} constexpr_lut_to_dense ops "
                                           f"(palette sizes {sorted(lut_sizes) or '?'})")
    if blockwise_int4:
        return Contents("coreml", frozenset({"int4-weight"}), f"{blockwise_int4} int4 constexpr_blockwise_shift_scale ops")
    if ops.get("constexpr_affine_dequantize") or ops.get("constexpr_blockwise_shift_scale"):
        n = ops.get("constexpr_affine_dequantize", 0) + ops.get("constexpr_blockwise_shift_scale", 0)
        return Contents("coreml", frozenset({"int8-weight"}), f"{n} int8 dequantize constexpr ops")
    if fp16_consts:
        return Contents("coreml", HALF, f"{fp16_consts} float16 constants")
    return Contents("coreml", FLOAT, "float32 constants only")


def _mil_dtype(code: int) -> str:
    from coremltools.proto import MIL_pb2

    name = MIL_pb2.DataType.Name(code)
    return {"FLOAT16": "fp16", "FLOAT32": "fp32", "INT8": "int8", "UINT8": "uint8", "INT4": "int4",
            "UINT4": "uint4"}.get(name, name.lower())


# ---- checking a record against its file ------------------------------------------------------

def _suffix_of(target: str) -> str | None:
    from . import registry

    try:
        return registry.get(target).suffix
    except Exception:  # noqa: BLE001 - an unknown target is reported by the caller's own check
        return None


def _text(value: Any) -> str:
    """An enum member's value (a Precision, a Task), or the string itself."""
    return str(getattr(value, "value", value))


def file_problems(path: Path, record: ArtifactRecord, check_hash: bool = True) -> list[str]:
    """Every way ``record`` disagrees with the file at ``path`` (empty: they are one thing)."""
    path = Path(path)
    out: list[str] = []
    if record.status == Status.EXPORT_FAILED:
        if path.exists():
            out.append(f"the record says export failed but {path.name} exists")
        return out
    if not path.exists():
        return [f"{path.name} is missing (its record says {record.status})"]
    if record.artifact != path.name:
        out.append(f"the record describes {record.artifact!r}, not {path.name!r}")
    size = size_of(path)
    if record.size_bytes != size:
        out.append(f"size: record {record.size_bytes} bytes, file {size} bytes")
    if check_hash:
        sha = sha256_of(path)
        if record.sha256 != sha:
            out.append(f"sha256: record {str(record.sha256)[:12]}…, file {sha[:12]}…")
    suffix = _suffix_of(record.target)
    if suffix and not path.name.endswith(suffix):
        out.append(f"the record says {record.target} ({suffix}) but the file is named {path.name}")
    try:
        c = read_contents(path)
    except IntegrityError as e:
        return out + [str(e)]
    precision = _text(record.precision)
    family = "torchscript" if record.target in ("torchscript", "torchscript-lite") else record.target
    c_family = "torchscript" if c.format in ("torchscript", "torchscript-lite") else c.format
    if c_family != family:
        out.append(f"the record says {record.target} but the file is {c.format} ({c.evidence})")
    elif not c.allows(precision):
        out.append(f"the record says {precision} but the file holds "
                   f"{'/'.join(sorted(c.precisions or ()))} ({c.evidence})")
    return out


def self_contradictions(record: ArtifactRecord) -> list[str]:
    """Where a record's status disagrees with its own stored numbers and tolerance."""
    out: list[str] = []
    tol = record.tolerance or {}
    parity = record.parity or {}
    if not isinstance(parity, dict):  # a typed ParityReport
        parity = parity.to_dict()
    breaks = []
    for o in parity.get("outputs") or []:
        if tol.get("max_abs") is not None and not o.get("max_abs", float("inf")) <= tol["max_abs"]:
            breaks.append(f"{o.get('name')} max_abs {o.get('max_abs'):.3g} > {tol['max_abs']:.3g}")
        if tol.get("min_cosine") is not None and not o.get("cosine", float("-inf")) >= tol["min_cosine"]:
            breaks.append(f"{o.get('name')} cosine {o.get('cosine'):.6f} < {tol['min_cosine']}")
        if tol.get("min_psnr") is not None and not o.get("psnr", float("-inf")) >= tol["min_psnr"]:
            breaks.append(f"{o.get('name')} PSNR {o.get('psnr'):.1f} < {tol['min_psnr']}")
    agreement = parity.get("agreement")
    if tol.get("min_agreement") is not None and agreement is not None and not agreement >= tol["min_agreement"]:
        breaks.append(f"agreement {agreement:.1%} < {tol['min_agreement']:.0%}")
    if record.status == Status.VALIDATED:
        if not parity.get("outputs"):
            out.append("status validated but the record holds no parity numbers")
        elif parity.get("passed") is False:
            out.append("status validated but its parity report says failed")
        out += [f"status validated but {b}" for b in breaks]
    if record.status != Status.EXPORT_FAILED and not record.sha256:
        out.append("the record has no sha256")
    return out


def problems(path: Path, record: ArtifactRecord, check_hash: bool = True) -> list[str]:
    """File and self contradictions together."""
    return file_problems(path, record, check_hash) + self_contradictions(record)


def check(path: Path, record: ArtifactRecord, what: str = "") -> None:
    """Raise :class:`IntegrityError` (exit 1) listing every contradiction between ``record`` and ``path``."""
    found = problems(path, record)
    if found:
        sidecar = ArtifactRecord.sidecar_path(Path(path)).name
        lead = f"{Path(path).name} and its record {sidecar} disagree"
        raise IntegrityError(lead + (f" ({what})" if what else "") + ":\n  - " + "\n  - ".join(found)
                             + "\nRe-export it, or if the file was changed on purpose: edgekit validate "
                               f"{path} --rebind")
