"""Running many samples through one op at once (``Interpreter.run_batch``).

A batched value is the stack of one value per sample: shape ``(n,) + the program's shape``. An op
with a rule below computes all ``n`` samples in one call of its ordinary implementation, on
inputs whose axes the rule has shifted past the sample axis (a transpose's perm, a reshape's
shape, a reduction's axes, ...). Every rule gives each sample exactly the bits the op gives it
alone: elementwise ops and reductions compute each element as before, and matrix products run
as stacks, one BLAS call per sample's matrix with the shape it has alone (a taller product
could sum in another order). ``tests/targets/coreml/mil/test_batch.py`` and
``tests/targets/coreml/mil/test_ops.py`` compare the bits. An op without a rule, or with inputs
a rule does not cover (e.g. a batched weight), runs sample by sample (``per_sample``), which is
correct for any op by construction.

What a batch saves: the interpreter's and numpy's fixed cost per op call (a MiniLM runs ~170
ops per sample), and the per-call cost of the fp16 rounding, paid once per batch.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgekit.targets.coreml.mil.program import Operation

Values = dict[str, list[Any]]
Flags = dict[str, list[bool]]
Call = Callable[[Values], list[Any]]
Rule = Callable[[Operation, Values, Flags, int, Call], tuple[list[Any], bool]]


class Fallback(Exception):
    """The rule does not cover these inputs: run the op sample by sample."""


def per_sample(values: Values, flags: Flags, n: int, call: Call) -> list[Any]:
    """Run the op once per sample on that sample's slice of every batched input; stack the results."""
    outs: list[list[Any]] = []
    for i in range(n):
        vals = {k: [v[i] if b else v for v, b in zip(vs, flags[k])] for k, vs in values.items()}
        outs.append(call(vals))
    return [np.stack([np.asarray(o[j]) for o in outs]) for j in range(len(outs[0]))]


def _ints(v: Any) -> list[int]:
    return [int(i) for i in np.atleast_1d(np.asarray(v))]


def _rank(o: Operation, index: int = 0) -> int:
    t = o.outputs[index][1]
    if t is None:
        raise Fallback
    return len(t.shape)


def _only(flags: Flags, *batched: str) -> None:
    """The rule needs exactly ``batched`` (those present) to be batched and nothing else."""
    for k, fl in flags.items():
        if any(fl) and (k not in batched or not all(fl)):
            raise Fallback


def _one(values: Values, key: str, value: Any) -> Values:
    out = dict(values)
    out[key] = [value]
    return out


def _norm(axis: int, rank: int) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        raise Fallback  # let the op itself report the bad axis, sample by sample
    return a


# ---- elementwise: align each batched input's program axes with the output's -------------------

def _elementwise(o: Operation, values: Values, flags: Flags, n: int, call: Call) -> tuple[list[Any], bool]:
    rank = _rank(o)
    out = {}
    for k, vs in values.items():
        row = []
        for v, b in zip(vs, flags[k]):
            if b:
                v = np.asarray(v)
                r = v.ndim - 1
                if r > rank:
                    raise Fallback
                v = v.reshape((n,) + (1,) * (rank - r) + v.shape[1:])
            row.append(v)
        out[k] = row
    return call(out), True


ELEMENTWISE = (
    "add", "sub", "mul", "real_div", "pow", "maximum", "minimum", "floor_div", "mod", "equal", "not_equal",
    "greater", "greater_equal", "less", "less_equal", "logical_and", "logical_or", "logical_xor",
    "relu", "tanh", "exp", "sqrt", "abs", "sigmoid", "erf", "sign", "ceil", "floor", "round", "square", "sin", "cos",
    "logical_not", "identity", "exp2", "rsqrt", "inverse", "log", "clip", "select", "gelu", "cast",
)


# ---- ops with axes: shift the program's axes past the sample axis ------------------------------

def _shift_axis(key: str, default: int | None, rank_of: str = "x") -> Rule:
    """One ``axis`` input (or its default) in the input's program rank."""
    def rule(o: Operation, values: Values, flags: Flags, n: int, call: Call) -> tuple[list[Any], bool]:
        _only(flags, rank_of)
        rank = np.ndim(values[rank_of][0]) - 1
        axis = values[key][0] if key in values else default
        if axis is None:
            raise Fallback
        return call(_one(values, key, np.int32(_norm(int(axis), rank) + 1))), True
    return rule


