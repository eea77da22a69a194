"""Parity on the phone's CPU: exported files validated in their aarch64 runtimes under QEMU.

TFLite fp32 and int8-dynamic and ONNX int8-dynamic files of a tiny model, each validated with
``--arch arm64`` on two CPU models; the records carry both architectures; a damaged file fails on
arm64 as on x86; an emulator that computes wrongly is an environment error (exit 2), not the file's
failure. Skips, with the reason, where the emulated environment is not built (``make arm64-env``).
"""
from __future__ import annotations

import json

import pytest

from edgekit.cli import main
from edgekit.core.record import ArtifactRecord, Status
from edgekit.core.tasks import Task

pytestmark = pytest.mark.slow
CPUS = "neoverse-n1,max"


@pytest.fixture(scope="module")
def arm64_ready():
    from edgekit import emulation

    reason = emulation.available()
    if reason:
        pytest.skip(f"no ARM64 emulation environment: {reason}")


@pytest.fixture(scope="module")
def files(arm64_ready, tiny_model, tmp_path_factory):
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("onnxruntime")
    model = tiny_model("bert", Task.SEQUENCE_CLASSIFICATION)
    out = tmp_path_factory.mktemp("arm64")
    assert main(["export", "--model", str(model), "--target", "tflite", "--precision", "fp32,int8-dynamic",
                 "--seq-len", "32", "--out", str(out), "--no-metadata"]) == 0
    assert main(["export", "--model", str(model), "--target", "onnx", "--precision", "int8-dynamic",
                 "--seq-len", "32", "--out", str(out)]) == 0
    return model, out


def test_validate_on_arm64_records_both_architectures(files, capsys):
    model, out = files
    paths = sorted(p for p in out.iterdir() if p.suffix in (".tflite", ".onnx"))
    assert len(paths) == 3
    for path in paths:
        assert main(["validate", str(path), "--arch", "arm64", "--arm64-cpus", CPUS]) == 0, path.name
        rec = ArtifactRecord.load(path)
        assert rec.status == Status.VALIDATED and rec.parity is not None  # x86
        assert rec.arm64["checked"] and set(rec.arm64["cpus"]) == {"neoverse-n1", "max"}
        for cpu, r in rec.arm64["cpus"].items():
            assert r["passed"] and r["qemu"] and r["samples"] == rec.parity.samples, (path.name, cpu, r)
    capsys.readouterr()
    assert main(["report", str(out), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert all(r["arm64"] == "✅ neoverse-n1, max" for r in rows if r["artifact"]), rows


def test_damaged_file_fails_on_arm64_as_on_x86(files, tmp_path):
    from edgekit.build.stage import export_model
    from edgekit.check.parity import damaged_copy
    from edgekit.core.config import ExportOptions, SeqLen
    from edgekit.core.precision import Precision
    from edgekit.model.modeling import load_model

    model, _ = files
    edge = load_model(str(model), Task.SEQUENCE_CLASSIFICATION)
    bad = damaged_copy(edge, "halved")
    opts = ExportOptions(target="tflite", task=Task.SEQUENCE_CLASSIFICATION, precision=Precision.FP32,
                         seq_len=SeqLen.parse("32"), flags={"metadata": False})
    rec = export_model(bad, opts, tmp_path, validate=False)
    path = tmp_path / rec.artifact
    # the damaged file validated against the honest model: fails on x86 and on every arm64 CPU model
    assert main(["validate", str(path), "--model", str(model), "--arch", "arm64", "--arm64-cpus", CPUS]) == 1
    after = ArtifactRecord.load(path)
    assert after.status == Status.PARITY_FAILED
    assert after.arm64["checked"] and not any(r["passed"] for r in after.arm64["cpus"].values())


def test_a_wrong_emulator_is_an_environment_error(files, monkeypatch, capsys):
    """A self-test the emulator fails refuses the check (exit 2) and names QEMU and the CPU model."""
    from edgekit.check import arm64 as arm64_check
    from edgekit.emulation import EmulatorMiscomputesError

    model, out = files
    path = next(out.glob("*.onnx"))
    before = ArtifactRecord.sidecar_path(path).read_text()

    def wrong(runtime, cpus):
        raise EmulatorMiscomputesError("QEMU 7.2.0 with CPU model max computes onnx dynamic-int8 MatMul wrongly",
                                       qemu_version="7.2.0", cpu="max", case="onnx dynamic-int8", error=9.1, bound=1e-5)

    monkeypatch.setattr(arm64_check, "self_test", wrong)
    assert main(["validate", str(path), "--arch", "arm64", "--arm64-cpus", "max"]) == 2
    err = capsys.readouterr().err
    assert "QEMU 7.2.0" in err and "max" in err and "Traceback" not in err
    assert ArtifactRecord.sidecar_path(path).read_text() == before  # the record is not touched


def test_targets_without_an_aarch64_runtime_say_not_checked(arm64_ready, tiny_model, tmp_path):
    model = tiny_model("distilbert", Task.FEATURE_EXTRACTION)
    assert main(["export", "--model", str(model), "--target", "torchscript", "--seq-len", "16", "--out",
                 str(tmp_path), "--arch", "arm64"]) == 0
    (path,) = tmp_path.glob("*.pt")
    rec = ArtifactRecord.load(path)
    assert rec.status == Status.VALIDATED and rec.arm64 == {"checked": False, "reason": rec.arm64["reason"]}
    assert "aarch64 torch" in rec.arm64["reason"]  # never a pass
