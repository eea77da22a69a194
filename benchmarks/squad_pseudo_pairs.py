"""Unlabelled question-answering inputs made from SQuAD *train* alone, for a distillation phase on task-shaped
text (issue 26 probe: "more task data").

Why: after the general phase on Wikipedia, the student's final hidden states are ten times further from the
teacher's on SQuAD windows (squared error about 31 on 64 training windows) than on the Wikipedia text it
learned them on (about 3): a QA teacher's last layer works differently on a real question than on a
Wikipedia sentence standing in for one. This script makes more inputs of the task's own shape without
new labels, TinyBERT's "augmented task data" in a form that needs no other model: every training question
meets

* ``other``: another paragraph of its own article (same topic, the answer usually absent: the teacher's
  start/end distribution says where it would look), and
* ``distractor``: its own paragraph joined with another paragraph of the article, in a random order (the
  answer present among distractors).

The records carry no answers (``answer_start`` empty), so only the teacher's outputs can teach from them:
run ``edgekit distill task`` on them with ``--alpha-task 0``. Only the train file is read; DEV is never
touched. Article of a question: the second field of its id (``recon11tr_<article>_<paragraph>_<question>``);
ids of another form (the official file's hashes) put every context in one article.

    .venv/bin/python benchmarks/squad_pseudo_pairs.py --out PAIRS.jsonl.xz
    .venv/bin/edgekit distill task --task qa --teacher TEACHER --student GD --data PAIRS.jsonl.xz \\
        --alpha-task 0 --alpha-ce 1 --alpha-general 0.1 --steps 3000 ... --out AUG
    .venv/bin/edgekit distill task --task qa --teacher TEACHER --student AUG --data TRAIN ... --out OUT

Measured (session 28, ``results/squad_quality.md``, "Pseudo-pairs of SQuAD train"): between a 6,000-step
general phase and the labelled epoch, 3,000 steps on these pairs gave the 3-layer student +1.11 F1
[+0.61, +1.59] on all 5,397 DEV questions, 97.8% of the equal-budget teacher (one run).
"""
from __future__ import annotations

import argparse
import json
import lzma
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TRAIN = "../shared/data/squad-v1.1/train-reconstructed.json.xz"
MODES = ("other", "distractor")


def articles(rows: list[dict]) -> list[list[str]]:
    """The distinct contexts of each article, in file order (an article: the id's second ``_`` field)."""
    by: dict[str, list[str]] = {}
    for r in rows:
        key = r["id"].split("_")[1] if r["id"].count("_") >= 3 else "all"
        ctxs = by.setdefault(key, [])
        if r["context"] not in ctxs:
            ctxs.append(r["context"])
    return list(by.values())


def pseudo_pairs(rows: list[dict], seed: int = 0) -> list[dict]:
    """Two unlabelled records per question (:data:`MODES`); questions of one-paragraph articles are skipped."""
    rng = random.Random(seed)
    art_of: dict[str, list[str]] = {}
    for ctxs in articles(rows):
        for c in ctxs:
            art_of[c] = ctxs
    out = []
    for r in rows:
        ctxs = art_of[r["context"]]
        others = [c for c in ctxs if c != r["context"]]
        if not others:
            continue
        other = rng.choice(others)
        joined = [r["context"], rng.choice(others)]
        rng.shuffle(joined)
        for mode, ctx in zip(MODES, (other, " ".join(joined))):
            out.append({"id": f"{r['id']}_{mode}", "question": r["question"], "context": ctx,
                        "answers": {"text": [], "answer_start": []}})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", default=TRAIN, help=f"SQuAD train file (default {TRAIN})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="JSON lines, .xz-compressed when the name ends in .xz")
    a = p.parse_args(argv)

    from edgekit.core.record import atomic_write_bytes
    from edgekit.quality.data import read_records

    rows = read_records(a.train)
    pairs = pseudo_pairs(rows, a.seed)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in pairs)
    out = Path(a.out)
    data = text.encode("utf-8")
    # Through a temp file and a rename: an interrupted run leaves no truncated .xz for `distill task` to refuse.
    atomic_write_bytes(out, lzma.compress(data, preset=6) if out.suffix == ".xz" else data)
    n = {m: sum(r["id"].endswith(m) for r in pairs) for m in MODES}
    print(f"{len(pairs):,} records from {len(rows):,} questions ({n}) -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
