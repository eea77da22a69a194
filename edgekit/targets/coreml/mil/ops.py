"""numpy implementations of the MIL ops edgekit's Core ML exports contain.

Numerics: the interpreter hands every op its inputs as float32 (fp16 tensors are exact in fp32),
the op computes in float32, and the interpreter rounds the result to the dtype the program
declares for that output. So an fp16 program is evaluated with every intermediate tensor held in
fp16, op by op, while sums inside one op (matmul, linear, conv, softmax, layer_norm statistics)
accumulate in float32, as Core ML's fp16 kernels accumulate in wider precision.

Semantics follow the op definitions in ``coremltools.converters.mil.mil.ops.defs`` (iOS15-iOS18);
``tests/targets/coreml/mil/test_ops.py`` checks each op against coremltools' own ``value_inference``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from edgekit.core.errors import UnsupportedOpError
from edgekit.targets.coreml.mil.errors import ProgramError


class Args:
    """An op's resolved inputs, with helpers for optional and variadic arguments."""

    def __init__(self, op_type: str, name: str, values: dict[str, list[Any]], out_dtypes: list[str | None]) -> None:
        self.op_type, self.name, self.values, self.out_dtypes = op_type, name, values, out_dtypes
        self.asked: set[str] = set()
        self.ane_like = False  # set by an Interpreter(ane_like=True): see ``fp16_accumulating``  # every input name the op's implementation looked at

    def __getitem__(self, key: str) -> Any:
        self.asked.add(key)
        if key not in self.values:
            # A required input is missing: the program is invalid (coremltools' loader rejects it).
            raise ProgramError(f"{self.op_type} op {self.name!r} lacks its required input {key!r}")
        return self.values[key][0]

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return self.values[key][0] if key in self.values else default

    def list(self, key: str) -> list[Any]:
        self.asked.add(key)
        return list(self.values.get(key, []))

    def __contains__(self, key: str) -> bool:
        self.asked.add(key)
        return key in self.values

    def unknown(self) -> list[str]:
        """Inputs the op was given that its implementation never read: an input it does not know."""
        return sorted(set(self.values) - self.asked)


OpFn = Callable[[Args], Any]
OPS: dict[str, OpFn] = {}


def op(*names: str) -> Callable[[OpFn], OpFn]:
    def register(fn: OpFn) -> OpFn:
        for n in names:
            OPS[n] = fn
        return fn
    return register


def _ints(v: Any) -> list[int]:
    return [int(i) for i in np.atleast_1d(np.asarray(v))]


def _axis(a: int, rank: int) -> int:
    return a + rank if a < 0 else a


# ---- constants and compressed weights ---------------------------------------------------------

@op("const")
def _const(a: Args) -> Any:
    return a["val"]


@op("constexpr_affine_dequantize")
def _affine_dequantize(a: Args) -> np.ndarray:
    """iOS16: (quantized_data - zero_point) * scale, both broadcast along ``axis``."""
    q = np.asarray(a["quantized_data"]).astype(np.float32)
    axis = _axis(int(a["axis"]), q.ndim)
    shape = [1] * q.ndim
    zp, scale = np.asarray(a["zero_point"]).astype(np.float32), np.asarray(a["scale"]).astype(np.float32)
    def along(v: np.ndarray) -> np.ndarray:
        if v.ndim == 0:
            return v
        s = list(shape)
        s[axis] = -1
        return v.reshape(s)
    return (q - along(zp)) * along(scale)


