"""Each interpreter op against coremltools' own semantics.

For every case a one-op MIL program is built with coremltools' builder, saved as an
``.mlpackage`` (no graph passes, so the op reaches the file as written) and run by
``edgekit.targets.coreml.mil.Interpreter``; the reference is coremltools' ``value_inference`` of the same op on
constant inputs (the code coremltools uses to const-fold it).
"""
from __future__ import annotations

import gc
from unittest import mock

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")

from coremltools.converters.mil import Builder as mb  # noqa: E402
from coremltools.converters.mil.mil import Function, types  # noqa: E402

from edgekit.core.errors import UnsupportedOpError  # noqa: E402
from edgekit.targets.coreml.mil import Interpreter, supported_ops  # noqa: E402

class _Rng:
    """Random constants that builders create on each call; reseeded before every build so the
    program and the reference see the same values."""

    def __init__(self) -> None:
        self.reseed()

    def reseed(self, seed: int = 1) -> None:
        self.state = np.random.RandomState(seed)

    def randn(self, *shape: int) -> np.ndarray:
        return self.state.randn(*shape)

    def randint(self, lo: int, hi: int, shape) -> np.ndarray:
        return self.state.randint(lo, hi, shape)


RNG = _Rng()


def _f(*shape: int) -> np.ndarray:
    return RNG.randn(*shape).astype(np.float32)


# Module-level constants for ops whose reference is written out in numpy (coremltools has no
# value_inference for linear / conv / batch_norm / einsum); formulas follow the op docstrings.
_C = np.random.RandomState(7)
W8, B6 = _C.randn(6, 8).astype(np.float32), _C.randn(6).astype(np.float32)
CW, CB = _C.randn(6, 4, 1, 1).astype(np.float32), _C.randn(6).astype(np.float32)
BN = [_C.randn(4).astype(np.float32) for _ in range(4)]
BN[1] = np.abs(BN[1]) + 0.5
E1, E2 = _C.randn(1, 4, 1, 3).astype(np.float32), _C.randn(1, 5, 1, 3).astype(np.float32)
LUT = np.linspace(-1, 1, 16).astype(np.float32)


def _bn_ref(x):
    m, v, g, b = (t.reshape(1, -1, 1, 1) for t in BN)
    return (x - m) / np.sqrt(v + 1e-5) * g + b


_DECOMPRESSED: list = []


def _dense(x, w):
    """Use a decompressed weight; the reference is coremltools' value_inference of the constexpr op."""
    _DECOMPRESSED.append(w)
    return mb.add(x=x, y=w)


