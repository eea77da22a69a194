import json
import os

from edgekit.record import ArtifactRecord, Status, TensorSpec, atomic_write_text, sha256_of, size_of


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


def test_atomic_write_leaves_no_temp_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    atomic_write_text(target, "old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    try:
        atomic_write_text(target, "new")
    except OSError:
        pass
    assert target.read_text() == "old"
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
