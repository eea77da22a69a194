"""A file and its record are one thing: every way of pulling them apart is caught (issue 12, "Why")."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgekit.check import integrity
from edgekit.cli import main
from edgekit.core.config import ExportOptions, SeqLen
from edgekit.core.errors import IntegrityError
from edgekit.build.stage import export_model
from edgekit.model.modeling import load_model, load_tokenizer
from edgekit.core.precision import Precision
from edgekit.core.record import ArtifactRecord
from edgekit.core.tasks import Task


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    """A folder with validated tiny torchscript fp32/int8-dynamic and onnx fp32/int8-dynamic pairs."""
    src = tiny_model("bert", Task.FEATURE_EXTRACTION)
    model = load_model(src, Task.FEATURE_EXTRACTION)
    tok = load_tokenizer(src)
    out = tmp_path_factory.mktemp("exported")
    paths = {}
    for target in ("torchscript", "onnx"):
        for p in (Precision.FP32, Precision.INT8_DYNAMIC):
            opts = ExportOptions(target=target, task=Task.FEATURE_EXTRACTION, precision=p, seq_len=SeqLen.parse("16"))
            rec = export_model(model, opts, out, tokenizer=tok, verbose=False)
            assert rec.status.value == "validated", rec.reason
            paths[(target, p.value)] = out / rec.artifact
    return out, paths


@pytest.fixture
def folder(exported, tmp_path):
    """A private copy of the exported folder that a test may damage."""
    out, paths = exported
    dst = tmp_path / "out"
    shutil.copytree(out, dst)
    return dst, {k: dst / v.name for k, v in paths.items()}


def _edit(artifact: Path, **changes) -> None:
    sidecar = ArtifactRecord.sidecar_path(artifact)
    d = json.loads(sidecar.read_text())
    d.update(changes)
    sidecar.write_text(json.dumps(d))


def test_contents_identify_format_and_precision(exported):
    _, paths = exported
    for (target, precision), path in paths.items():
        c = integrity.read_contents(path)
        assert c.format == target and c.precisions == {precision}, (path.name, c)
        assert integrity.problems(path, ArtifactRecord.load(path)) == []


def test_mismatched_record_copied_beside_other_file(folder, capsys):
    """An fp32 file copied under a new name beside the record of an int8-dynamic export."""
    out, paths = folder
    fp32, int8 = paths[("onnx", "fp32")], paths[("onnx", "int8-dynamic")]
    copy = out / "copied.onnx"
    shutil.copy(fp32, copy)
    shutil.copy(ArtifactRecord.sidecar_path(int8), ArtifactRecord.sidecar_path(copy))
    assert main(["validate", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "disagree" in err and "size" in err and "sha256" in err
    assert "record says int8-dynamic but the file holds fp32" in err
    assert "Traceback" not in err


def test_zeroed_sha_fails_validate_and_bench(folder, capsys):
    out, paths = folder
    pt = paths[("torchscript", "fp32")]
    _edit(pt, sha256="0" * 64)
    assert main(["validate", str(pt)]) == 1
    assert "sha256: record 000000000000" in capsys.readouterr().err
    assert main(["bench", str(pt), "--runs", "1", "--warmup", "0"]) == 1
    assert "nothing was timed" in capsys.readouterr().err


def test_relabelled_precision_is_an_error_not_a_looser_tolerance(folder, capsys):
    out, paths = folder
    pt = paths[("onnx", "fp32")]
    _edit(pt, precision="fp16")
    assert main(["validate", str(pt)]) == 1
    assert "record says fp16 but the file holds fp32" in capsys.readouterr().err
    # --rebind accepts a changed file, never a precision its contents contradict
    assert main(["validate", str(pt), "--rebind"]) == 1
    assert "even after --rebind" in capsys.readouterr().err


def test_renamed_suffix(folder, capsys):
    """A TorchScript file renamed .onnx (with its record) is not validated as anything."""
    out, paths = folder
    pt = paths[("torchscript", "fp32")]
    renamed = out / "renamed.onnx"
    pt.rename(renamed)
    ArtifactRecord.sidecar_path(pt).rename(ArtifactRecord.sidecar_path(renamed))
    assert main(["validate", str(renamed)]) == 1
    err = capsys.readouterr().err
    assert "the record says torchscript (.pt) but the file is named renamed.onnx" in err
    assert main(["validate", str(renamed), "--rebind"]) == 1  # a suffix is not rebound away
    assert "named renamed.onnx" in capsys.readouterr().err


def test_hand_edited_status_shows_in_report(folder, capsys):
    out, paths = folder
    pt = paths[("torchscript", "int8-dynamic")]
    _edit(pt, status="validated", tolerance={"max_abs": 1e-9})  # numbers that break their own tolerance
    assert main(["report", str(out)]) == 1  # a ❗ row fails the report (issue 24, defect 10)
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if "int8-dynamic" in line and "torchscript" in line)
    assert row.startswith("| ❗ |")
    assert "status validated but" in text and "max_abs" in text
    # the untouched rows keep their ✅
    assert sum(line.startswith("| ✅ |") for line in text.splitlines()) == 3


def test_report_flags_a_changed_file(folder, capsys):
    out, paths = folder
    path = paths[("onnx", "int8-dynamic")]
    shutil.copy(paths[("onnx", "fp32")], path)  # the file changed under its record
    assert main(["report", str(out)]) == 1
    text = capsys.readouterr().out
    assert "❗" in text and "sha256" in text and "file holds fp32" in text


@pytest.mark.parametrize("damage,reason", [
    (lambda s: s.write_text(s.read_text()[: len(s.read_text()) // 2]), "truncated or not JSON"),
    (lambda s: s.write_text(json.dumps({**json.loads(s.read_text()), "schema": 99})), "schema 99"),
])
def test_report_shows_an_unreadable_record_and_reports_the_rest(folder, capsys, damage, reason):
    """Defect 10: one unreadable record (truncated, or a schema this edgekit does not know) is a ❗
    row with the reason; the other rows are reported as before, and the report exits 1."""
    out, paths = folder
    broken = paths[("onnx", "int8-dynamic")]
    damage(ArtifactRecord.sidecar_path(broken))
    assert main(["report", str(out)]) == 1
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("| ❗ |"))
    assert "onnx" in row
    assert f"`{broken.name}` (unreadable)" in text and reason in text
    assert sum(line.startswith("| ✅ |") for line in text.splitlines()) == 3
    assert main(["report", str(out), "--format", "json"]) == 1
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["status"] for r in rows if r["artifact"] == broken.name] == ["unreadable"]
    from edgekit.api import report

    assert "❗" in report(out)  # the API's report shows it too


def test_report_of_only_unreadable_records_is_not_empty(folder, capsys):
    out, paths = folder
    for p in paths.values():
        ArtifactRecord.sidecar_path(p).write_text("{")
    assert main(["report", str(out)]) == 1
    assert capsys.readouterr().out.count("| ❗ |") == 4


def test_api_report_and_export_report_check_records_against_files(folder):
    """Defect 3 (report part): ``edgekit.report(dir)`` and the report.md that export writes check
    each record against its file, as ``edgekit report`` does."""
    from edgekit.api import report
    from edgekit.measure.render import write_reports

    out, paths = folder
    flip = paths[("torchscript", "fp32")]
    data = bytearray(flip.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flip.write_bytes(bytes(data))
    assert "sha256" in report(out) and "| ❗ |" in report(out)
    write_reports(out)
    assert "| ❗ |" in (out / "report.md").read_text()


def test_revalidation_writes_fresh_hash(folder, capsys):
    """A file changed on purpose: --rebind re-validates it and records the new hash and size."""
    out, paths = folder
    path = paths[("onnx", "fp32")]
    old = ArtifactRecord.load(path)
    import onnx

    m = onnx.load(str(path))
    m.producer_version = "rebuilt"  # same numbers, different bytes
    onnx.save(m, str(path))
    assert main(["validate", str(path)]) == 1
    assert main(["validate", str(path), "--rebind"]) == 0
    new = ArtifactRecord.load(path)
    assert new.sha256 != old.sha256 and new.sha256 == integrity.sha256_of(path)
    assert new.size_bytes == path.stat().st_size and new.status.value == "validated"
    assert integrity.problems(path, new) == []


def test_self_contradictions_recomputed_from_numbers():
    rec = ArtifactRecord(artifact="x.pt", target="torchscript", precision="fp32", task="masked-lm",
                         seq_len="16", status="validated", sha256="ab",
                         tolerance={"max_abs": 1e-4, "min_agreement": 0.99},
                         parity={"outputs": [{"name": "logits", "max_abs": 0.75, "cosine": 0.9, "psnr": 20.0}],
                                 "agreement": 0.5, "passed": False})
    from edgekit.core.record import Status

    rec.status = Status.VALIDATED
    found = integrity.self_contradictions(rec)
    assert any("max_abs 0.75" in f for f in found) and any("agreement" in f for f in found)
    rec.status = Status.PARITY_FAILED
    assert integrity.self_contradictions(rec) == []


def test_unknown_bytes_are_not_a_format(tmp_path):
    junk = tmp_path / "x.onnx"
    junk.write_bytes(b"hello world, not a model")
    with pytest.raises(IntegrityError, match="not a file format"):
        integrity.read_contents(junk)


@pytest.mark.slow
@pytest.mark.parametrize("target,precisions", [
    ("tflite", ("fp32", "fp16", "int8-dynamic")),
    ("coreml", ("fp16", "palettize4", "int8-weight")),
    ("executorch", ("fp32", "int8-dynamic")),
])
def test_contents_of_other_formats(tiny_model, tmp_path, target, precisions):
    from edgekit.core import registry

    conv = registry.get(target)
    if conv.missing_module():
        pytest.skip(f"{target} backend not installed")
    model = load_model(tiny_model("bert", Task.FEATURE_EXTRACTION), Task.FEATURE_EXTRACTION)
    for p in precisions:
        opts = ExportOptions(target=target, task=Task.FEATURE_EXTRACTION, precision=Precision(p),
                             seq_len=SeqLen.parse("16"))
        rec = export_model(model, opts, tmp_path, validate=False, verbose=False)
        c = integrity.read_contents(tmp_path / rec.artifact)
        assert c.format == target and p in c.precisions and len(c.precisions) <= 2, (p, c)