CASES = {
    # name: (builder(x), x, opset target[, numpy reference(x) when coremltools has no value_inference])
    "add_broadcast": (lambda x: mb.add(x=x, y=_f(1, 4)), _f(3, 4), "iOS16"),
    "sub_scalar": (lambda x: mb.sub(x=1.0, y=x), _f(3, 4), "iOS16"),
    "mul": (lambda x: mb.mul(x=x, y=-10000.0), _f(2, 3), "iOS16"),
    "real_div": (lambda x: mb.real_div(x=x, y=_f(3) + 3.0), _f(2, 3), "iOS16"),
    "select": (lambda x: mb.select(cond=mb.greater_equal(x=x, y=0.0), a=x, b=mb.mul(x=x, y=0.5)), _f(4, 5), "iOS16"),
    "cast_fp16": (lambda x: mb.cast(x=mb.cast(x=x, dtype="fp16"), dtype="fp32"), _f(3, 7) * 1000, "iOS16"),
    "cast_int32": (lambda x: mb.cast(x=x, dtype="int32"), _f(3, 7) * 10, "iOS16"),
    "gather": (lambda x: mb.gather(x=x, indices=np.array([[0, 3, 1]], np.int32), axis=0), _f(5, 4), "iOS16"),
    "gather_axis1": (lambda x: mb.gather(x=x, indices=np.array([2, 0], np.int32), axis=1), _f(3, 4), "iOS16"),
    "layer_norm": (lambda x: mb.layer_norm(x=x, axes=[-1], gamma=_f(8), beta=_f(8), epsilon=1e-5), _f(2, 3, 8), "iOS16"),
    "layer_norm_axis1": (lambda x: mb.layer_norm(x=x, axes=[1], epsilon=1e-7), _f(1, 8, 1, 5), "iOS16"),
    "batch_norm": (lambda x: mb.batch_norm(x=x, mean=BN[0], variance=BN[1], gamma=BN[2], beta=BN[3], epsilon=1e-5),
                   _f(1, 4, 1, 6), "iOS16", _bn_ref),
    "expand_dims": (lambda x: mb.expand_dims(x=x, axes=[1, -1]), _f(2, 3), "iOS16"),
    "squeeze": (lambda x: mb.squeeze(x=x, axes=[2]), _f(2, 3, 1, 4), "iOS16"),
    "linear": (lambda x: mb.linear(x=x, weight=W8, bias=B6), _f(2, 5, 8), "iOS16", lambda x: x @ W8.T + B6),
    "matmul": (lambda x: mb.matmul(x=x, y=_f(2, 4, 5)), _f(2, 3, 4), "iOS16"),
    "matmul_transpose": (lambda x: mb.matmul(x=x, y=_f(2, 5, 4), transpose_x=True, transpose_y=True), _f(2, 4, 3), "iOS16"),
    # The two equations coremltools emits for apple/ml-ane-transformers attention.
    "einsum_scores": (lambda x: mb.einsum(values=(x, E1), equation="bkhc,bchq->bkhq"), _f(1, 5, 1, 4), "iOS16",
                      lambda x: np.einsum("bkhc,bchq->bkhq", x, E1)),
    "einsum_context": (lambda x: mb.einsum(values=(x, E2), equation="bchk,bkhq->bchq"), _f(1, 4, 1, 5), "iOS16",
                       lambda x: np.einsum("bchk,bkhq->bchq", x, E2)),
    "conv_1x1": (lambda x: mb.conv(x=x, weight=CW, bias=CB), _f(1, 4, 1, 7), "iOS16",
                 lambda x: np.einsum("oc,bchw->bohw", CW[:, :, 0, 0], x) + CB.reshape(1, -1, 1, 1)),
    "reshape": (lambda x: mb.reshape(x=x, shape=[1, -1, 2, 3]), _f(1, 4, 6), "iOS16"),
    "transpose": (lambda x: mb.transpose(x=x, perm=[0, 2, -1, -3]), _f(1, 3, 4, 5), "iOS16"),
    "softmax": (lambda x: mb.softmax(x=x, axis=1), _f(2, 5, 3) * 4, "iOS16"),
    "gelu_exact": (lambda x: mb.gelu(x=x, mode="EXACT"), _f(4, 6) * 3, "iOS16"),
    "gelu_tanh": (lambda x: mb.gelu(x=x, mode="TANH_APPROXIMATION"), _f(4, 6) * 3, "iOS16"),
    "relu": (lambda x: mb.relu(x=x), _f(4, 6), "iOS16"),
    "tanh": (lambda x: mb.tanh(x=x), _f(4, 6), "iOS16"),
    "rsqrt": (lambda x: mb.rsqrt(x=mb.abs(x=x), epsilon=1e-6), _f(4, 6), "iOS16"),
    "sqrt_real_div": (lambda x: mb.real_div(x=x, y=mb.sqrt(x=mb.add(x=mb.mul(x=x, y=x), y=1.0))), _f(3, 3), "iOS16"),
    "slice_by_index": (lambda x: mb.slice_by_index(x=x, begin=[0, 1, 0], end=[2, 3, 3], end_mask=[True, False, False],
                                                   squeeze_mask=[False, False, True]), _f(2, 4, 5), "iOS16"),
    "slice_by_index_stride": (lambda x: mb.slice_by_index(x=x, begin=[0, -3], end=[0, -1], stride=[1, 2],
                                                          begin_mask=[True, False], end_mask=[True, False]), _f(3, 7), "iOS16"),
    "slice_by_size": (lambda x: mb.slice_by_size(x=x, begin=[1, 0], size=[2, -1]), _f(4, 5), "iOS16"),
    "concat": (lambda x: mb.concat(values=(x, _f(2, 2), x), axis=1), _f(2, 3), "iOS16"),
    "split": (lambda x: mb.split(x=x, split_sizes=[1, 3], axis=1)[1], _f(2, 4, 3), "iOS16"),
    "split_num": (lambda x: mb.split(x=x, num_splits=2, axis=-1)[0], _f(2, 4), "iOS16"),
    "reduce_mean": (lambda x: mb.reduce_mean(x=x, axes=[1], keep_dims=True), _f(2, 4, 3), "iOS16"),
    "reduce_sum": (lambda x: mb.reduce_sum(x=x, axes=[1, 2], keep_dims=False), _f(2, 4, 3), "iOS16"),
    "shape": (lambda x: mb.shape(x=x), _f(2, 4, 3), "iOS16"),
    "tile": (lambda x: mb.tile(x=x, reps=[2, 1]), _f(2, 3), "iOS16"),
    "clip": (lambda x: mb.clip(x=x, alpha=-0.5, beta=0.5), _f(3, 3), "iOS16"),
    "maximum": (lambda x: mb.maximum(x=x, y=0.1), _f(3, 3), "iOS16"),
    # Weight decompression (the values our int8 / palettized / int4 exports store).
    "affine_dequantize": (lambda x: _dense(x, mb.constexpr_affine_dequantize(
        quantized_data=RNG.randint(-127, 127, (6, 8)).astype(np.int8), zero_point=np.int8(0),
        scale=np.abs(_f(6)) / 100, axis=0)), _f(6, 8), "iOS16"),
    "affine_dequantize_uint8": (lambda x: _dense(x, mb.constexpr_affine_dequantize(
        quantized_data=RNG.randint(0, 255, (6, 8)).astype(np.uint8), zero_point=RNG.randint(0, 255, 8).astype(np.uint8),
        scale=np.abs(_f(8)) / 100, axis=1)), _f(6, 8), "iOS16"),
    "lut_to_dense_ios16": (lambda x: _dense(x, mb.constexpr_lut_to_dense(
        lut=LUT, indices=RNG.randint(0, 256, 24).astype(np.uint8), shape=np.array([6, 8], np.uint32))), _f(6, 8), "iOS16"),
    "lut_to_dense_ios18": (lambda x: _dense(x, mb.constexpr_lut_to_dense(
        indices=RNG.randint(0, 16, (6, 8)).astype(types.np_uint4_dtype), lut=_f(2, 1, 16, 1))), _f(6, 8), "iOS18"),
    "lut_to_dense_ios18_6bit": (lambda x: _dense(x, mb.constexpr_lut_to_dense(
        indices=RNG.randint(0, 64, (6, 8)).astype(types.np_uint6_dtype), lut=_f(1, 1, 64, 1))), _f(6, 8), "iOS18"),
    "blockwise_shift_scale_int4": (lambda x: _dense(x, mb.constexpr_blockwise_shift_scale(
        data=RNG.randint(-8, 8, (6, 8)).astype(types.np_int4_dtype), scale=np.abs(_f(6, 2)) / 8)), _f(6, 8), "iOS18"),
    "blockwise_shift_scale_int8_offset": (lambda x: _dense(x, mb.constexpr_blockwise_shift_scale(
        data=RNG.randint(-128, 127, (6, 8)).astype(np.int8), scale=np.abs(_f(6, 1)) / 100,
        offset=RNG.randint(-3, 3, (6, 1)).astype(np.int8))), _f(6, 8), "iOS18"),
}

