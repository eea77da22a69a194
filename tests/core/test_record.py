import json
import os

import pytest

from edgekit.core.config import SeqLen
from edgekit.core.errors import UsageError
from edgekit.core.precision import Precision
from edgekit.core.record import (ArtifactRecord, Quality, Status, TensorSpec, atomic_write_bytes, atomic_write_text,
                                 sha256_of, size_of)
from edgekit.core.tasks import Task


def test_record_roundtrip(tmp_path):
    art = tmp_path / "m.pt"
    art.write_bytes(b"abc")
    rec = ArtifactRecord(artifact="m.pt", target="torchscript", precision="fp32", task="masked-lm", seq_len="128",
                         status=Status.VALIDATION_SKIPPED, reason="why", inputs=[TensorSpec("input_ids", [1, 128], "int32")])
    side = rec.save(art)
    assert side.name == "m.pt.json"
    back = ArtifactRecord.load(art)
    assert back.status is Status.VALIDATION_SKIPPED and back.inputs[0].shape == [1, 128]
    assert json.loads(side.read_text())["status"] == "validation-skipped"
    # parsed once, held as types, written back as text
    assert back.precision is Precision.FP32 and back.task is Task.MASKED_LM and back.seq_len == SeqLen.parse("128")
    assert json.loads(side.read_text())["seq_len"] == "128" and back.to_dict() == rec.to_dict()


V1 = {"artifact": "m.onnx", "target": "onnx", "precision": "int8-dynamic", "task": "sequence-classification",
      "seq_len": "128", "status": "validated", "schema": 1,
      "source": {"source": "/m", "arch": "distilbert", "task": "sequence-classification", "token_types": "none",
                 "vocab_size": 99, "fp32_param_bytes": 4000},
      "options": {"ane": False, "token_types": "none", "opset": 17},
      "parity": {"samples": 8, "steps": [{"name": "load", "ok": True, "detail": "0.1 s"}],
                 "outputs": [{"name": "logits", "max_abs": 0.01, "mean_abs": 0.001, "cosine": 0.99, "psnr": 40.0}],
                 "agreement": 1.0, "agreement_metric": "label argmax", "tolerance": {}, "failures": [], "passed": True},
      "latency": {"p50_ms": 10.0, "p90_ms": 12.0, "mean_ms": 10.5, "std_ms": 1.0, "min_ms": 9.0, "runs": 5,
                  "warmup": 1, "threads": 2, "seq_len": 128, "eager_p50_ms": 30.0, "eager_p90_ms": 33.0}}


def test_schema_1_records_are_migrated_on_load():
    rec = ArtifactRecord.from_dict(V1)
    assert rec.schema == 2 and rec.precision is Precision.INT8_DYNAMIC and rec.seq_len.default == 128
    assert rec.parity.outputs[0].cosine == 0.99 and rec.parity.steps[0].ok and rec.parity.passed
    (m,) = rec.latency
    assert m.threads == 2 and m.artifact.p50_ms == 10.0 and m.eager.p50_ms == 30.0 and m.speedup == 3.0
    assert "token_types" not in rec.options and rec.source.token_types == "none"  # stored once


QUALITY = {"metric": "f1", "data": "dev.json.xz", "n": 200, "pytorch": 77.23, "artifact": 73.68, "drop": 3.55,
           "max_drop": 1.0, "same_answer": 0.9, "passed": False, "pytorch_metrics": {"exact_match": 66.0, "f1": 77.23},
           "artifact_metrics": {"exact_match": 62.5, "f1": 73.68}, "seconds_per_question": 0.05}


def test_quality_is_typed_and_optional(tmp_path):
    assert ArtifactRecord.from_dict(V1).quality is None  # records without the accuracy gate still load
    # a schema-1 record written by the first accuracy gate (quality as a plain dict) loads typed
    rec = ArtifactRecord.from_dict({**V1, "quality": QUALITY})
    assert isinstance(rec.quality, Quality) and rec.quality.scored and rec.quality.drop == 3.55
    assert rec.quality.artifact_metrics["exact_match"] == 62.5 and rec.quality.passed is False
    art = tmp_path / "m.onnx"
    art.write_bytes(b"x")
    rec.save(art)
    back = ArtifactRecord.load(art)
    assert back.quality == rec.quality and json.loads(art.with_name("m.onnx.json").read_text())["quality"]["n"] == 200
    skipped = ArtifactRecord.from_dict({**V1, "quality": {"skipped": "the file was not run"}})
    assert not skipped.quality.scored and skipped.quality.skipped == "the file was not run"


def test_unknown_schema_fails_naming_it(tmp_path):
    with pytest.raises(UsageError, match="schema 7"):
        ArtifactRecord.from_dict({**V1, "schema": 7})
    (tmp_path / "x.pt.json").write_text('{"artifact": "x.pt"}')
    with pytest.raises(UsageError, match="not a readable edgekit record"):
        ArtifactRecord.load(tmp_path / "x.pt")


@pytest.mark.parametrize("write, old, new", [(atomic_write_text, "old", "new"),
                                             (atomic_write_bytes, b"\xfd7zXZ\x00old", b"\xfd7zXZ\x00new")])
def test_atomic_write_leaves_no_temp_on_failure(tmp_path, monkeypatch, write, old, new):
    target = tmp_path / "x.json"
    write(target, old, durable=True)
    assert (target.read_text() if isinstance(old, str) else target.read_bytes()) == old
    assert oct(target.stat().st_mode & 0o777) == "0o644"

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write(target, new)
    assert (target.read_text() if isinstance(old, str) else target.read_bytes()) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_sha_and_size_of_folder(tmp_path):
    d = tmp_path / "pkg.mlpackage"
    (d / "sub").mkdir(parents=True)
    (d / "a").write_bytes(b"1")
    (d / "sub" / "b").write_bytes(b"22")
    assert size_of(d) == 3
    h1 = sha256_of(d)
    (d / "sub" / "b").write_bytes(b"23")
    assert sha256_of(d) != h1
