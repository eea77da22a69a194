"""Issue 24, defect 1: the accuracy gate judges the staged file; a re-export that is not installed
leaves the kept pair's record untouched (the tester's reproduction, as commands)."""
from __future__ import annotations

import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.core.tasks import Task

SQUAD = Path(__file__).parents[1] / "data" / "squad-dev-50.json.xz"


def _edgekit(*argv: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    # A subprocess, as the tester ran it (and so that the same test runs against any edgekit tree).
    return subprocess.run([sys.executable, "-m", "edgekit", *map(str, argv)], cwd=cwd, capture_output=True,
                          text=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.mark.slow
def test_gate_of_a_reexport_that_is_not_installed_keeps_the_previous_record(tiny_model, tmp_path):
    model = tiny_model("bert", Task.QUESTION_ANSWERING)
    squad = json.loads(lzma.open(SQUAD, "rt", encoding="utf-8").read())
    pairs = [(q["question"], p["context"].replace("\n", " ")) for a in squad["data"] for p in a["paragraphs"]
             for q in p["qas"]]
    (tmp_path / "cal_120_pairs.txt").write_text("".join(f"{q}\t{c}\n" for q, c in (pairs * 3)[:120]))
    (tmp_path / "cal_1_line.txt").write_text(f"{pairs[0][0]}\t{pairs[0][1]}\n")
    common = ["export", "--model", model, "--target", "onnx", "--precision", "int8-static", "--seq-len", "64",
              "--out", "og"]
    first = _edgekit(*common, "--calibration", "cal_120_pairs.txt", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    (art,) = (tmp_path / "og").glob("*.onnx")
    sidecar = art.with_name(art.name + ".json")
    kept = sidecar.read_text()
    assert json.loads(kept)["status"] == "validated"
    # Calibrated on one line with an impossible cosine: parity fails, the gate still runs, nothing is installed.
    second = _edgekit(*common, "--calibration", "cal_1_line.txt", "--min-cosine", "0.99999",
                      "--eval-data", SQUAD, "--eval-n", "5", cwd=tmp_path)
    assert second.returncode == 1, second.stderr[-3000:]
    assert "kept the previous validated" in second.stderr
    assert sidecar.read_text() == kept, "the kept pair's record was rewritten by the re-export's gate"
    check = _edgekit("validate", art, cwd=tmp_path)
    assert check.returncode == 0, check.stderr[-3000:]
    assert json.loads(sidecar.read_text())["options"]["calibration"] == json.loads(kept)["options"]["calibration"]
