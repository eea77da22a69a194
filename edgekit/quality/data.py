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
    text = _read_text(p)
    if _is_squad(text):
        from edgekit.quality.squad import load_squad

        return [{"id": q.id, "question": q.question, "context": q.context,
                 "answers": {"text": list(q.answers), "answer_start": list(q.answer_starts)}}
                for q in load_squad(p, limit)]
    try:
        if text.lstrip().startswith("["):
            rows = json.loads(text)
        elif text.lstrip().startswith("{") and "\n{" not in text.strip():
            obj = json.loads(text)
            rows = obj.get("data", [obj]) if isinstance(obj, dict) else obj
        else:
            rows = []
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except ValueError as e:
                        raise UsageError(f"{p} line {n} is not JSON ({e}): task data is SQuAD v1.1 JSON, a JSON "
                                         "list or JSON lines; see `edgekit distill task --help`") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"{p} line {e.lineno} is not valid JSON ({e.msg}, column {e.colno}): task data is "
                         "SQuAD v1.1 JSON, a JSON list or JSON lines") from None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise UsageError(f"{p} holds no JSON objects; see `edgekit distill task --help` for the format")
    return rows[:limit] if limit else rows


def _read_text(p: Path) -> str:
    """The file as UTF-8 text; a binary, non-UTF-8 or damaged .xz file is a usage error naming it."""
    import lzma

    try:
        if p.suffix == ".xz":
            with lzma.open(p, "rt", encoding="utf-8") as f:
                return f.read()
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = (p.read_bytes()[: e.start].count(b"\n") + 1) if p.suffix != ".xz" else None
        at = f" (line {line})" if line else ""
        raise UsageError(f"{p} is not UTF-8 text{at}: task data is SQuAD v1.1 JSON or JSON lines") from None
    except (lzma.LZMAError, EOFError) as e:
        raise UsageError(f"{p} is not a readable .xz file ({e})") from None


def _is_squad(text: str) -> bool:
    """An official SQuAD file: one JSON object whose "data" holds articles with "paragraphs"."""
    head = text.lstrip()[:4096]
    return head.startswith("{") and '"data"' in head and '"paragraphs"' in head and "\n{" not in text.strip()[:200000]
