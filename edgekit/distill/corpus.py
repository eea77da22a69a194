"""The embedded corpora: general-English Wikipedia sentences shipped in the package (the default) and the
docstrings of Python's standard library, split into sentences (an option).

Both are on every machine that runs edgekit, so the default distillation needs no download. Docstrings are
parsed with :mod:`ast` (never imported or executed).
"""
from __future__ import annotations

import ast
import hashlib
import os
import re
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgekit.core.record import atomic_write_bytes, atomic_write_text

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
    atomic_write_text(p, text)
    return p


# ---------------------------------------------------------------------------------------------- general English

#: The shipped general-English corpus (a deterministic slice of the 1M Wikipedia sentences) and its held-out set.
DATA_DIR = Path(__file__).parent / "data"
WIKI_TRAIN = DATA_DIR / "enwiki-train-50k.txt.xz"
WIKI_HELD_OUT = DATA_DIR / "enwiki-heldout-5k.txt.xz"
#: A sentence is held out when the hash of its normalised form falls under this fraction: a property of the
#: text alone, so the same rule removes the held-out sentences (and their near-copies) from any other corpus,
#: e.g. the 1M-sentence long recipe, without shipping a list.
HELD_OUT_FRACTION = 0.008
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise(s: str) -> str:
    """Case-folded words only (punctuation and spacing dropped): two sentences equal here are the same text."""
    return " ".join(_NON_WORD.sub(" ", s.casefold()).split())


def _unit_hash(s: str) -> float:
    return int(hashlib.blake2b(s.encode("utf-8"), digest_size=8).hexdigest(), 16) / 2**64


def is_held_out(sentence: str) -> bool:
    """True for sentences reserved for evaluation (decided by the normalised text, so duplicates agree)."""
    return _unit_hash("held-out/" + normalise(sentence)) < HELD_OUT_FRACTION


def read_lines(path: str | os.PathLike) -> Iterator[str]:
    """Stripped non-empty lines of a text file; ``.xz``, ``.gz`` and ``.bz2`` are decompressed on the fly."""
    p = Path(path)
    opener: Any = open
    if p.suffix == ".xz":
        import lzma
        opener = lzma.open
    elif p.suffix == ".gz":
        import gzip
        opener = gzip.open
    elif p.suffix == ".bz2":
        import bz2
        opener = bz2.open
    with opener(p, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if line:
                yield line


def check_text_file(path: str | os.PathLike) -> None:
    """Raise :class:`UsageError` unless ``path`` is a readable, non-empty UTF-8 text file (compressed or not)."""
    from edgekit.core.errors import UsageError

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"training text file {p} does not exist")
    head = b""
    try:
        if p.suffix in (".xz", ".gz", ".bz2"):
            import bz2
            import gzip
            import lzma
            opener: Any = {".xz": lzma.open, ".gz": gzip.open, ".bz2": bz2.open}[p.suffix]
            with opener(p, "rb") as fh:
                head = fh.read(65536)
        else:
            with open(p, "rb") as fh:
                head = fh.read(65536)
    except (OSError, EOFError, lzma_error()) as e:
        raise UsageError(f"training text file {p} cannot be read as {p.suffix} ({e}); "
                         "give a UTF-8 text file, one sentence per line") from None
    if not head.strip():
        raise UsageError(f"training text file {p} is empty; give a UTF-8 text file with one sentence per line")
    if b"\x00" in head:
        raise UsageError(f"training text file {p} looks binary (NUL bytes); give a UTF-8 text file, "
                         "one sentence per line (.xz/.gz/.bz2 are decompressed)")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # a multi-byte character cut by the 64 KiB read is fine
            raise UsageError(f"training text file {p} is not UTF-8 text (byte {e.start}); give a UTF-8 text "
                             "file, one sentence per line") from None


def lzma_error() -> type[Exception]:
    import lzma

    return lzma.LZMAError


def wiki_sentences(limit: int | None = None) -> list[str]:
    """The shipped general-English training slice (50,000 Wikipedia sentences, none of them held out)."""
    out = []
    for s in read_lines(WIKI_TRAIN):
        out.append(s)
        if limit is not None and len(out) >= limit:
            break
    return out


def wiki_held_out(limit: int | None = None) -> list[str]:
    """The shipped held-out Wikipedia sentences (5,000; never in any training slice, see :func:`is_held_out`)."""
    out = list(read_lines(WIKI_HELD_OUT))
    return out[:limit] if limit else out


