"""Task data files: SQuAD v1.1 JSON, JSON lines or a JSON list of records (one reader for eval,
the accuracy gate, finetune and ``distill task``)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from edgekit.core.errors import UsageError


def read_records(path: str | os.PathLike, limit: int | None = None) -> list[dict]:
    """JSON lines or a JSON list of objects (``{"data": [...]}`` is accepted too)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"task data {p} does not exist")
    if p.suffix == ".xz":
        import lzma

        text = lzma.open(p, "rt", encoding="utf-8").read()
    else:
        text = p.read_text(encoding="utf-8")
    if _is_squad(text):
        from edgekit.quality.squad import load_squad

        return [{"id": q.id, "question": q.question, "context": q.context,
                 "answers": {"text": list(q.answers), "answer_start": list(q.answer_starts)}}
                for q in load_squad(p, limit)]
    if text.lstrip().startswith("["):
        rows = json.loads(text)
    elif text.lstrip().startswith("{") and "\n{" not in text.strip():
        obj = json.loads(text)
        rows = obj.get("data", [obj]) if isinstance(obj, dict) else obj
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not rows or not all(isinstance(r, dict) for r in rows):
        raise UsageError(f"{p} holds no JSON objects; see `edgekit distill task --help` for the format")
    return rows[:limit] if limit else rows


def _is_squad(text: str) -> bool:
    """An official SQuAD file: one JSON object whose "data" holds articles with "paragraphs"."""
    head = text.lstrip()[:4096]
    return head.startswith("{") and '"data"' in head and '"paragraphs"' in head and "\n{" not in text.strip()[:200000]
