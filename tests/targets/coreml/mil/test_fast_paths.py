"""The interpreter's fast paths give the same bits as the plain definitions they replace.

``Interpreter.run`` (weights converted to float32 once per file, fp16 rounding through PyTorch's
casts, no rounding of values an op only moves, values dropped after their last reader) against
each op evaluated on its inputs in their declared dtypes, on exported packages of every layout
edgekit writes (fp16, the ANE layout's conv/einsum, int8 with a length range, palettes, fp32),
with normal and ANE-like numerics; the fp16 rounding, the fp16 accumulation and the sub-byte
unpacking against numpy's float16 and bit-by-bit definitions. Every comparison is exact: a
faster interpreter may not move a single bit of a verdict's numbers.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("coremltools")

from edgekit.core.config import ExportOptions, SeqLen
from edgekit.core.precision import Precision
from edgekit.core.tasks import Task
from edgekit.model.inputs import random_feeds
from edgekit.model.modeling import load_model, load_tokenizer
from edgekit.targets.coreml.mil import Interpreter
from edgekit.targets.coreml.mil.blob import unpack_bits
from edgekit.targets.coreml.mil.ops import (
    fp16_accumulating,
    round_fp16,
    round_fp16_numpy,
)
from edgekit.targets.coreml.mil.program import NUMPY_DTYPES

#: name -> (arch, task, precision, sequence lengths, deployment target, ANE layout)
PACKAGES = {
    "fp16-features": ("bert", Task.FEATURE_EXTRACTION, "fp16", "16", None, False),
    "fp16-ane-qa-enumerated": ("bert", Task.QUESTION_ANSWERING, "fp16", "32,48", "iOS18", True),
    "int8-tokens-range": ("distilbert", Task.TOKEN_CLASSIFICATION, "int8-weight", "8:32", None, False),
    "palettize6-classes": ("distilbert", Task.SEQUENCE_CLASSIFICATION, "palettize6", "16", None, False),
    "fp32-masked-lm": ("bert", Task.MASKED_LM, "fp32", "16", None, False),
}


@pytest.fixture(scope="module")
def packages(tiny_model, tmp_path_factory):
    from edgekit.build.stage import export_model

    out = {}
    for name, (arch, task, precision, seq, target, ane) in PACKAGES.items():
        path = tiny_model(arch, task)
        model, tok = load_model(path, task), load_tokenizer(path)
        opts = ExportOptions(target="coreml", task=task, precision=Precision(precision), seq_len=SeqLen.parse(seq),
                             flags={k: v for k, v in {"ane": ane, "deployment_target": target}.items() if v})
        folder = tmp_path_factory.mktemp(name)
        rec = export_model(model, opts, folder, tokenizer=tok, verbose=False, validate=False)
        out[name] = (folder / rec.artifact, model)
    return out


def _plain_run(interp: Interpreter, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every op on its inputs in their declared dtypes, each result rounded to its declared dtype
    by numpy and kept (the interpreter's evaluation before its fast paths; values in C order)."""
    env = dict(interp.consts)
    for name, ttype in interp.input_types.items():
        env[name] = np.asarray(feeds[name]).astype(NUMPY_DTYPES[ttype.dtype])
    for o in interp.ops:
        for (name, _), value in zip(o.outputs, interp._eval(o, env)):
            env[name] = np.ascontiguousarray(value) if isinstance(value, np.ndarray) and value.ndim else value
    return {n: env[n] for n in interp.output_names}


def _feeds(model, seq: SeqLen) -> list[dict[str, np.ndarray]]:
    lengths = sorted({seq.values[0], seq.values[-1], 20} if seq.kind == "range" else set(seq.values))
    return [f for i, s in enumerate(lengths) for f in random_feeds(model.config.vocab_size, s, model.input_names,
                                                                  n=3, seed=i)]


@pytest.mark.slow
@pytest.mark.parametrize("ane_like", [False, True], ids=["normal", "ane-like"])
@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_run_equals_the_plain_evaluation(packages, name, ane_like):
    path, model = packages[name]
    interp = Interpreter(path, ane_like=ane_like)
    for feeds in _feeds(model, SeqLen.parse(PACKAGES[name][3])):
        got, want = interp.run(feeds), _plain_run(interp, feeds)
        assert got.keys() == want.keys()
        for k in want:
            assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape, k
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)


