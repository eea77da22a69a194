"""One QA geometry: export stores it, and eval, the accuracy gate, bundle/golden.json and the apps'
card all window text with it (issue 23: the gate scored 128-token strides, the app ran 96)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgekit.cli import main
from edgekit.core.geometry import QAGeometry, stride_for
from edgekit.core.record import ArtifactRecord
from edgekit.core.tasks import Task

SQUAD = Path(__file__).parent / "data" / "squad-dev-50.json.xz"


def test_one_stride_rule():
    assert [stride_for(n) for n in (64, 128, 256, 384, 512)] == [16, 32, 64, 96, 128]
    g = QAGeometry.for_lengths([256, 128, 384])
    assert g.lengths == (128, 256, 384) and g.doc_stride == stride_for(384) and g.buckets == (128, 256, 384)
    assert QAGeometry.from_dict(g.to_dict()) == g


@pytest.mark.slow
def test_export_gate_eval_and_bundle_share_the_geometry(tiny_model, tmp_path, monkeypatch, capsys):
    pytest.importorskip("ai_edge_litert")
    from edgekit.quality import qa

    seen: list[tuple[int, int, int]] = []
    real_init = qa.QAPipeline.__init__

    def spy(self, tokenizer, run, config=None, *a, **k):
        real_init(self, tokenizer, run, config, *a, **k)
        seen.append((self.config.max_seq_len, self.config.doc_stride, self.config.max_answer_len))

    monkeypatch.setattr(qa.QAPipeline, "__init__", spy)
    model = tiny_model("bert", Task.QUESTION_ANSWERING)
    out = tmp_path / "out"
    code = main(["export", "--model", str(model), "--target", "tflite", "--precision", "fp32", "--seq-len", "128",
                 "--out", str(out), "--eval-data", str(SQUAD), "--eval-n", "3", "--max-f1-drop", "100"])
    assert code == 0
    (path,) = out.glob("*.tflite")
    record = ArtifactRecord.load(path)
    want = (128, stride_for(128), 15)
    assert (record.qa.max_len, record.qa.doc_stride, record.qa.max_answer_len) == want
    assert record.quality is not None and record.quality.n == 3
    gate = [s for s in seen if s[0] == 128]
    assert gate and set(gate) == {want}, seen  # the gate's PyTorch reference and the file: same windows

    seen.clear()
    assert main(["eval", str(path), "--squad", str(SQUAD), "--n", "2", "--no-progress"]) == 0
    assert seen and set(seen) == {want}, seen

    bundle = tmp_path / "bundle"
    assert main(["bundle", "--app", "android", "--model", str(model), "--artifact", str(path), "--out", str(bundle)]) == 0
    golden = json.loads((bundle / "golden.json").read_text())
    card = json.loads((bundle / "model_card.json").read_text())
    assert golden["qa_geometry"] == record.qa.to_dict()
    assert {(c["config"]["max_seq_len"], c["config"]["doc_stride"], c["config"]["max_answer_len"])
            for c in golden["qa"]} == {want}
    assert (card["qa"]["max_seq_len"], card["qa"]["doc_stride"], card["qa"]["max_answer_len"]) == want