@op("constexpr_lut_to_dense")
def _lut_to_dense(a: Args) -> np.ndarray:
    if "shape" in a:  # iOS16 form: flat lut[2^n], packed uint8 indices, output shape
        lut = np.asarray(a["lut"]).astype(np.float32)
        shape = _ints(a["shape"])
        count = int(np.prod(shape))
        nbits = int(round(math.log2(lut.shape[0])))
        from edgekit.targets.coreml.mil.blob import unpack_bits

        idx = unpack_bits(np.asarray(a["indices"], dtype=np.uint8), nbits, count, signed=False)
        return lut[idx.astype(np.int64)].reshape(shape)
    # iOS18 form: indices has the dense shape; lut [g0, g1, ..., 2^n, vector_size] holds one
    # table per block of the dense tensor (block size along axis i = dense[i] / lut.shape[i]).
    idx = np.asarray(a["indices"]).astype(np.int64)
    lut = np.asarray(a["lut"]).astype(np.float32)
    rank = idx.ndim
    vector = lut.shape[-1]
    if vector != 1:
        raise UnsupportedOpError("constexpr_lut_to_dense with vector palettization (vector_size > 1) is not supported")
    groups = lut.shape[:rank]
    out = np.empty(idx.shape, dtype=np.float32)
    block = [idx.shape[i] // groups[i] for i in range(rank)]
    for g in np.ndindex(*groups):
        sl = tuple(slice(g[i] * block[i], (g[i] + 1) * block[i]) for i in range(rank))
        out[sl] = lut[g][:, 0][idx[sl]]
    return out


@op("constexpr_blockwise_shift_scale")
def _blockwise_shift_scale(a: Args) -> np.ndarray:
    """iOS18: scale * (data - offset), scale/offset repeated over blocks of the data."""
    data = np.asarray(a["data"]).astype(np.float32)
    def expand(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v).astype(np.float32)
        for i in range(data.ndim):
            if v.shape[i] != data.shape[i]:
                v = np.repeat(v, data.shape[i] // v.shape[i], axis=i)
        return v
    if a.get("offset") is not None:
        data = data - expand(a["offset"])
    return data * expand(a["scale"])


@op("constexpr_sparse_to_dense")
def _sparse_to_dense(a: Args) -> np.ndarray:
    shape = _ints(a["shape"])
    mask = np.unpackbits(np.asarray(a["mask"], dtype=np.uint8), bitorder="little")[: int(np.prod(shape))].astype(bool)
    out = np.zeros(int(np.prod(shape)), dtype=np.float32)
    out[mask] = np.asarray(a["nonzero_data"]).astype(np.float32)
    return out.reshape(shape)


# ---- elementwise ------------------------------------------------------------------------------

_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.divide, "pow": np.power,
    "maximum": np.maximum, "minimum": np.minimum, "floor_div": np.floor_divide, "mod": np.mod,
    "equal": np.equal, "not_equal": np.not_equal, "greater": np.greater, "greater_equal": np.greater_equal,
    "less": np.less, "less_equal": np.less_equal, "logical_and": np.logical_and, "logical_or": np.logical_or,
}


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> OpFn:
    def run(a: Args) -> np.ndarray:
        x, y = np.asarray(a["x"]), np.asarray(a["y"])
        if fn is np.divide and x.dtype.kind in "iu" and y.dtype.kind in "iu":
            return np.floor_divide(x, y)
        return fn(x, y)
    return run


for _name, _fn in _BINARY.items():
    OPS[_name] = _binary(_fn)


def _erf(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf  # scipy ships with the distill extra; fall back below if absent

    return erf(x)


def erf(x: np.ndarray) -> np.ndarray:
    try:
        return _erf(x).astype(np.float32)
    except ImportError:
        return np.vectorize(math.erf, otypes=[np.float32])(x)


_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0), "tanh": np.tanh, "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)), "erf": erf, "sign": np.sign, "ceil": np.ceil,
    "floor": np.floor, "round": np.round, "square": np.square, "sin": np.sin, "cos": np.cos,
    "logical_not": np.logical_not, "identity": lambda x: x, "exp2": np.exp2,
}


def _unary(fn: Callable[[np.ndarray], np.ndarray]) -> OpFn:
    return lambda a: fn(np.asarray(a["x"]))


for _name, _fn in _UNARY.items():
    OPS[_name] = _unary(_fn)


@op("rsqrt")
def _rsqrt(a: Args) -> np.ndarray:
    return 1.0 / np.sqrt(np.asarray(a["x"]) + float(a.get("epsilon", 1e-12)))


@op("inverse")
def _inverse(a: Args) -> np.ndarray:
    return 1.0 / (np.asarray(a["x"]) + float(a.get("epsilon", 1e-4)))


@op("log")
def _log(a: Args) -> np.ndarray:
    return np.log(np.asarray(a["x"]) + float(a.get("epsilon", 1e-45)))


