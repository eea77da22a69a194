"""End-to-end: export -> reload in the target's own runtime -> parity, for the PyTorch-family targets."""
import json

import numpy as np
import pytest

from edgekit.core.config import ExportOptions, SeqLen
from edgekit.build.stage import export_model
from edgekit.model.modeling import load_model, load_tokenizer
from edgekit.core.precision import Precision
from edgekit.core.record import ArtifactRecord, Status
from edgekit.model.samples import TEXT_SAMPLES
from edgekit.core.tasks import Task

CASES = [
    ("torchscript", Precision.FP32), ("torchscript", Precision.INT8_DYNAMIC),
    ("torchscript-lite", Precision.FP32), ("torchscript-lite", Precision.INT8_DYNAMIC),
    ("executorch", Precision.FP32), ("executorch", Precision.INT8_DYNAMIC),
]


@pytest.fixture(scope="module")
def qa_model(tiny_model):
    path = tiny_model("bert", Task.QUESTION_ANSWERING, hidden=64)
    return load_model(path, Task.QUESTION_ANSWERING), load_tokenizer(path)


@pytest.mark.slow
@pytest.mark.parametrize("target,precision", CASES, ids=[f"{t}-{p}" for t, p in CASES])
def test_export_reload_parity(qa_model, tmp_path, target, precision):
    pytest.importorskip("executorch") if target == "executorch" else None
    model, tok = qa_model
    opts = ExportOptions(target=target, task=Task.QUESTION_ANSWERING, precision=precision, seq_len=SeqLen.parse("32"))
    rec = export_model(model, opts, tmp_path, tokenizer=tok, verbose=False)
    path = tmp_path / rec.artifact
    assert path.is_file() and rec.size_bytes == path.stat().st_size
    assert rec.status == Status.VALIDATED, rec.reason
    assert [t.name for t in rec.inputs] == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(t.dtype == "int32" and t.shape == [1, 32] for t in rec.inputs)
    assert [t.name for t in rec.outputs] == ["start_logits", "end_logits"]
    parity = rec.parity
    assert parity.samples == 4 + TEXT_SAMPLES  # 4 random + the shipped real SQuAD dev pairs
    assert parity.text_samples == TEXT_SAMPLES and parity.judged is not None
    assert [s.name for s in parity.steps] == ["load", "input names", "output names", "shapes", "values",
                                                   "task agreement"]
    for out in parity.outputs:
        assert np.isfinite(out.max_abs) and out.cosine > 0.9
        if precision == Precision.FP32:
            assert out.max_abs <= 1e-4
    # the sidecar on disk is the record returned
    on_disk = json.loads(ArtifactRecord.sidecar_path(path).read_text())
    assert on_disk["sha256"] == rec.sha256 and on_disk["status"] == "validated"
    assert on_disk["versions"]["torch"] and on_disk["source"]["arch"] == "bert"
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.slow
def test_executorch_static_int8_does_not_collapse(tiny_model, tmp_path):
    """Static int8 on random tiny weights may flip near-tied decisions, but must not collapse
    (cosine 0.12 was what a quantised attention-mask add produced) and its status must follow
    its numbers."""
    pytest.importorskip("executorch")
    path = tiny_model("distilbert", Task.FEATURE_EXTRACTION, hidden=64)
    model, tok = load_model(path, Task.FEATURE_EXTRACTION), load_tokenizer(path)
    opts = ExportOptions(target="executorch", task=model.task, precision=Precision.INT8_STATIC, seq_len=SeqLen.parse("32"))
    rec = export_model(model, opts, tmp_path, tokenizer=tok, verbose=False)
    assert rec.status in (Status.VALIDATED, Status.PARITY_FAILED)
    cosines = [o.cosine for o in rec.parity.outputs]
    assert min(cosines) >= 0.85, cosines
    ok = rec.parity.agreement >= rec.tolerance["min_agreement"] and min(cosines) >= rec.tolerance["min_cosine"]
    assert (rec.status == Status.VALIDATED) == ok


@pytest.mark.slow
def test_int8_is_smaller_than_fp32(tiny_model, tmp_path):
    path = tiny_model("distilbert", Task.MASKED_LM, hidden=128)
    model = load_model(path, Task.MASKED_LM)
    sizes = {}
    for p in (Precision.FP32, Precision.INT8_DYNAMIC):
        rec = export_model(model, ExportOptions(target="torchscript", task=Task.MASKED_LM, precision=p,
                                                seq_len=SeqLen.parse("16")), tmp_path, validate=False, verbose=False)
        assert rec.status == Status.VALIDATION_SKIPPED and "not requested" in rec.reason
        sizes[p] = rec.size_bytes
    assert sizes[Precision.INT8_DYNAMIC] < 0.6 * sizes[Precision.FP32]


def test_torchscript_trace_runs_other_lengths_in_range(tiny_model, tmp_path):
    path = tiny_model("distilbert", Task.SEQUENCE_CLASSIFICATION)
    model = load_model(path, Task.SEQUENCE_CLASSIFICATION)
    rec = export_model(model, ExportOptions(target="torchscript", task=model.task, seq_len=SeqLen.parse("8:48")),
                       tmp_path, verbose=False)
    assert rec.status == Status.VALIDATED, rec.reason
    assert rec.inputs[0].shape == [1, "seq"]
    # parity ran at both ends of the declared range and one length between (no tokenizer: random only)
    lengths = rec.parity.lengths
    assert len(lengths) == 3 and lengths[0] == 8 and lengths[-1] == 48 and 8 < lengths[1] < 48
    assert rec.parity.samples == 4 * 3 and rec.parity.inputs_note == "random inputs only"


@pytest.mark.slow
def test_executorch_buckets_are_one_dynamic_program(qa_model, tmp_path):
    """``--seq-len 32,48,64``: one program with a bounded dynamic axis, validated at every length."""
    pytest.importorskip("executorch")
    import torch

    from edgekit.core import registry

    model, tok = qa_model
    opts = ExportOptions(target="executorch", task=Task.QUESTION_ANSWERING, seq_len=SeqLen.parse("32,48,64"))
    rec = export_model(model, opts, tmp_path, tokenizer=tok, verbose=False)
    assert rec.status == Status.VALIDATED, rec.reason
    assert rec.parity.samples == 3 * (4 + TEXT_SAMPLES)  # 4 random + the real samples, per length
    assert rec.options["dynamic_seq"] == {"max": 64, "validated_lengths": [32, 48, 64]}
    runner = registry.get("executorch").load(tmp_path / rec.artifact, rec)
    rng = np.random.default_rng(0)
    for seq in (32, 40, 64):  # a length between buckets runs too: the axis is dynamic up to its bound
        feed = {n: np.zeros((1, seq), np.int32) for n in model.input_names}
        feed["input_ids"][0, : seq - 5] = rng.integers(5, 100, seq - 5)
        feed["attention_mask"][0, : seq - 5] = 1
        got = runner.run(feed)
        with torch.no_grad():
            ref = model(*(torch.from_numpy(feed[n]) for n in model.input_names))
        np.testing.assert_allclose(got["start_logits"], ref[0].numpy(), atol=1e-4)
