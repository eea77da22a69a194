"""The public API, through the README's example, run as written (on a tiny question-answering model)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import edgekit
from edgekit.tasks import Task

pytest.importorskip("onnxruntime")


def _readme_example() -> str:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("### Python API"):]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def test_public_names():
    assert {"export", "load", "validate", "report"} <= set(edgekit.__all__)


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
