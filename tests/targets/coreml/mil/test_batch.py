"""The interpreter's fast paths give the same bits as the plain ones.

``Interpreter.run_batch`` (many samples through each op at once) against ``run`` per sample, on
exported packages of every layout edgekit writes (fp16, the ANE layout's conv/einsum, int8 with a
length range, palettes); the fp16 rounding, the fp16 accumulation and the sub-byte unpacking
against the plain numpy definitions they replace. Every comparison is exact: a batch may not
move a single bit of a verdict's numbers.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("coremltools")

from edgekit.core.config import ExportOptions, SeqLen  # noqa: E402
from edgekit.core.precision import Precision  # noqa: E402
from edgekit.core.tasks import Task  # noqa: E402
from edgekit.model.inputs import random_feeds  # noqa: E402
from edgekit.model.modeling import load_model, load_tokenizer  # noqa: E402
from edgekit.targets.coreml.mil import Interpreter  # noqa: E402
from edgekit.targets.coreml.mil.blob import unpack_bits  # noqa: E402
from edgekit.targets.coreml.mil.ops import fp16_accumulating, round_fp16, round_fp16_numpy  # noqa: E402

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


def _feeds(model, lengths, n=5):
    feeds = []
    for i, s in enumerate(lengths):
        feeds += random_feeds(model.config.vocab_size, s, model.input_names, n=n, seed=i)
    # Interleave the lengths: run_batch groups them itself and must return the caller's order.
    return feeds[::2] + feeds[1::2]


def _assert_same(single, batch):
    assert len(single) == len(batch)
    for a, b in zip(single, batch):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
            # Equal to float32 rounding: BLAS may split a batched matmul differently from one sample's
            # (thread count, blocking), which moves the last bit (seen: 2.4e-7 on one logit in CI at
            # load 15); a batching bug moves values by orders of magnitude more.
            np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.slow
@pytest.mark.parametrize("ane_like", [False, True], ids=["normal", "ane-like"])
@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_batched_runs_equal_per_sample_runs(packages, name, ane_like):
    path, model = packages[name]
    seq = SeqLen.parse(PACKAGES[name][3])
    lengths = sorted({seq.values[0], seq.values[-1], 20} if seq.kind == "range" else set(seq.values))
    feeds = _feeds(model, lengths)
    interp = Interpreter(path, ane_like=ane_like)
    single = [interp.run(f) for f in feeds]
    _assert_same(single, interp.run_batch(feeds))
    # Small batches (and a batch of one, which runs the plain path) give the same bits too.
    _assert_same(single, interp.run_batch(feeds, max_tokens=2 * max(lengths)))
    # Every op of these programs has a batch rule: none ran sample by sample.
    assert interp.per_sample_ops == {}


@pytest.mark.slow
def test_runner_batch_equals_runner_run_and_ane_twin_shares_weights(packages):
    from edgekit.targets.coreml.converter import InterpreterRunner

    path, model = packages["fp16-features"]
    interp = Interpreter(path)
    runner = InterpreterRunner(interp, record=None, threads=1)
    feeds = _feeds(model, [16])
    _assert_same([runner.run(f) for f in feeds], runner.run_batch(feeds))
    twin = interp.with_numerics(ane_like=True)
    assert twin.ane_like and not interp.ane_like and twin.consts is interp.consts
    _assert_same([Interpreter(path, ane_like=True).run(f) for f in feeds[:2]], twin.run_batch(feeds[:2]))


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
    assert got.dtype == np.float32 and x.size >= 4096
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), x[~same][:10]


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
