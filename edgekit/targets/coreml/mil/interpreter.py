"""Evaluate a loaded ML Program op by op in numpy."""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.core.errors import UnsupportedOpError
from edgekit.targets.coreml.mil.errors import ProgramError
from edgekit.targets.coreml.mil.ops import OPS, Args, OpFn, round_fp16
from edgekit.targets.coreml.mil.program import (
    NUMPY_DTYPES,
    Operation,
    Package,
    TensorType,
    load_package,
)

_FLOATS = ("fp16", "fp32", "fp64")

#: Ops whose output values are input values (moved, selected or compared, never computed): on
#: fp16 inputs their fp16 output needs no rounding.
_FP16_EXACT = frozenset({
    "reshape", "transpose", "expand_dims", "squeeze", "slice_by_index", "slice_by_size", "gather", "concat",
    "split", "tile", "identity", "select", "relu", "maximum", "minimum", "abs", "reduce_max", "reduce_min", "clip",
})


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
    _check_shape(arr.shape, ttype, op)
    return arr


def _check_shape(shape: tuple[int, ...], ttype: TensorType, op: Operation) -> None:
    if len(shape) != len(ttype.shape) or any(d is not None and d != s for d, s in zip(ttype.shape, shape)):
        raise ProgramError(
            f"interpreter bug or invalid program: op {op.name!r} ({op.type}) produced shape {shape}, "
            f"the program declares {ttype}")


@dataclass
class _Step:
    """One non-constant op, prepared once per file: its bindings (constants already in compute
    form), which outputs skip the fp16 rounding, and which values die after it."""

    op: Operation
    fn: OpFn
    inputs: list[tuple[str, list[tuple[bool, Any]]]]   # arg -> [(is a name, name or value)]
    out_dtypes: list[str | None]
    exact: bool                                        # fp16 outputs of fp16 inputs, moved not computed
    free: tuple[str, ...] = ()                         # values no later op reads