# fp16 programs: the op runs on fp16 tensors (constants fp16 too), as in an fp16 export.
FP16_CASES = {
    "linear": (lambda x: mb.linear(x=x, weight=W8.astype(np.float16), bias=B6.astype(np.float16)), _f(2, 5, 8),
               lambda x: x @ W8.T + B6),
    "layer_norm": (lambda x: mb.layer_norm(x=x, axes=[-1], epsilon=np.float16(1e-5)), _f(2, 3, 8) * 3,
                   lambda x: (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)),
    "softmax": (lambda x: mb.softmax(x=x, axis=-1), _f(2, 5, 3) * 4,
                lambda x: np.exp(x - x.max(-1, keepdims=True)) / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)),
    "mul_add": (lambda x: mb.add(x=mb.mul(x=x, y=np.float16(0.1)), y=np.float16(1.0)), _f(4, 6), lambda x: x * 0.1 + 1.0),
}


def _target(name: str):
    return getattr(ct.target, name)


def _save_program(builder, x: np.ndarray, target: str, path, fp16: bool = False):
    dtype = types.fp32 if x.dtype == np.float32 else types.int32

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape, dtype=dtype)], opset_version=_target(target))
    def prog(x):
        RNG.reseed()
        if fp16:
            return mb.cast(x=builder(mb.cast(x=x, dtype="fp16")), dtype="fp32")
        return builder(x)

    # ct.convert ends with a full gc.collect(), ~1 s per call in a process holding torch: skip it
    # for these one-op programs (nothing here leaks).
    with mock.patch.object(gc, "collect", lambda *a, **k: 0):
        ml = ct.convert(prog, convert_to="mlprogram", pass_pipeline=ct.PassPipeline.EMPTY,
                        minimum_deployment_target=_target(target), compute_precision=ct.precision.FLOAT32)
    ml.save(str(path))
    return path


