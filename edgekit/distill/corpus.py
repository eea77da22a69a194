"""The embedded default corpus: docstrings of Python's standard library, split into sentences.

It is on every machine that runs Python, so the default distillation needs no download. Files are parsed with
:mod:`ast` (never imported or executed).
"""
from __future__ import annotations

import ast
import hashlib
import os
import re
import sysconfig
from collections.abc import Iterator
from pathlib import Path

_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'`])")
_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "lib2to3", "turtledemo"}


def _stdlib_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for f in sorted(filenames):
            if f.endswith(".py"):
                yield Path(dirpath) / f


def _docstrings(path: Path) -> Iterator[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (SyntaxError, ValueError):
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            d = ast.get_docstring(node)
            if d:
                yield d


def _sentences(doc: str) -> Iterator[str]:
    for para in re.split(r"\n\s*\n", doc):
        if ">>>" in para or para.lstrip().startswith(("-", "*", ":", "..")):
            continue  # doctests, lists and reST directives are not prose
        text = " ".join(para.split())
        for s in _SENT.split(text):
            s = s.strip()
            letters = sum(c.isalpha() for c in s)
            if 30 <= len(s) <= 300 and letters >= 0.6 * len(s) and " " in s:
                yield s


def stdlib_sentences(limit: int | None = None) -> list[str]:
    """Unique prose sentences from the standard library's docstrings, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    seen: set[str] = set()
    out: list[str] = []
    for f in _stdlib_files(root):
        for d in _docstrings(f):
            for s in _sentences(d):
                if s not in seen:
                    seen.add(s)
                    out.append(s)
                    if limit is not None and len(out) >= limit:
                        return out
    return out


def split_held_out(sentences: list[str], fraction: float = 0.02) -> tuple[list[str], list[str]]:
    """Deterministic train / held-out split by a hash of each sentence."""
    train, held = [], []
    for s in sentences:
        h = int(hashlib.blake2b(s.encode(), digest_size=4).hexdigest(), 16) / 2**32
        (held if h < fraction else train).append(s)
    return train, held


def write_corpus(path: str | os.PathLike, sentences: list[str]) -> Path:
    """Write one sentence per line, atomically; an identical existing file is left alone (its mtime is part of
    the token-cache key, and parallel processes write the same corpus)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(sentences) + "\n"
    if p.is_file() and p.read_text(encoding="utf-8") == text:
        return p
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, p)
    return p
