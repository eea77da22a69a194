"""Evaluate a loaded ML Program op by op in numpy."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.core.errors import UnsupportedOpError
from edgekit.targets.coreml.mil.errors import ProgramError
from edgekit.targets.coreml.mil.ops import OPS, Args
from edgekit.targets.coreml.mil.program import NUMPY_DTYPES, Operation, Package, TensorType, load_package

_FLOATS = ("fp16", "fp32", "fp64")


def _to_compute(v: Any) -> Any:
    """Inputs reach the ops as float32 when they are fp16: exact, and numpy's fp16 math is slow."""
    if isinstance(v, np.ndarray) and v.dtype == np.float16:
        return v.astype(np.float32)
    if isinstance(v, np.float16):
        return np.float32(v)
    return v


def _to_declared(value: Any, ttype: TensorType | None, op: Operation) -> Any:
    """Round an op's result to the dtype the program declares, and check rank and static dims."""
    if ttype is None or ttype.dtype == "string":
        return value
    dtype = NUMPY_DTYPES.get(ttype.dtype)
    if dtype is None:
        raise UnsupportedOpError(f"op {op.name!r} ({op.type}) produces unsupported dtype {ttype.dtype}")
    arr = np.asarray(value)
    if arr.dtype != dtype:
        arr = arr.astype(dtype)
    if arr.ndim != len(ttype.shape) or any(d is not None and d != s for d, s in zip(ttype.shape, arr.shape)):
        raise ProgramError(
            f"interpreter bug or invalid program: op {op.name!r} ({op.type}) produced shape {arr.shape}, "
            f"the program declares {ttype}")
    return arr


class Interpreter:
    """A loaded ``.mlpackage`` that runs on any host.

    ``Interpreter(path).run({"input_ids": ..., "attention_mask": ...})`` returns the program's
    outputs by name. Constant sub-graphs (weights and the constexpr decompression ops) are
    evaluated once at load time, so repeated runs only pay for the activations.
    """

    def __init__(self, path: Path | str, function: str = "main", ane_like: bool = False) -> None:
        """``ane_like``: fp16 ops accumulate matmul/linear in fp16 and take LayerNorm statistics
        in fp16, an approximation of the Neural Engine that is pessimistic against CPU/GPU."""
        self.ane_like = ane_like
        self.package: Package = load_package(path, function)
        fn = self.package.function
        missing = sorted({o.type for o in fn.operations if o.type not in OPS})
        if missing:
            raise UnsupportedOpError(
                f"the Core ML reference interpreter does not implement op(s) {', '.join(missing)} "
                f"used by {Path(path).name}; the file was not validated")
        if any(o.blocks for o in fn.operations):
            nested = sorted({o.type for o in fn.operations if o.blocks})
            raise UnsupportedOpError(f"control-flow op(s) {', '.join(nested)} with nested blocks are not supported")
        self.input_types = dict(fn.inputs)
        self.input_names = tuple(n for n, _ in fn.inputs)
        self.output_names = tuple(fn.outputs)
        self.opset = fn.opset
        self.consts: dict[str, Any] = {}
        self.ops: list[Operation] = []
        self.op_counts: dict[str, int] = {}
        for o in fn.operations:
            self.op_counts[o.type] = self.op_counts.get(o.type, 0) + 1
            if self._is_constant(o):
                for (name, _), value in zip(o.outputs, self._eval(o, self.consts)):
                    self.consts[name] = value
            else:
                self.ops.append(o)

    def _is_constant(self, o: Operation) -> bool:
        if o.type == "const" or o.type.startswith("constexpr_"):
            return True
        return all(kind == "value" or ref in self.consts for b in o.inputs.values() for kind, ref in b)

    def _eval(self, o: Operation, env: Mapping[str, Any]) -> list[Any]:
        values: dict[str, list[Any]] = {}
        for arg, bindings in o.inputs.items():
            resolved = []
            for kind, ref in bindings:
                if kind == "value":
                    resolved.append(_to_compute(ref))
                elif ref in env:
                    resolved.append(_to_compute(env[ref]))
                else:
                    raise ProgramError(f"op {o.name!r} ({o.type}) reads {ref!r}, which nothing produced")
            values[arg] = resolved
        args = Args(o.type, o.name, values, [t.dtype if t else None for _, t in o.outputs])
        args.ane_like = self.ane_like
        try:
            result = OPS[o.type](args)
        except (UnsupportedOpError, ProgramError):
            raise
        except Exception as e:
            raise ProgramError(f"op {o.name!r} ({o.type}) failed: {type(e).__name__}: {e}") from e
        unknown = args.unknown()
        if unknown:
            # coremltools' own loader rejects an op with an input its definition lacks; ignoring
            # it could hide a program that computes something else.
            raise ProgramError(f"{o.type} op {o.name!r} has input(s) {', '.join(map(repr, unknown))} that "
                               f"{o.type} does not take")
        results = list(result) if isinstance(result, tuple) else [result]
        if len(results) != len(o.outputs):
            raise ProgramError(f"op {o.name!r} ({o.type}) gave {len(results)} outputs, expected {len(o.outputs)}")
        return [_to_declared(r, t, o) for r, (_, t) in zip(results, o.outputs)]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Evaluate the program on ``feeds`` (by the program's input names)."""
        env: dict[str, Any] = dict(self.consts)
        for name, ttype in self.input_types.items():
            if name not in feeds:
                raise ProgramError(f"missing input {name!r}; the program takes {list(self.input_names)}")
            arr = np.asarray(feeds[name])
            if ttype is not None:
                arr = arr.astype(NUMPY_DTYPES[ttype.dtype])
                if arr.ndim != len(ttype.shape) or any(d is not None and d != s for d, s in zip(ttype.shape, arr.shape)):
                    raise ProgramError(f"input {name!r} has shape {arr.shape}; the program takes {ttype}")
            env[name] = arr
        for o in self.ops:
            for (name, _), value in zip(o.outputs, self._eval(o, env)):
                env[name] = value
        return {n: env[n] for n in self.output_names}
