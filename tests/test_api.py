"""The public API, through the README's example, run as written (on a tiny question-answering model)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import edgekit
from edgekit.core.tasks import Task

pytest.importorskip("onnxruntime")


def _readme_example() -> str:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("### Python API"):]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def test_public_names():
    assert {"export", "load", "validate", "bench", "report", "shrink"} <= set(edgekit.__all__)


@pytest.mark.slow
def test_readme_python_example_runs(tiny_model, tmp_path, monkeypatch, capsys):
    code = _readme_example()
    assert len(code.strip().splitlines()) <= 12
    model = tiny_model("distilbert", Task.QUESTION_ANSWERING)
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace("path/to/model", str(model)), "README.md", "exec"), {})  # noqa: S102
    out = capsys.readouterr().out
    assert "validated" in out and "'start_logits': (1, 384)" in out and "| ✅ | onnx | int8-dynamic |" in out
    record = edgekit.validate(tmp_path / "out" / next(p.name for p in (tmp_path / "out").glob("*.onnx")))
    assert record.status == edgekit.Status.VALIDATED
    assert edgekit.report(tmp_path / "out", "json").startswith("{")


def test_api_functions_have_real_signatures():
    import inspect

    for name in ("export", "validate", "bench", "load", "report", "shrink"):
        params = inspect.signature(getattr(edgekit, name)).parameters
        assert not any(p.kind == p.VAR_POSITIONAL for p in params.values()), name
    assert "target" in inspect.signature(edgekit.export).parameters
    assert {"export", "load", "validate", "report"} <= set(dir(edgekit))


@pytest.mark.slow
def test_export_returns_every_record_and_load_answers(tiny_model, tmp_path):
    model = tiny_model("distilbert", Task.QUESTION_ANSWERING)
    records = edgekit.export(model, target="onnx,ort", precision="fp32", seq_len="64,128", out=tmp_path)
    assert sorted(r.target for r in records) == ["onnx", "ort"]
    loaded = edgekit.load(tmp_path / records[0].artifact)
    answers = loaded("where is the tower", "the tower is in paris . " * 40)
    assert answers and isinstance(answers[0].text, str)
    # Multi-length file: a short question runs at the smallest bucket that holds it, as the apps do.
    assert loaded.feeds("where is the tower", "in paris")["input_ids"].shape == (1, 64)
    assert records[0].qa.lengths == (64, 128) and records[0].qa.doc_stride == 32


def _tamper_cases(path):
    """Ways a file stops being what its record says (and how to undo them)."""
    from edgekit.core.record import ArtifactRecord

    sidecar = ArtifactRecord.sidecar_path(path)
    original = (path.read_bytes(), sidecar.read_text())

    def flip():
        data = bytearray(original[0])
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    def edit_status():
        import json

        d = json.loads(original[1])
        d["parity"]["outputs"][0]["cosine"] = 0.5  # a number the status "validated" contradicts
        sidecar.write_text(json.dumps(d))

    def restore():
        path.write_bytes(original[0])
        sidecar.write_text(original[1])

    return [("flipped byte", flip), ("hand-edited status", edit_status)], restore


@pytest.mark.slow
def test_cli_and_api_validate_refuse_the_same_way(tiny_model, tmp_path, capsys):
    """`edgekit validate` and `edgekit.validate()` are one function: same refusal, same message."""
    from edgekit.cli import main
    from edgekit.core.errors import IntegrityError

    model = tiny_model("distilbert", Task.FEATURE_EXTRACTION)
    a, b = edgekit.export(model, target="onnx", precision="fp32,int8-dynamic", seq_len=32, out=tmp_path)
    pa, pb = tmp_path / a.artifact, tmp_path / b.artifact
    cases, restore = _tamper_cases(pa)
    from edgekit.core.record import ArtifactRecord

    pb_record = ArtifactRecord.sidecar_path(pb).read_text()

    def swap():  # two records swapped: each file now carries the other's record
        sa, sb = ArtifactRecord.sidecar_path(pa), ArtifactRecord.sidecar_path(pb)
        ta, tb = sa.read_text(), sb.read_text()
        sa.write_text(tb)
        sb.write_text(ta)

    for what, damage in cases + [("swapped records", swap)]:
        damage()
        capsys.readouterr()
        assert main(["validate", str(pa)]) == 1, what
        cli_msg = capsys.readouterr().err
        with pytest.raises(IntegrityError) as e:
            edgekit.validate(pa)
        assert str(e.value).splitlines()[0] in cli_msg, (what, str(e.value), cli_msg)
        restore()
        ArtifactRecord.sidecar_path(pb).write_text(pb_record)
    assert edgekit.validate(pa).status == edgekit.Status.VALIDATED


@pytest.mark.slow
def test_cli_and_api_bench_refuse_the_same_way_and_time_the_same_way(tiny_model, tmp_path, capsys):
    """`edgekit bench FILE` and `edgekit.bench()` are one function: same refusal of a file that is not
    what its record says (nothing timed), and a measurement appended to the record of a good one."""
    from edgekit.cli import main
    from edgekit.core.errors import IntegrityError
    from edgekit.core.record import ArtifactRecord

    model = tiny_model("distilbert", Task.FEATURE_EXTRACTION)
    (rec,) = edgekit.export(model, target="onnx", precision="fp32", seq_len=32, out=tmp_path)
    path = tmp_path / rec.artifact
    cases, restore = _tamper_cases(path)
    for what, damage in cases:
        damage()
        capsys.readouterr()
        assert main(["bench", str(path), "--runs", "2", "--warmup", "0", "--threads", "1"]) == 1, what
        cli_msg = capsys.readouterr().err
        with pytest.raises(IntegrityError) as e:
            edgekit.bench(path, runs=2, warmup=0, threads=1)
        assert str(e.value).splitlines()[0] in cli_msg, (what, str(e.value), cli_msg)
        restore()
    assert not ArtifactRecord.load(path).latency  # a refused file was never timed
    (timed,) = edgekit.bench(path, runs=2, warmup=0, threads=1)
    assert len(timed.latency) == 1 and timed.latency[0].threads == 1
    assert len(ArtifactRecord.load(path).latency) == 1  # saved in the record


def test_api_validate_of_a_missing_file_raises(tmp_path):
    from edgekit.core.errors import UsageError

    with pytest.raises(UsageError, match="does not exist"):
        edgekit.validate(tmp_path / "nothing.onnx")
