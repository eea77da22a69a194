"""Load a saved ``.mlpackage`` (ML Program) into a form the numpy interpreter can run.

The package is read exactly as a device would get it: ``Manifest.json`` names the model spec,
the spec's ``mlProgram`` holds the MIL functions, and ``@model_path/weights/...`` blob references
are resolved against the package's data folder. Nothing is taken from coremltools' in-memory
objects, so a serialisation bug shows up here the way it would on a phone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.core.errors import UnsupportedOpError
from edgekit.targets.coreml.mil.blob import SUB_BYTE_BITS, BlobFile, unpack_bits
from edgekit.targets.coreml.mil.errors import ProgramError

# MIL DataType enum names -> our short dtype names.
_DTYPES = {
    "BOOL": "bool", "STRING": "string", "FLOAT16": "fp16", "FLOAT32": "fp32", "FLOAT64": "fp64",
    "BFLOAT16": "bf16", "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "INT4": "int4", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "UINT4": "uint4", "UINT2": "uint2", "UINT1": "uint1", "UINT6": "uint6", "UINT3": "uint3",
}
NUMPY_DTYPES: dict[str, Any] = {
    "bool": np.bool_, "fp16": np.float16, "fp32": np.float32, "fp64": np.float64, "int8": np.int8,
    "int16": np.int16, "int32": np.int32, "int64": np.int64, "uint8": np.uint8, "uint16": np.uint16,
    "uint32": np.uint32, "uint64": np.uint64,
    # Sub-byte integers are unpacked into the smallest numpy integer that holds them.
    "int4": np.int8, "uint1": np.uint8, "uint2": np.uint8, "uint3": np.uint8, "uint4": np.uint8, "uint6": np.uint8,
}


@dataclass(frozen=True)
class TensorType:
    """A MIL tensor type: dtype name and shape (None marks a dimension only known at run time)."""

    dtype: str
    shape: tuple[int | None, ...]

    def __str__(self) -> str:
        return f"{self.dtype}[{', '.join('?' if d is None else str(d) for d in self.shape)}]"


@dataclass
class Operation:
    """One MIL op: its type, input bindings (names or constants) and typed outputs."""

    type: str
    name: str
    inputs: dict[str, list[tuple[str, Any]]]  # arg -> [("name", var) | ("value", ndarray)]
    outputs: list[tuple[str, TensorType | None]]
    blocks: list[Any] = field(default_factory=list)


@dataclass
class Function:
    name: str
    opset: str
    inputs: list[tuple[str, TensorType]]
    outputs: list[str]
    operations: list[Operation]


@dataclass
class Package:
    """An ML Program read from disk: its main function plus the model description."""

    path: Path
    spec_version: int
    function: Function
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    metadata: dict[str, str]
    description: dict[str, Any]


def _dtype_name(enum_value: int) -> str:
    from coremltools.proto import MIL_pb2

    return _DTYPES.get(MIL_pb2.DataType.Name(enum_value), MIL_pb2.DataType.Name(enum_value).lower())


def _tensor_type(value_type: Any) -> TensorType | None:
    kind = value_type.WhichOneof("type")
    if kind != "tensorType":
        return None
    tt = value_type.tensorType
    shape = tuple(d.constant.size if d.WhichOneof("dimension") == "constant" else None for d in tt.dimensions)
    return TensorType(_dtype_name(tt.dataType), shape)


class _ValueReader:
    """Turns MIL ``Value`` protos (immediate or blob-file) into numpy arrays / strings."""

    def __init__(self, weights_dir: Path) -> None:
        self.weights_dir = weights_dir
        self.files: dict[str, BlobFile] = {}

    def blob(self, file_name: str) -> BlobFile:
        if file_name not in self.files:
            rel = file_name.removeprefix("@model_path/")
            self.files[file_name] = BlobFile(self.weights_dir / rel)
        return self.files[file_name]

    def read(self, value: Any) -> Any:
        ttype = _tensor_type(value.type)
        kind = value.WhichOneof("value")
        if ttype is None:
            raise UnsupportedOpError(f"non-tensor constant of type {value.type.WhichOneof('type')} is not supported")
        if any(d is None for d in ttype.shape):
            raise ProgramError(f"a constant has a dynamic shape {ttype}")
        shape = tuple(int(d) for d in ttype.shape)
        if kind == "blobFileValue":
            bfv = value.blobFileValue
            return self.blob(bfv.fileName).read(bfv.offset, ttype.dtype, shape)
        tensor = value.immediateValue.tensor
        field_name = tensor.WhichOneof("value")
        if ttype.dtype == "string":
            vals = list(tensor.strings.values)
            return vals[0] if shape == () else np.array(vals, dtype=object).reshape(shape)
        if field_name == "bytes":
            raw = np.frombuffer(tensor.bytes.values, dtype=np.uint8)
            if ttype.dtype in SUB_BYTE_BITS:
                count = int(np.prod(shape, dtype=np.int64))
                return unpack_bits(raw, SUB_BYTE_BITS[ttype.dtype], count, ttype.dtype.startswith("int")).reshape(shape)
            return raw.view(NUMPY_DTYPES[ttype.dtype]).reshape(shape).copy()
        if field_name is None:  # an empty tensor
            return np.zeros(shape, dtype=NUMPY_DTYPES.get(ttype.dtype, np.float32))
        vals = getattr(tensor, field_name).values
        return np.array(vals, dtype=NUMPY_DTYPES[ttype.dtype]).reshape(shape)


def _read_block(block: Any, reader: _ValueReader) -> tuple[list[Operation], list[str]]:
    ops = []
    for op in block.operations:
        inputs: dict[str, list[tuple[str, Any]]] = {}
        for arg_name, arg in op.inputs.items():
            bindings = []
            for b in arg.arguments:
                if b.WhichOneof("binding") == "name":
                    bindings.append(("name", b.name))
                else:
                    bindings.append(("value", reader.read(b.value)))
            inputs[arg_name] = bindings
        # iOS16 constexpr ops and ``const`` keep their parameters as attributes: treat them as inputs.
        name = op.outputs[0].name if op.outputs else op.type
        for attr_name, value in op.attributes.items():
            if attr_name == "name":
                name = reader.read(value)
                continue
            inputs.setdefault(attr_name, [("value", reader.read(value))])
        outputs = [(o.name, _tensor_type(o.type)) for o in op.outputs]
        blocks = [_read_block(b, reader) for b in op.blocks]
        ops.append(Operation(op.type, str(name), inputs, outputs, blocks))
    return ops, list(block.outputs)


def _manifest_model_path(package: Path) -> Path:
    from edgekit.core.errors import IntegrityError
    from edgekit.targets.coreml.reader import root_spec

    try:
        return root_spec(package)
    except IntegrityError as e:
        raise ProgramError(str(e)) from None


def load_package(path: Path | str, function: str = "main") -> Package:
    """Read an ``.mlpackage`` (or a bare ``.mlmodel`` spec next to its ``weights/`` folder)."""
    from coremltools.proto import Model_pb2

    path = Path(path)
    spec_path = _manifest_model_path(path) if path.is_dir() else path
    if not spec_path.is_file():
        raise ProgramError(f"model spec {spec_path} is missing")
    spec = Model_pb2.Model()
    spec.ParseFromString(spec_path.read_bytes())
    if spec.WhichOneof("Type") != "mlProgram":
        raise UnsupportedOpError(f"{path} is a {spec.WhichOneof('Type')} model; the interpreter runs ML Programs only")
    prog = spec.mlProgram
    if function not in prog.functions:
        raise ProgramError(f"{path} has no function {function!r} (has {sorted(prog.functions)})")
    fn = prog.functions[function]
    reader = _ValueReader(spec_path.parent)
    if fn.opset not in fn.block_specializations:
        raise ProgramError(f"function {function!r} has no block for its opset {fn.opset}")
    ops, outs = _read_block(fn.block_specializations[fn.opset], reader)
    inputs = [(i.name, _tensor_type(i.type)) for i in fn.inputs]
    desc = spec.description
    meta = desc.metadata
    return Package(
        path=path,
        spec_version=spec.specificationVersion,
        function=Function(function, fn.opset, inputs, outs, ops),
        input_names=tuple(i.name for i in desc.input),
        output_names=tuple(o.name for o in desc.output),
        metadata=dict(meta.userDefined),
        description={"short": meta.shortDescription, "author": meta.author, "license": meta.license,
                     "version": meta.versionString},
    )