def _reference(builder, x: np.ndarray, target: str) -> np.ndarray:
    RNG.reseed()
    _DECOMPRESSED.clear()
    with Function({}, opset_version=_target(target)):
        val = builder(x).val
        if val is None and _DECOMPRESSED:  # constexpr ops are never folded into consumers
            val = x + np.asarray(_DECOMPRESSED[-1].op.materialized_val_inference(), dtype=np.float32)
    assert val is not None, "coremltools cannot const-fold this op: give the case a numpy reference"
    return np.asarray(val)


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_matches_coremltools(name, tmp_path):
    builder, x, target, *numpy_ref = CASES[name]
    ref = numpy_ref[0](x) if numpy_ref else _reference(builder, x, target)
    interp = Interpreter(_save_program(builder, x, target, tmp_path / "op.mlpackage"))
    assert interp.op_counts.get("const", 0) >= 0 and len(interp.output_names) == 1
    got = interp.run({"x": x})[interp.output_names[0]]
    assert got.shape == ref.shape
    if ref.dtype.kind in "iub":
        np.testing.assert_array_equal(got, ref)
    else:
        np.testing.assert_allclose(got.astype(np.float32), ref.astype(np.float32), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(FP16_CASES))
def test_fp16_ops_round_to_fp16(name, tmp_path):
    """An fp16 op's result is an fp16 tensor: the interpreter output is exactly representable in
    fp16 and within fp16 rounding of the float64 reference on the same fp16 inputs."""
    builder, x, ref_fn = FP16_CASES[name]
    ref = ref_fn(x.astype(np.float16).astype(np.float64))
    interp = Interpreter(_save_program(builder, x, "iOS16", tmp_path / "op16.mlpackage", fp16=True))
    got = interp.run({"x": x})[interp.output_names[0]]
    np.testing.assert_array_equal(got, got.astype(np.float16).astype(np.float32))
    scale = float(np.abs(ref).max())
    err = float(np.abs(got - ref).max())
    assert err <= 4e-3 * scale, f"fp16 result off by {err} (scale {scale})"
    assert err > 0, "no fp16 rounding visible: the op did not run in fp16"


def test_unsupported_op_is_named(tmp_path):
    builder = lambda x: mb.cumsum(x=x, axis=0)  # noqa: E731 - not an op edgekit exports
    assert "cumsum" not in supported_ops()
    path = _save_program(builder, _f(3, 2), "iOS16", tmp_path / "cumsum.mlpackage")
    with pytest.raises(UnsupportedOpError, match="cumsum"):
        Interpreter(path)


def test_blob_reader_matches_coremltools_reader(tmp_path):
    """Our weight.bin parser against coremltools' libmilstoragepython reader, for every dtype our exports use."""
    milstorage = pytest.importorskip("coremltools.libmilstoragepython")
    from edgekit.targets.coreml.mil.blob import BlobFile

    path = tmp_path / "w.bin"
    writer = milstorage._BlobStorageWriter(str(path))
    data = {
        "fp16": (writer.write_fp16_data, _f(37).astype(np.float16)),
        "fp32": (writer.write_float_data, _f(11)),
        "int8": (writer.write_int8_data, RNG.randint(-128, 127, 19).astype(np.int8)),
        "uint8": (writer.write_uint8_data, RNG.randint(0, 255, 23).astype(np.uint8)),
        "int32": (writer.write_int32_data, RNG.randint(-1000, 1000, 5).astype(np.int32)),
    }
    offsets = {k: fn(v.view(np.uint16) if k == "fp16" else v) for k, (fn, v) in data.items()}
    # Sub-byte values: the writer packs them LSB-first; our reader must unpack the same values.
    sub = {"uint4": (RNG.randint(0, 16, 29).astype(np.uint8), writer.write_uint4_data),
           "uint6": (RNG.randint(0, 64, 13).astype(np.uint8), writer.write_uint6_data),
           "int4": (RNG.randint(-8, 8, 17).astype(np.int8), writer.write_int4_data)}
    for k, (v, fn) in sub.items():
        offsets[k] = fn(v)  # the writer packs the values itself
    del writer  # flushes the file
    ours, theirs = BlobFile(path), milstorage._BlobStorageReader(str(path))
    for k, (_, v) in data.items():
        np.testing.assert_array_equal(ours.read(offsets[k], k, v.shape), v)
    np.testing.assert_array_equal(theirs.read_int8_data(offsets["int8"]), data["int8"][1])
    for k, (v, _) in sub.items():
        np.testing.assert_array_equal(ours.read(offsets[k], k, v.shape), v)
