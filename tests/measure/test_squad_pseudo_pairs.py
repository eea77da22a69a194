"""benchmarks/squad_pseudo_pairs.py: unlabelled (question, paragraph) records made from train questions and
the other paragraphs of their own article."""
from __future__ import annotations

import json
import lzma

from edgekit.quality.data import read_records


def _rows() -> list[dict]:
    a0 = ["Alpha one. Alpha two.", "Beta one. Beta two.", "Gamma one."]
    rows = []
    for p, ctx in enumerate(a0):
        for q in range(2):
            rows.append({"id": f"recon11tr_000_{p:03d}_{q:02d}", "question": f"q{p}{q}?", "context": ctx,
                         "answers": {"text": [ctx.split()[0]], "answer_start": [0]}})
    rows.append({"id": "recon11tr_001_000_00", "question": "lonely?", "context": "Only paragraph.",
                 "answers": {"text": ["Only"], "answer_start": [0]}})
    return rows


def test_pairs_stay_in_their_article_and_carry_no_answers(benchmark_script):
    sp = benchmark_script("squad_pseudo_pairs")
    rows = _rows()
    pairs = sp.pseudo_pairs(rows, seed=0)
    assert len(pairs) == 2 * 6  # two per question; the one-paragraph article gives none
    own = {r["id"]: r["context"] for r in rows}
    article0 = {r["context"] for r in rows if r["id"].startswith("recon11tr_000")}
    for r in pairs:
        qid, mode = r["id"].rsplit("_", 1)
        assert r["answers"] == {"text": [], "answer_start": []}
        if mode == "other":
            assert r["context"] in article0 and r["context"] != own[qid]
        else:
            assert mode == "distractor" and own[qid] in r["context"]
            rest = r["context"].replace(own[qid], "", 1).strip()
            assert rest in article0 and rest != own[qid]
    assert sp.pseudo_pairs(rows, seed=0) == pairs and sp.pseudo_pairs(rows, seed=1) != pairs


def test_the_file_is_task_data(benchmark_script, tmp_path):
    sp = benchmark_script("squad_pseudo_pairs")
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in _rows()))
    out = tmp_path / "pairs.jsonl.xz"
    assert sp.main(["--train", str(train), "--out", str(out)]) == 0
    with lzma.open(out, "rt") as f:
        assert len(f.read().splitlines()) == 12
    assert read_records(out) == sp.pseudo_pairs(_rows(), seed=0)  # the reader distill task uses