def _shift_axes(o: Operation, values: Values, flags: Flags, n: int, call: Call) -> tuple[list[Any], bool]:
    """reduce_* and layer_norm: ``axes`` (absent: every axis of the program's x)."""
    _only(flags, "x")
    rank = np.ndim(values["x"][0]) - 1
    axes = values.get("axes", [None])[0]
    new = [i + 1 for i in range(rank)] if axes is None else [_norm(a, rank) + 1 for a in _ints(axes)]
    return call(_one(values, "axes", np.array(new, dtype=np.int32))), True


def _transpose(o: Operation, values: Values, flags: Flags, n: int, call: Call) -> tuple[list[Any], bool]:
    _only(flags, "x")
    rank = np.ndim(values["x"][0]) - 1
    perm = [0] + [_norm(p, rank) + 1 for p in _ints(values["perm"][0])]
    return call(_one(values, "perm", np.array(perm, dtype=np.int32))), True


def _reshape(o: Operation, values: Values, flags: Flags, n: int, call: Call) -> tuple[list[Any], bool]:
    _only(flags, "x")
    prog = np.shape(values["x"][0])[1:]
    shape = _ints(values["shape"][0])
    # MIL's 0 copies the input's dimension at that position: resolve it against the program shape.
    if any(s == 0 and i >= len(prog) for i, s in enumerate(shape)):
        raise Fallback
    shape = [prog[i] if s == 0 else s for i, s in enumerate(shape)]
    return call(_one(values, "shape", np.array([n] + shape, dtype=np.int64))), True


def _expand_dims(o: Operation, values: Values, flags: Flags, n: int, call: Call) -> tuple[list[Any], bool]:
    _only(flags, "x")
    out_rank = _rank(o)
    axes = [_norm(a, out_rank) + 1 for a in _ints(values["axes"][0])]
    return call(_one(values, "axes", np.array(axes, dtype=np.int32))), True


def _squeeze(o: Operation, values: Values, flags: Flags, n: int, call: Call) -> tuple[list[Any], bool]:
    _only(flags, "x")
    prog = np.shape(values["x"][0])[1:]
    axes = values.get("axes", [None])[0]
    new = [i + 1 for i, d in enumerate(prog) if d == 1] if axes is None else [_norm(a, len(prog)) + 1 for a in _ints(axes)]
    return call(_one(values, "axes", np.array(new, dtype=np.int32))), True


def _concat(o: Operation, values: Values, flags: Flags, n: int, call: Call) -> tuple[list[Any], bool]:
    """A constant among the values is the same for every sample: repeat it along the sample axis."""
    if any(any(f) for k, f in flags.items() if k != "values"):
        raise Fallback
    rank = _rank(o)
    parts = []
    for v, b in zip(values["values"], flags["values"]):
        v = np.asarray(v)
        if v.ndim - b != rank or rank < 1:
            raise Fallback
        parts.append(v if b else np.broadcast_to(v, (n,) + v.shape))
    out = _one(values, "axis", np.int32(_norm(int(values["axis"][0]), rank) + 1))
    out["values"] = parts
    return call(out), True


def _slice_by_index(o: Operation, values: Values, flags: Flags, n: int, call: Call) -> tuple[list[Any], bool]:
    _only(flags, "x")
    r = np.ndim(values["x"][0]) - 1
    def full(key: str, default: Any) -> list[Any]:
        v = values.get(key, [None])[0]
        return list(np.atleast_1d(v)) if v is not None else [default] * r
    out = dict(values)
    out["begin"] = [np.array([0] + _ints(values["begin"][0]), dtype=np.int32)]
    out["end"] = [np.array([0] + _ints(values["end"][0]), dtype=np.int32)]
    out["stride"] = [np.array([1] + [int(s) for s in full("stride", 1)], dtype=np.int32)]
    out["begin_mask"] = [np.array([True] + [bool(b) for b in full("begin_mask", False)])]
    out["end_mask"] = [np.array([True] + [bool(b) for b in full("end_mask", False)])]
    out["squeeze_mask"] = [np.array([False] + [bool(b) for b in full("squeeze_mask", False)])]
    return call(out), True


def _slice_by_size(o: Operation, values: Values, flags: Flags, n: int, call: Call) -> tuple[list[Any], bool]:
    _only(flags, "x")
    out = dict(values)
    out["begin"] = [np.array([0] + _ints(values["begin"][0]), dtype=np.int32)]
    out["size"] = [np.array([-1] + _ints(values["size"][0]), dtype=np.int32)]
    return call(out), True


def _tile(o: Operation, values: Values, flags: Flags, n: int, call: Call) -> tuple[list[Any], bool]:
    _only(flags, "x")
    reps = _ints(values["reps"][0])
    if len(reps) != np.ndim(values["x"][0]) - 1:
        raise Fallback
    return call(_one(values, "reps", np.array([1] + reps, dtype=np.int32))), True


