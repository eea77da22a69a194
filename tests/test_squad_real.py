"""The first real-answer check: the shared SQuAD model, exported to int8, still answers real dev questions.

Exports ``../shared/models/minilm-l6-squad`` to TFLite int8 and ONNX int8 at 384 through ``edgekit export
--eval-data`` (the accuracy gate) and fails when either file's F1 on 200 dev questions drops more than 1.0
point below the PyTorch model's on the same questions. Skipped, with the reason, on a fresh clone (no
``../shared``).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.cli import main

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT.parent / "shared" / "models" / "minilm-l6-squad"
DEV = ROOT.parent / "shared" / "data" / "squad-v1.1" / "dev-even-articles.json.xz"
N = 200
#: The TFLite int8 file an app ships (see benchmarks/results/squad_quality.md for why this one).
TFLITE_INT8 = ["--precision", "int8-weight"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (MODEL / "config.json").is_file() or not DEV.is_file(),
                       reason="needs ../shared/models/minilm-l6-squad and ../shared/data/squad-v1.1 (absent in a "
                              "fresh clone): the real-answer check runs where the shared model and dev set are"),
]


@pytest.mark.parametrize("target, flags", [
    ("tflite", TFLITE_INT8),
    # A known defect, measured: ONNX int8-dynamic drops 3.56 F1 on these 200 questions (77.23 -> 73.68; 0.21 on
    # the first 1,000, with 9.1% of answers changed). strict: the day it keeps F1 this test says so.
    pytest.param("onnx", ["--precision", "int8-dynamic"], marks=pytest.mark.xfail(
        strict=True, reason="ONNX int8-dynamic loses 3.56 F1 on the first 200 dev questions (known, see "
                            "benchmarks/results/squad_quality.md)")),
], ids=["tflite-int8", "onnx-int8"])
def test_int8_file_keeps_f1_on_real_questions(target, flags, tmp_path, capsys):
    from edgekit.record import ArtifactRecord

    main(["export", "--model", str(MODEL), "--target", target, *flags, "--seq-len", "384",
                 "--out", str(tmp_path), "--eval-data", str(DEV), "--eval-n", str(N), "--threads", "2"])
    art = next(p for p in tmp_path.iterdir() if p.suffix in (".tflite", ".onnx"))
    rec = ArtifactRecord.load(art)
    q = rec.quality
    assert q and q.n == N and q.metric == "f1", rec.quality
    assert q.pytorch > 60, q  # the shared model really answers (F1 ~72 on dev)
    assert q.drop <= 1.0, f"{art.name}: F1 {q.artifact:.2f} vs PyTorch {q.pytorch:.2f} on {N} dev questions"
    # Only the F1 drop decides here: ONNX int8-dynamic keeps F1 but fails parity's 97% span agreement on
    # 8 golden inputs (a separate finding, recorded in benchmarks/results/squad_quality.md).
    assert q.passed, rec.reason