def make_wiki_slices(source: str | os.PathLike, out_dir: str | os.PathLike = DATA_DIR, n_train: int = 50_000,
                     n_held: int = 5_000) -> tuple[Path, Path]:
    """Regenerate the shipped slices from the 1M-sentence file (deterministic: stride sampling over the file,
    so the slices cover every part of the dump, not the first few articles).

    Training sentences: every k-th line outside the held-out rule, unique after :func:`normalise`.
    Held-out sentences: every j-th line inside it, unique after :func:`normalise`.
    """
    lines = list(read_lines(source))
    held_all = [s for s in lines if is_held_out(s)]
    rest = [s for s in lines if not is_held_out(s)]

    def pick(pool: list[str], n: int) -> list[str]:
        stride = max(1, len(pool) // n)
        seen: set[str] = set()
        out: list[str] = []
        for start in range(stride):  # second passes fill in when dedup or short lines left gaps
            for s in pool[start::stride]:
                k = normalise(s)
                if k and k not in seen and 5 <= len(s.split()) <= 60:
                    seen.add(k)
                    out.append(s)
                    if len(out) == n:
                        return out
        return out

    train, held = pick(rest, n_train), pick(held_all, n_held)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return _write_slice(out / WIKI_TRAIN.name, train), _write_slice(out / WIKI_HELD_OUT.name, held)


def _write_slice(path: Path, sentences: list[str]) -> Path:
    """A shipped slice: one sentence per line, xz at the strongest preset (the repository carries it)."""
    import lzma

    # Compressed whole, then written through a temp file and a rename: an interrupted run leaves the old
    # slice or none, never a truncated .xz that the reader would refuse.
    atomic_write_bytes(path, lzma.compress(("\n".join(sentences) + "\n").encode("utf-8"),
                                           preset=9 | lzma.PRESET_EXTREME))
    return path


def write_long_corpus(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """The long recipe's corpus: every sentence of ``source`` except the held-out ones, unique after
    :func:`normalise`, written once (an existing file is reused)."""
    p = Path(path)
    if p.is_file() and p.stat().st_size > 0:
        return p
    seen: set[str] = set()
    keep = []
    for s in read_lines(source):
        k = normalise(s)
        if k and k not in seen and not is_held_out(s):
            seen.add(k)
            keep.append(s)
    return write_corpus(p, keep)




# ---------------------------------------------------------------------------------------------- SQuAD text

#: A slice of SQuAD v1.1 *train* questions and paragraphs (never dev): training text close to retrieval use.
SQUAD_TRAIN = DATA_DIR / "squad-train-qc.txt.xz"


def squad_train_texts(source: str | os.PathLike, n_questions: int = 30_000, n_contexts: int = 8_000,
                      held_out: list[str] | None = None) -> list[str]:
    """Questions and paragraphs of a SQuAD *train* file (``.xz`` fine), one per line, in a fixed hashed order.

    ``n_questions`` questions and ``n_contexts`` paragraphs are picked by a hash of their text (spread over all
    articles). A paragraph holding a sentence of the shipped held-out Wikipedia set (``held_out``, default
    :func:`wiki_held_out`) is skipped, so agreement stays measured on text never trained on.
    """
    import json
    import lzma

    opener: Any = lzma.open if str(source).endswith(".xz") else open
    with opener(source, "rt", encoding="utf-8") as fh:
        data = json.load(fh)["data"]
    held = {normalise(s) for s in (held_out if held_out is not None else wiki_held_out())}

    def key(s: str) -> float:
        return _unit_hash("squad/" + s)

    qs: dict[str, None] = {}
    ctx: dict[str, None] = {}
    for art in data:
        for para in art["paragraphs"]:
            c = " ".join(para["context"].split())
            if not any(normalise(s) in held for s in _SENT.split(c)):
                ctx[c] = None
            for qa in para["qas"]:
                q = " ".join(qa["question"].split())
                if len(q.split()) >= 3:
                    qs[q] = None
    picked = sorted(qs, key=key)[:n_questions] + sorted(ctx, key=key)[:n_contexts]
    return sorted(picked, key=lambda s: key("order/" + s))


def make_squad_slice(source: str | os.PathLike, out: str | os.PathLike = SQUAD_TRAIN, **kw: Any) -> Path:
    """Write the shipped SQuAD-train slice (``python -m edgekit.distill.corpus --squad TRAIN_JSON``)."""
    return _write_slice(Path(out), squad_train_texts(source, **kw))


if __name__ == "__main__":  # python -m edgekit.distill.corpus SOURCE | --squad TRAIN_JSON: regenerate a slice
    import sys

    if sys.argv[1] == "--squad":
        made = make_squad_slice(sys.argv[2])
        print(made, made.stat().st_size)
    else:
        for made in make_wiki_slices(sys.argv[1]):
            print(made, made.stat().st_size)