@op("clip")
def _clip(a: Args) -> np.ndarray:
    return np.minimum(np.maximum(np.asarray(a["x"]), a["alpha"]), a["beta"])


@op("select")
def _select(a: Args) -> np.ndarray:
    return np.where(np.asarray(a["cond"]).astype(bool), a["a"], a["b"])


@op("gelu")
def _gelu(a: Args) -> np.ndarray:
    x = np.asarray(a["x"], dtype=np.float32)
    mode = a.get("mode", "EXACT")
    if mode == "EXACT":
        return 0.5 * x * (1.0 + erf(x / np.float32(math.sqrt(2.0))))
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1.0 + np.tanh(np.float32(math.sqrt(2.0 / math.pi)) * (x + 0.044715 * x ** 3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x / (1.0 + np.exp(-1.702 * x))
    raise UnsupportedOpError(f"gelu mode {mode!r} is not supported")


@op("softmax")
def _softmax(a: Args) -> np.ndarray:
    x = np.asarray(a["x"], dtype=np.float32)
    axis = int(a.get("axis", -1))
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


_CAST = {"fp16": np.float16, "fp32": np.float32, "int32": np.int32, "bool": np.bool_, "int8": np.int8,
         "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "fp64": np.float64, "int64": np.int64}


@op("cast")
def _cast(a: Args) -> np.ndarray:
    dtype = str(a["dtype"])
    if dtype not in _CAST:
        raise UnsupportedOpError(f"cast to {dtype!r} is not supported")
    x = np.asarray(a["x"])
    if np.dtype(_CAST[dtype]).kind in "iu" and x.dtype.kind == "f":
        x = np.trunc(x)  # MIL casts float -> int by truncation toward zero, like C
    return x.astype(_CAST[dtype])


# ---- linear algebra ---------------------------------------------------------------------------

#: Contraction length summed in fp32 before a partial sum is rounded to fp16 (ANE-like mode).
ANE_CHUNK = 32


def _ane(a: Args) -> bool:
    """ANE-like numerics apply to fp16 ops of an interpreter asked for them."""
    return a.ane_like and (a.out_dtypes[0] if a.out_dtypes else None) == "fp16"


def round_fp16_numpy(x: np.ndarray) -> np.ndarray:
    """``x`` rounded to fp16 (round to nearest even, fp16 subnormals and overflow to inf
    included), kept as float32: the interpreter's form of an fp16 tensor."""
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


#: Below this many elements numpy's cast is as quick as handing the array to PyTorch.
_TORCH_ROUND_MIN = 4096
#: PyTorch converts up to this many elements on the calling thread (its parallel grain size):
#: larger arrays go in slices of it, so the rounding never waits for a thread pool (on a busy
#: machine a 2-thread pool made it 2-5x slower, not faster).
_TORCH_SLICE = 32768
_torch: Any = None


def round_fp16(x: np.ndarray) -> np.ndarray:
    """``round_fp16_numpy(x)``, bit for bit (tests/targets/coreml/mil/test_fast_paths.py), with
    PyTorch's vectorised fp16 casts when PyTorch is there: numpy converts to float16 one element
    at a time, 3-4x slower, and an fp16 program rounds every op's result."""
    global _torch
    x = np.asarray(x, dtype=np.float32)
    if x.size < _TORCH_ROUND_MIN:
        return round_fp16_numpy(x)
    if _torch is None:
        try:
            import torch
        except ImportError:  # edgekit depends on torch; the numpy path is the same numbers, slower
            torch = False
        _torch = torch
    if _torch is False:
        return round_fp16_numpy(x)
    if not (x.flags.c_contiguous and x.flags.writeable):  # torch.from_numpy wants a writable C-order array
        x = np.array(x, dtype=np.float32, order="C")
    src = _torch.from_numpy(x.reshape(-1))
    out = np.empty(x.shape, dtype=np.float32)
    dst = _torch.from_numpy(out.reshape(-1))
    half = _torch.empty(min(_TORCH_SLICE, x.size), dtype=_torch.float16)
    for lo in range(0, x.size, _TORCH_SLICE):
        hi = min(lo + _TORCH_SLICE, x.size)
        h = half[: hi - lo]
        h.copy_(src[lo:hi])
        dst[lo:hi].copy_(h)
    return out


def fp16_accumulating(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x @ y`` with an fp16 accumulator, as the Neural Engine is reported to sum: partial sums of
    ``ANE_CHUNK`` products (fp32 inside a chunk) are added into a running fp16 total, rounded after
    every addition. An approximation of hardware whose exact order is not public; it is
    pessimistic against Core ML's CPU/GPU kernels, which accumulate in fp32.

    The fp16 additions are done as float32 additions of fp16 values rounded back to fp16, which is
    how numpy evaluates float16 arithmetic (the same bits) at a fraction of its cost."""
    k = x.shape[-1]
    total = None
    for lo in range(0, k, ANE_CHUNK):
        part = round_fp16(np.matmul(x[..., lo:lo + ANE_CHUNK], y[..., lo:lo + ANE_CHUNK, :]))
        total = part if total is None else round_fp16(total + part)
    return total


@op("linear")
def _linear(a: Args) -> np.ndarray:
    x, w = np.asarray(a["x"], dtype=np.float32), np.asarray(a["weight"], dtype=np.float32)
    x = np.ascontiguousarray(x)  # a strided x would make numpy multiply in its own slow loop, not BLAS
    y = fp16_accumulating(x, w.T) if _ane(a) else x @ w.T
    b = a.get("bias")
    return y + np.asarray(b, dtype=np.float32) if b is not None else y


@op("matmul")
def _matmul(a: Args) -> np.ndarray:
    x, y = np.asarray(a["x"], dtype=np.float32), np.asarray(a["y"], dtype=np.float32)
    if bool(a.get("transpose_x", False)) and x.ndim >= 2:
        x = np.swapaxes(x, -1, -2)
    if bool(a.get("transpose_y", False)) and y.ndim >= 2:
        y = np.swapaxes(y, -1, -2)
    # numpy multiplies strided (e.g. transposed) stacks in its own slow loop, contiguous ones with BLAS.
    x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
    if _ane(a) and x.ndim >= 2 and y.ndim >= 2:
        return fp16_accumulating(x, y)
    return np.matmul(x, y)


@op("einsum")
def _einsum(a: Args) -> np.ndarray:
    return np.einsum(str(a["equation"]), *[np.asarray(v, dtype=np.float32) for v in a.list("values")])


@op("conv")
def _conv(a: Args) -> np.ndarray:
    """1x1 convolutions (the ANE layout's linear layers); other kernels are reported unsupported."""
    x, w = np.asarray(a["x"], dtype=np.float32), np.asarray(a["weight"], dtype=np.float32)
    groups = int(a.get("groups", 1))
    strides = _ints(a.get("strides", [1] * (w.ndim - 2)))
    dil = _ints(a.get("dilations", [1] * (w.ndim - 2)))
    if any(k != 1 for k in w.shape[2:]) or any(s != 1 for s in strides) or groups != 1 or any(d != 1 for d in dil):
        raise UnsupportedOpError(
            f"conv {a.name!r}: only 1x1, stride-1, ungrouped convolutions are implemented (kernel {w.shape[2:]})")
    pads = _ints(a.get("pad", [0] * (2 * (w.ndim - 2))))
    if str(a.get("pad_type", "valid")) == "custom" and any(pads):
        raise UnsupportedOpError(f"conv {a.name!r}: padded 1x1 convolutions are not implemented")
    # x [B, Cin, *spatial], w [Cout, Cin, 1...]: contract Cin.
    w2 = w.reshape(w.shape[0], w.shape[1])
    if _ane(a):
        y = np.moveaxis(fp16_accumulating(np.ascontiguousarray(np.moveaxis(x, 1, -1)), w2.T), -1, 1)
    else:
        y = np.einsum("oc,bc...->bo...", w2, x, optimize=True)
    b = a.get("bias")
    if b is not None:
        y = y + np.asarray(b, dtype=np.float32).reshape((1, -1) + (1,) * (x.ndim - 2))
    return y


@op("layer_norm")
def _layer_norm(a: Args) -> np.ndarray:
    x = np.asarray(a["x"], dtype=np.float32)
    axes = tuple(_ints(a["axes"])) if a.get("axes") is not None else tuple(range(x.ndim))
    eps = np.float32(a.get("epsilon", 1e-5))
    if _ane(a):
        # fp16 statistics: mean, centred values, their squares and the variance all held in
        # fp16 (the squares can overflow where fp32 would not: that is the point of the check).
        h = np.float16
        with np.errstate(over="ignore", invalid="ignore"):
            mean = x.mean(axis=axes, keepdims=True).astype(h)
            c = (x.astype(h) - mean).astype(h)
            var = (c.astype(np.float32) ** 2).astype(h).astype(np.float32).mean(axis=axes, keepdims=True).astype(h)
            y = (c.astype(np.float32) / np.sqrt(var.astype(np.float32) + eps)).astype(h).astype(np.float32)
    else:
        mean = x.mean(axis=axes, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
        y = (x - mean) / np.sqrt(var + eps)
    # gamma/beta have the shape of the normalised axes; broadcast them into place.
    norm_axes = sorted(_axis(i, x.ndim) for i in axes)
    bshape = [x.shape[i] if i in norm_axes else 1 for i in range(x.ndim)]
    if a.get("gamma") is not None:
        y = y * np.asarray(a["gamma"], dtype=np.float32).reshape(bshape)
    if a.get("beta") is not None:
        y = y + np.asarray(a["beta"], dtype=np.float32).reshape(bshape)
    return y


@op("batch_norm")
def _batch_norm(a: Args) -> np.ndarray:
    """Normalise axis 1 with the given (constant) mean and variance."""
    x = np.asarray(a["x"], dtype=np.float32)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    def c(key: str, default: float) -> np.ndarray:
        v = a.get(key)
        return np.float32(default) if v is None else np.asarray(v, dtype=np.float32).reshape(shape)
    y = (x - c("mean", 0.0)) / np.sqrt(c("variance", 1.0) + np.float32(a.get("epsilon", 1e-5)))
    return y * c("gamma", 1.0) + c("beta", 0.0)


# ---- reductions -------------------------------------------------------------------------------

def _reduce(fn: Callable[..., np.ndarray]) -> OpFn:
    def run(a: Args) -> np.ndarray:
        x = np.asarray(a["x"])
        axes = a.get("axes")
        axes = tuple(_ints(axes)) if axes is not None else None
        return fn(x, axis=axes, keepdims=bool(a.get("keep_dims", False)))
    return run


OPS["reduce_sum"] = _reduce(np.sum)
OPS["reduce_mean"] = _reduce(np.mean)
OPS["reduce_max"] = _reduce(np.max)
OPS["reduce_min"] = _reduce(np.min)
OPS["reduce_prod"] = _reduce(np.prod)
OPS["reduce_l2_norm"] = _reduce(lambda x, axis, keepdims: np.sqrt(np.sum(np.square(x), axis=axis, keepdims=keepdims)))
OPS["reduce_sum_square"] = _reduce(lambda x, axis, keepdims: np.sum(np.square(x), axis=axis, keepdims=keepdims))


@op("reduce_argmax")
def _argmax(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    axis = int(a.get("axis", -1))
    out = np.argmax(x, axis=axis)
    return np.expand_dims(out, axis) if bool(a.get("keep_dims", False)) else out


# ---- shape and indexing -----------------------------------------------------------------------

@op("shape")
def _shape(a: Args) -> np.ndarray:
    return np.array(np.shape(a["x"]), dtype=np.int32)


@op("reshape")
def _reshape(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    shape = _ints(a["shape"])
    # MIL: 0 copies the input dimension at that position, -1 is inferred.
    shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


@op("transpose")
def _transpose(a: Args) -> np.ndarray:
    return np.transpose(np.asarray(a["x"]), _ints(a["perm"]))


@op("expand_dims")
def _expand_dims(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    axes = _ints(a["axes"])
    out_rank = x.ndim + len(axes)
    for ax in sorted(_axis(i, out_rank) for i in axes):
        x = np.expand_dims(x, ax)
    return x


@op("squeeze")
def _squeeze(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    axes = a.get("axes")
    if axes is None:
        return np.squeeze(x)
    return np.squeeze(x, axis=tuple(_axis(i, x.ndim) for i in _ints(axes)))


@op("concat")
def _concat(a: Args) -> np.ndarray:
    values = [np.atleast_1d(np.asarray(v)) for v in a.list("values")]
    axis = int(a["axis"])
    if bool(a.get("interleave", False)):
        raise UnsupportedOpError("concat with interleave=True is not supported")
    dtype = np.result_type(*values)
    return np.concatenate([v.astype(dtype) for v in values], axis=axis)


@op("split")
def _split(a: Args) -> tuple[np.ndarray, ...]:
    x = np.asarray(a["x"])
    axis = _axis(int(a["axis"]), x.ndim)
    sizes = a.get("split_sizes")
    if sizes is not None:
        bounds = np.cumsum(_ints(sizes))[:-1]
        return tuple(np.split(x, bounds, axis=axis))
    return tuple(np.split(x, int(a["num_splits"]), axis=axis))


@op("gather")
def _gather(a: Args) -> np.ndarray:
    x, idx = np.asarray(a["x"]), np.asarray(a["indices"]).astype(np.int64)
    axis = _axis(int(a.get("axis", 0)), x.ndim)
    if int(a.get("batch_dims", 0)) != 0:
        raise UnsupportedOpError("gather with batch_dims != 0 is not supported")
    # iOS 17+ gather takes validate_indices; out-of-range indices are an error here either way.
    a.get("validate_indices", False)
    if idx.size and (idx.max() >= x.shape[axis] or idx.min() < -x.shape[axis]):
        raise IndexError(f"gather {a.name!r}: index out of range for axis of size {x.shape[axis]}")
    return np.take(x, idx, axis=axis)


@op("slice_by_index")
def _slice_by_index(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    r = x.ndim
    begin, end = _ints(a["begin"]), _ints(a["end"])
    stride = _ints(a.get("stride")) if a.get("stride") is not None else [1] * r
    bmask = [bool(v) for v in np.atleast_1d(a.get("begin_mask", [False] * r))]
    emask = [bool(v) for v in np.atleast_1d(a.get("end_mask", [False] * r))]
    smask = [bool(v) for v in np.atleast_1d(a.get("squeeze_mask", [False] * r))]
    slices: list[Any] = []
    for i in range(r):
        if smask[i]:
            slices.append(begin[i])
            continue
        b = None if bmask[i] else begin[i]
        e = None if emask[i] else end[i]
        slices.append(slice(b, e, stride[i]))
    return np.asarray(x[tuple(slices)])


@op("slice_by_size")
def _slice_by_size(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    begin, size = _ints(a["begin"]), _ints(a["size"])
    sl = tuple(slice(b, None if s == -1 else b + s) for b, s in zip(begin, size))
    return x[sl]


@op("tile")
def _tile(a: Args) -> np.ndarray:
    return np.tile(np.asarray(a["x"]), _ints(a["reps"]))


@op("fill")
def _fill(a: Args) -> np.ndarray:
    return np.full(_ints(a["shape"]), a.get("value", 0.0))


@op("range_1d")
def _range_1d(a: Args) -> np.ndarray:
    return np.arange(a["start"], a["end"], a["step"])


@op("pad")
def _pad(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    p = _ints(a["pad"])
    width = [(0, 0)] * (x.ndim - len(p) // 2) + [(p[2 * i], p[2 * i + 1]) for i in range(len(p) // 2)]
    mode = str(a.get("mode", "constant"))
    if mode != "constant":
        raise UnsupportedOpError(f"pad mode {mode!r} is not supported")
    return np.pad(x, width, constant_values=float(a.get("constant_val", 0.0)))


@op("band_part")
def _band_part(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    lo, hi = int(a.get("lower", -1)), int(a.get("upper", -1))
    n, m = x.shape[-2:]
    i, j = np.arange(n)[:, None], np.arange(m)[None, :]
    keep = ((lo < 0) | (i - j <= lo)) & ((hi < 0) | (j - i <= hi))
    return np.where(keep, x, 0)


def supported_ops() -> frozenset[str]:
    return frozenset(OPS)
