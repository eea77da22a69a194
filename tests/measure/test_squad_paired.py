"""benchmarks/squad_paired.py: per-question F1 from `edgekit eval --output`, shares of the teacher with their
interval (the gate's share_interval), paired differences, and the slice beside all of DEV."""
from __future__ import annotations

import json

import numpy as np


def test_shares_and_differences_are_paired(benchmark_script):
    sp = benchmark_script("squad_paired")
    rng = np.random.default_rng(1)
    teacher = rng.uniform(1, 100, 400)
    same = teacher.copy()
    shifted = teacher - 10.0  # 10 points lower on every question: every resample's difference is -10
    text = sp.report({"t": teacher, "same": same, "shifted": shifted}, "t", first=100)
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    share = 100 * (1 - 10.0 / teacher.mean())  # the gate's share_interval: the drop over the teacher's mean
    assert f"{share:.1f}% [{share:.1f}, {share:.1f}]" in rows["shifted"]
    assert "100.0% [100.0, 100.0]" in rows["same"] and rows["t"].endswith("| 100% |")
    assert f"| {teacher[:100].mean():.2f} | {teacher[100:].mean():.2f} |" in rows["t"]
    assert "| shifted − same | -10.00 [-10.00, -10.00] | -10.00 |" in text
    # a real spread gives a real interval around the point
    noisy = teacher + rng.normal(0, 20, 400)
    line = next(x for x in sp.report({"t": teacher, "noisy": noisy}, "t").splitlines() if x.startswith("| noisy"))
    lo, hi = (float(v) for v in line.split("[")[1].split("]")[0].split(","))
    assert lo < 100 * noisy.mean() / teacher.mean() < hi and hi - lo > 1

def test_scores_read_an_eval_output(benchmark_script, tmp_path):
    # Two questions of the committed dev slice: one answered right, one wrong; the folder's name is the key.
    from pathlib import Path

    from edgekit.quality.squad import load_squad

    sp = benchmark_script("squad_paired")
    squad = Path(__file__).resolve().parents[1] / "data" / "squad-dev-50.json.xz"
    qs = load_squad(squad)[:2]
    out = {"results": [{"name": "/x/model-a", "predictions": {
        qs[0].id: {"text": qs[0].answers[0], "start": 0, "end": 1},
        qs[1].id: {"text": "zzz qqq", "start": 0, "end": 1}}}]}
    (tmp_path / "a.json").write_text(json.dumps(out))
    got = sp.scores([str(tmp_path / "a.json")], str(squad))
    assert list(got) == ["model-a"] and got["model-a"][:2].tolist() == [100.0, 0.0]
    # the committed answers are xz-compressed: read the same
    import lzma

    (tmp_path / "a.json.xz").write_bytes(lzma.compress(json.dumps(out).encode()))
    assert sp.scores([str(tmp_path / "a.json.xz")], str(squad))["model-a"][:2].tolist() == [100.0, 0.0]
