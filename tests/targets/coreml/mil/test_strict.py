"""The interpreter is strict at the edges: an unknown op input or a missing required one fails
validation naming the op (coremltools' own loader rejects such files); an op it does not implement
is validation-skipped, and `edgekit export` then exits non-zero unless --allow-skipped."""
from __future__ import annotations

import pytest

pytest.importorskip("coremltools")

from edgekit.core.config import ExportOptions, SeqLen  # noqa: E402
from edgekit.model.modeling import load_model, load_tokenizer  # noqa: E402
from edgekit.core.precision import Precision  # noqa: E402
from edgekit.core.record import Status  # noqa: E402
from edgekit.core.tasks import Task  # noqa: E402


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    from edgekit.build.stage import export_model

    path = tiny_model("bert", Task.FEATURE_EXTRACTION)
    model, tok = load_model(path, Task.FEATURE_EXTRACTION), load_tokenizer(path)
    out = tmp_path_factory.mktemp("coreml-strict")
    opts = ExportOptions(target="coreml", task=Task.FEATURE_EXTRACTION, precision=Precision.FP16,
                         seq_len=SeqLen.parse("16"))
    rec = export_model(model, opts, out, tokenizer=tok, verbose=False)
    assert rec.status == Status.VALIDATED, rec.reason
    return out / rec.artifact, rec, model, tok


def _edit_first(pkg, op_type, edit):
    """Edit the first ``op_type`` op of the package's spec in place; return its name."""
    from coremltools.proto import Model_pb2

    from edgekit.targets.coreml.mil.program import _manifest_model_path

    spec_path = _manifest_model_path(pkg)
    spec = Model_pb2.Model()
    spec.ParseFromString(spec_path.read_bytes())
    fn = spec.mlProgram.functions["main"]
    block = fn.block_specializations[fn.opset]
    op = next(o for o in block.operations if o.type == op_type)
    edit(op)
    spec_path.write_bytes(spec.SerializeToString())
    name = op.attributes["name"].immediateValue.tensor.strings.values[0] if "name" in op.attributes else op_type
    return name


def _copy(exported, tmp_path):
    import shutil

    src, rec, model, tok = exported
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst, rec, model, tok


def _validate(path, rec, model, tok):
    from edgekit.core import registry
    from edgekit.check.verdict import validate_artifact

    return validate_artifact(path, rec, model, tok, registry.get("coreml").tolerance(Precision.FP16), verbose=False)


def test_unknown_op_input_fails_with_the_op_name(exported, tmp_path):
    path, rec, model, tok = _copy(exported, tmp_path)

    def add_input(op):
        first = next(iter(op.inputs))
        op.inputs["surprise"].CopyFrom(op.inputs[first])

    name = _edit_first(path, "layer_norm", add_input)
    res = _validate(path, rec, model, tok)
    assert res.status == Status.PARITY_FAILED
    assert "layer_norm" in res.reason and "surprise" in res.reason and name in res.reason


def test_missing_required_op_input_fails_with_the_op_name(exported, tmp_path):
    path, rec, model, tok = _copy(exported, tmp_path)
    name = _edit_first(path, "linear", lambda op: op.inputs.pop("weight"))
    res = _validate(path, rec, model, tok)
    assert res.status == Status.PARITY_FAILED
    assert "linear" in res.reason and "'weight'" in res.reason and name in res.reason


@pytest.mark.slow
def test_unsupported_op_is_skipped_and_export_exits_non_zero(exported, tmp_path, monkeypatch):
    from edgekit import cli
    from edgekit.targets.coreml.mil import ops

    monkeypatch.delitem(ops.OPS, "layer_norm")
    path, rec, model, tok = _copy(exported, tmp_path)
    res = _validate(path, rec, model, tok)
    assert res.status == Status.VALIDATION_SKIPPED and "layer_norm" in res.reason
    src = exported[2].info.source
    args = ["export", "--model", src, "--task", "feature-extraction", "--target", "coreml", "--precision", "fp16",
            "--seq-len", "16", "--out", str(tmp_path / "cli")]
    assert cli.main(args) == 1
    assert cli.main(args + ["--allow-skipped"]) == 0


def test_fp16_accumulation_is_coarser_than_fp32_sums():
    import numpy as np

    from edgekit.targets.coreml.mil.ops import fp16_accumulating

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3, 384)).astype(np.float32), rng.normal(size=(384, 8)).astype(np.float32)
    ref = x.astype(np.float64) @ y.astype(np.float64)
    err16 = np.abs(fp16_accumulating(x, y) - ref).max()
    err32 = np.abs((x @ y).astype(np.float16).astype(np.float64) - ref).max()
    assert err16 > err32 and err16 < 0.05 * np.abs(ref).max()


def test_ane_like_numbers_are_reported_beside_the_normal_ones(exported, tmp_path):
    path, rec, model, tok = _copy(exported, tmp_path)
    res = _validate(path, rec, model, tok)
    ane = res.parity.ane_like
    assert res.status == Status.VALIDATED and ane is not None and ane.bound_applies is False and ane.outputs
    normal = {o.name: o.psnr for o in res.parity.outputs}
    assert all(o.psnr < normal[o.name] + 1 for o in ane.outputs)  # never better than the normal numbers
    assert all(o.cosine > 0.99 for o in ane.outputs)