@pytest.mark.slow
def test_ane_twin_shares_the_loaded_weights(packages):
    """extra_validation's ANE-like pass reuses the program parity loaded: same numbers as a
    fresh ANE-like interpreter, no second copy of the weights."""
    path, model = packages["fp16-features"]
    interp = Interpreter(path)
    twin = interp.with_numerics(ane_like=True)
    assert twin.ane_like and not interp.ane_like and twin.consts is interp.consts
    fresh = Interpreter(path, ane_like=True)
    for feeds in _feeds(model, SeqLen.parse("16")):
        a, b = twin.run(feeds), fresh.run(feeds)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
        assert any(not np.array_equal(a[k], interp.run(feeds)[k]) for k in a)  # the numerics did change


def test_round_fp16_is_numpys_cast():
    """The PyTorch-backed rounding and numpy's float16 cast agree on every kind of value: normal,
    fp16-subnormal, halfway cases, overflow to inf, inf, NaN, signed zeros."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(1 << 16) * 2.0 ** rng.integers(-30, 20, 1 << 16)).astype(np.float32)
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
    ties = (halves.view(np.uint32) + np.uint32(0x1000)).view(np.float32)  # exactly between two fp16 values
    special = np.array([0.0, -0.0, 65504, 65519.99, 65520, -65520, 1e9, np.inf, -np.inf, np.nan, 6e-8, 2.9e-8,
                        3e-8, 6.1e-5, 6.09e-5], dtype=np.float32)
    x = np.concatenate([x, halves, ties, special])
    with np.errstate(over="ignore", invalid="ignore"):
        got, want = round_fp16(x), round_fp16_numpy(x)
        strided = round_fp16(x.reshape(-1, 3)[:, ::2])
    assert got.dtype == np.float32 and x.size >= 4096
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), x[~same][:10]
    np.testing.assert_array_equal(strided, want.reshape(-1, 3)[:, ::2])


def test_fp16_accumulation_equals_float16_arithmetic():
    """The float32-domain accumulation is numpy's float16 arithmetic (each fp16 addition is a
    float32 addition rounded to fp16), bit for bit."""
    def reference(x, y, chunk=32):
        total = None
        for lo in range(0, x.shape[-1], chunk):
            part = np.matmul(x[..., lo:lo + chunk], y[..., lo:lo + chunk, :]).astype(np.float16)
            total = part if total is None else (total + part).astype(np.float16)
        return total.astype(np.float32)

    rng = np.random.default_rng(1)
    for k in (32, 100, 384):
        x = rng.standard_normal((2, 7, k)).astype(np.float16).astype(np.float32)
        y = (rng.standard_normal((k, 9)) * 3).astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(fp16_accumulating(x, y), reference(x, y))


def test_unpack_bits_matches_the_bitwise_definition():
    def reference(packed, nbits, count, signed):
        bits = np.unpackbits(packed, bitorder="little")[: count * nbits].reshape(count, nbits).astype(np.int16)
        values = (bits << np.arange(nbits, dtype=np.int16)).sum(axis=1)
        if signed:
            return np.where(values >= 1 << (nbits - 1), values - (1 << nbits), values).astype(np.int8)
        return values.astype(np.uint8)

    rng = np.random.default_rng(2)
    for nbits in range(1, 9):
        for count in (1, 3, 7, 8, 9, 64, 1001):
            packed = rng.integers(0, 256, -(-count * nbits // 8) + 1, dtype=np.uint8)
            for signed in (False, True):
                got, want = unpack_bits(packed, nbits, count, signed), reference(packed, nbits, count, signed)
                assert got.dtype == want.dtype
                np.testing.assert_array_equal(got, want, err_msg=f"{nbits} bits, {count} values, signed={signed}")


@pytest.mark.slow
def test_runner_thread_count_does_not_change_the_numbers(packages):
    """The runner sizes numpy's BLAS pool to the free cores (edgekit.core.threads): 1 or 2
    threads split the products by rows and columns, never a sum, so the bits are the same."""
    from edgekit.targets.coreml.converter import InterpreterRunner

    path, model = packages["palettize6-classes"]
    interp = Interpreter(path)
    one, two = InterpreterRunner(interp, record=None, threads=1), InterpreterRunner(interp, record=None, threads=2)
    assert (one.threads, two.threads) == (1, 2)
    for feeds in _feeds(model, SeqLen.parse("16")):
        a, b = one.run(feeds), two.run(feeds)
        for k in a:
            assert a[k].dtype == np.float32
            np.testing.assert_array_equal(a[k], b[k])
