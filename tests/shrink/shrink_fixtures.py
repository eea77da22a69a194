"""Helpers for the shrink tests: the tiny SQuAD slice and the training settings that make a run take seconds.

A uniquely named module (not conftest) so that test files can import it whatever conftest pytest loaded last
(``from conftest import ...`` took tests/distill's conftest when both folders were listed).
"""
from __future__ import annotations

import json
import lzma
from pathlib import Path

SLICE = Path(__file__).parents[1] / "data" / "squad-dev-50.json.xz"
#: Training settings that make a run take seconds: short windows, small batches.
TINY_TRAINING = {"batch_size": 4, "max_len": 128, "doc_stride": 32}


def squad(path: Path, garble: bool = False, n: int | None = None) -> Path:
    """The 50-question slice as plain SQuAD JSON; ``garble``: every gold answer replaced by nonsense."""
    d = json.loads(lzma.open(SLICE, "rt", encoding="utf-8").read())
    kept = 0
    for a in d["data"]:
        for p in a["paragraphs"]:
            if n is not None:
                p["qas"] = p["qas"][:max(0, n - kept)]
                kept += len(p["qas"])
            if garble:
                for q in p["qas"]:
                    q["answers"] = [{"text": "zqx vvk", "answer_start": 0} for _ in q["answers"]]
    d["data"] = [a for a in d["data"] if any(p["qas"] for p in a["paragraphs"])]
    path.write_text(json.dumps(d))
    return path