class Interpreter:
    """A loaded ``.mlpackage`` that runs on any host.

    ``Interpreter(path).run({"input_ids": ..., "attention_mask": ...})`` returns the program's
    outputs by name. Constant sub-graphs (weights and the constexpr decompression ops) are
    evaluated once at load time and kept in the form the ops compute with (fp16 weights as
    float32), so repeated runs only pay for the activations; a value is dropped as soon as no
    later op reads it.

    Numerics: every fp16 tensor is held as float32 values rounded to fp16 (the ops compute in
    float32; each fp16 result is rounded once, as the program's types say); outputs come back in
    the dtype the program declares.
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
        # Weights in the form the ops use (fp16 -> float32), converted once per file, not per run.
        self._env0: dict[str, Any] = {n: _to_compute(v) for n, v in self.consts.items()}
        self._steps = self._prepare()

    def with_numerics(self, ane_like: bool) -> Interpreter:
        """The same loaded program (weights shared, not decoded again) with other numerics."""
        twin = copy.copy(self)
        twin.ane_like = ane_like
        return twin

    def _is_constant(self, o: Operation) -> bool:
        if o.type == "const" or o.type.startswith("constexpr_"):
            return True
        return all(kind == "value" or ref in self.consts for b in o.inputs.values() for kind, ref in b)

    def _eval(self, o: Operation, env: Mapping[str, Any]) -> list[Any]:
        """Evaluate one op on values in their declared dtypes (constant folding at load)."""
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
        results = self._call(o, OPS[o.type], values, [t.dtype if t else None for _, t in o.outputs])
        return [_to_declared(r, t, o) for r, (_, t) in zip(results, o.outputs)]

    def _call(self, o: Operation, fn: OpFn, values: dict[str, list[Any]], out_dtypes: list[str | None]) -> list[Any]:
        """Run the op's implementation on resolved (compute-form) inputs; its raw results."""
        args = Args(o.type, o.name, values, out_dtypes)
        args.ane_like = self.ane_like
        try:
            result = fn(args)
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
        return results

    # ---- preparation (once per file) --------------------------------------------------------

    def _prepare(self) -> list[_Step]:
        declared: dict[str, str | None] = {n: (t.dtype if t else None) for n, t in self.input_types.items()}
        for n, v in self.consts.items():
            declared[n] = _dtype_name(v)
        steps: list[_Step] = []
        last_use: dict[str, int] = {}
        for i, o in enumerate(self.ops):
            inputs = []
            float_in = []
            for arg, bindings in o.inputs.items():
                prepared = []
                for kind, ref in bindings:
                    if kind == "value":
                        prepared.append((False, _to_compute(ref)))
                        float_in.append(_dtype_name(ref))
                    else:
                        prepared.append((True, ref))
                        float_in.append(declared.get(ref))
                        if ref not in self.consts:
                            last_use[ref] = i
                inputs.append((arg, prepared))
            out_dtypes = [t.dtype if t else None for _, t in o.outputs]
            for (name, _), dt in zip(o.outputs, out_dtypes):
                declared[name] = dt
            exact = o.type in _FP16_EXACT and all(d not in ("fp32", "fp64") for d in float_in) \
                and all(d == "fp16" for d in out_dtypes if d in _FLOATS)
            steps.append(_Step(o, OPS[o.type], inputs, out_dtypes, exact))
        self._out_fp16 = frozenset(n for n in self.output_names if declared.get(n) == "fp16")
        keep = set(self.output_names)
        dying: dict[int, list[str]] = {}
        for name, i in last_use.items():
            if name not in keep:
                dying.setdefault(i, []).append(name)
        for i, names in dying.items():
            steps[i].free = tuple(names)
        return steps

    # ---- running ---------------------------------------------------------------------------

    def _feed(self, name: str, value: Any) -> np.ndarray:
        ttype = self.input_types[name]
        arr = np.asarray(value)
        if ttype is not None:
            arr = _to_compute(arr.astype(NUMPY_DTYPES[ttype.dtype], order="C"))
            if arr.ndim != len(ttype.shape) or any(d is not None and d != s for d, s in zip(ttype.shape, arr.shape)):
                raise ProgramError(f"input {name!r} has shape {arr.shape}; the program takes {ttype}")
        return arr

    def _store(self, step: _Step, results: list[Any]) -> list[Any]:
        """Results in compute form (fp16 as rounded float32), checked against the declared types."""
        out = []
        for r, (_, ttype), dt in zip(results, step.op.outputs, step.out_dtypes):
            if ttype is None or dt == "string":
                out.append(r)
                continue
            dtype = NUMPY_DTYPES.get(dt)
            if dtype is None:
                raise UnsupportedOpError(f"op {step.op.name!r} ({step.op.type}) produces unsupported dtype {dt}")
            arr = np.asarray(r)
            if dt == "fp16":
                if arr.dtype != np.float32:  # e.g. float64 from a fill: one rounding, straight to fp16
                    arr = arr.astype(np.float16).astype(np.float32)
                elif not step.exact:
                    arr = round_fp16(arr)
            elif arr.dtype != dtype:
                arr = arr.astype(dtype)
            # Every value in C order: views (a transpose) would send numpy's products and einsum
            # down their slow strided loops, and their sums may depend on the layout.
            if not arr.flags.c_contiguous:
                arr = arr.copy(order="C")
            _check_shape(arr.shape, ttype, step.op)
            out.append(arr)
        return out

    def _execute(self, env: dict[str, Any]) -> None:
        for step in self._steps:
            o = step.op
            values: dict[str, list[Any]] = {}
            for arg, bindings in step.inputs:
                vals = []
                for is_name, ref in bindings:
                    if not is_name:
                        vals.append(ref)
                    elif ref in env:
                        vals.append(env[ref])
                    else:
                        raise ProgramError(f"op {o.name!r} ({o.type}) reads {ref!r}, which nothing produced")
                values[arg] = vals
            for (name, _), value in zip(o.outputs, self._store(step, self._call(o, step.fn, values, step.out_dtypes))):
                env[name] = value
            for name in step.free:
                del env[name]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Evaluate the program on ``feeds`` (by the program's input names)."""
        env: dict[str, Any] = dict(self._env0)
        for name in self.input_types:
            if name not in feeds:
                raise ProgramError(f"missing input {name!r}; the program takes {list(self.input_names)}")
            env[name] = self._feed(name, feeds[name])
        self._execute(env)
        return {n: env[n].astype(np.float16) if n in self._out_fp16 else env[n] for n in self.output_names}


def _dtype_name(v: Any) -> str | None:
    """The MIL dtype name of a constant's numpy value (floats and the rest alike)."""
    dt = getattr(v, "dtype", None)
    if dt is None:
        return None
    return {np.dtype(np.float16): "fp16", np.dtype(np.float32): "fp32", np.dtype(np.float64): "fp64"}.get(np.dtype(dt), str(dt))