def _trailing(o: Operation, values: Values, flags: Flags, n: int, call: Call) -> tuple[list[Any], bool]:
    """Ops that only touch trailing axes (pad, band_part): the sample axis rides along."""
    _only(flags, "x")
    return call(values), True


def _shape(o: Operation, values: Values, flags: Flags, n: int, call: Call) -> tuple[list[Any], bool]:
    """The program's shape, the same for every sample of a batch: an unbatched value."""
    _only(flags, "x")
    return call(_one(values, "x", values["x"][0][0])), False


def _split(o: Operation, values: Values, flags: Flags, n: int, call: Call) -> tuple[list[Any], bool]:
    return _shift_axis("axis", None)(o, values, flags, n, call)


def _gather(o: Operation, values: Values, flags: Flags, n: int, call: Call) -> tuple[list[Any], bool]:
    """A constant table read at batched indices (the sample axis lands where ``axis`` was), or
    batched data read at constant indices (the axis moves past the sample axis)."""
    if flags["x"][0]:
        _only(flags, "x")
        rank = np.ndim(values["x"][0]) - 1
        return call(_one(values, "axis", np.int32(_norm(int(values.get("axis", [0])[0]), rank) + 1))), True
    _only(flags, "indices")
    axis = _norm(int(values.get("axis", [0])[0]), np.ndim(values["x"][0]))
    (res,) = call(values)
    return [np.moveaxis(np.asarray(res), axis, 0)], True


def _linear(o: Operation, values: Values, flags: Flags, n: int, call: Call) -> tuple[list[Any], bool]:
    """Weight and bias constant: the op multiplies the stack (n, ..., rows, in) matrix by matrix,
    each one the product a single sample makes."""
    _only(flags, "x")
    x = np.asarray(values["x"][0])
    if x.ndim < 3:  # a program-side vector [in]: a batch would turn n products of one row into one of n rows
        raise Fallback
    return call(values), True


def _matmul(o: Operation, values: Values, flags: Flags, n: int, call: Call) -> tuple[list[Any], bool]:
    _only(flags, "x", "y")
    rx, ry = (np.ndim(values[k][0]) - flags[k][0] for k in ("x", "y"))
    if rx < 2 or ry < 2:
        raise Fallback  # 1-D operands have their own rules
    rank = max(rx, ry)
    out = dict(values)
    for k, r in (("x", rx), ("y", ry)):
        if flags[k][0]:
            v = np.asarray(values[k][0])
            out[k] = [v.reshape((n,) + (1,) * (rank - r) + v.shape[1:])]
    return call(out), True


def _fold(o: Operation, values: Values, flags: Flags, n: int, call: Call) -> tuple[list[Any], bool]:
    """batch_norm (elementwise per channel) treats its axis 0 as a batch: fold the samples into
    it and back."""
    _only(flags, "x")
    x = np.asarray(values["x"][0])
    if x.ndim < 3:
        raise Fallback
    (res,) = call(_one(values, "x", x.reshape((n * x.shape[1],) + x.shape[2:])))
    res = np.asarray(res)
    return [res.reshape((n, x.shape[1]) + res.shape[1:])], True


BATCH_RULES: dict[str, Rule] = {name: _elementwise for name in ELEMENTWISE}
BATCH_RULES.update({
    "softmax": _shift_axis("axis", -1),
    "reduce_argmax": _shift_axis("axis", -1),
    "split": _split,
    "layer_norm": _shift_axes,
    "reduce_sum": _shift_axes, "reduce_mean": _shift_axes, "reduce_max": _shift_axes, "reduce_min": _shift_axes,
    "reduce_prod": _shift_axes, "reduce_l2_norm": _shift_axes, "reduce_sum_square": _shift_axes,
    "transpose": _transpose, "reshape": _reshape, "expand_dims": _expand_dims, "squeeze": _squeeze,
    "concat": _concat, "slice_by_index": _slice_by_index, "slice_by_size": _slice_by_size, "tile": _tile,
    "pad": _trailing, "band_part": _trailing, "shape": _shape, "gather": _gather,
    "linear": _linear, "matmul": _matmul, "batch_norm": _fold,
})

#: Ops that run sample by sample on purpose: their sums go through BLAS (conv: one product over
#: batch x positions) or numpy's einsum loops in an order that may depend on the operands' full
#: shapes, so a batch could round differently from its samples. Not counted as fallbacks.
PER_SAMPLE = frozenset({"conv", "einsum"})
