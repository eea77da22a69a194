"""What an .mlpackage is, read from its spec (the integrity check's Core ML reader)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgekit.core.errors import IntegrityError
from edgekit.core.target import FLOAT, HALF, Contents


def root_spec(package: Path) -> Path:
    """The package's root model spec, found as a device finds it: ``Manifest.json``'s
    ``rootModelIdentifier`` names the item whose path holds the spec (the one reader of the layout)."""
    manifest = Path(package) / "Manifest.json"
    if not manifest.is_file():
        raise IntegrityError(f"{Path(package).name} is not an .mlpackage (no Manifest.json)")
    try:
        info = json.loads(manifest.read_text())
    except (ValueError, UnicodeDecodeError):
        raise IntegrityError(f"{manifest} is not valid JSON") from None
    root = info.get("rootModelIdentifier")
    entry = info.get("itemInfoEntries", {}).get(root) if isinstance(info, dict) else None
    if not entry or not entry.get("path"):
        raise IntegrityError(f"{Path(package).name}: its manifest names no root model")
    return Path(package) / "Data" / entry["path"]


def claims(path: Path, head: bytes) -> bool:
    """An ML package is a folder with a Manifest.json."""
    return Path(path).is_dir() and (Path(path) / "Manifest.json").is_file()


def inspect(path: Path) -> Contents:
    spec_path = root_spec(path)
    if not spec_path.is_file():
        raise IntegrityError(f"{path.name}: its root model spec {spec_path.name} is missing")
    from coremltools.proto import Model_pb2

    spec = Model_pb2.Model()
    try:
        spec.ParseFromString(spec_path.read_bytes())
    except Exception as e:  # noqa: BLE001 - any parse failure means "not a Core ML spec"
        raise IntegrityError(f"{path.name}: its model spec is not readable ({type(e).__name__})") from None
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
