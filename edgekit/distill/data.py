"""Training data: text -> token cache (Arrow) -> length-grouped batches with dynamic masking.

* Text comes from plain-text files (one document or sentence per line) or a ``datasets`` dataset, optionally
  streamed, so corpora bigger than RAM never sit in memory: they are tokenised in blocks and appended to an
  Arrow IPC file that is later memory-mapped.
* The cache is keyed by the sources, the tokenizer's vocabulary and the chunking options; it is written once
  (temp file + ``os.replace``) and never unpickled: Arrow for token ids, ``.npy`` (no pickle) for counts.
* Long lines are split into ``max_len - 2`` token chunks, chunks under ``min_tokens`` tokens are dropped.
* Masking is redrawn every time an example is used (from a seed derived from the run seed, the epoch and the
  example index, so it does not depend on batching or on the number of processes), 15% of tokens, 80% [MASK],
  10% random, 10% kept, positions chosen with probability proportional to token count^-0.7 as in DistilBERT.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekit.core.errors import UsageError

CACHE_VERSION = 1


@dataclass
class MaskingConfig:
    """Dynamic masking parameters (the DistilBERT defaults)."""

    mlm_prob: float = 0.15
    word_mask: float = 0.8
    word_keep: float = 0.1
    word_rand: float = 0.1
    smoothing: float = 0.7  # masking probability of a token ~ count^-smoothing; 0 = uniform

    def __post_init__(self) -> None:
        if not 0 < self.mlm_prob < 1:
            raise UsageError(f"mlm probability must be in (0, 1), not {self.mlm_prob}")
        if abs(self.word_mask + self.word_keep + self.word_rand - 1.0) > 1e-6:
            raise UsageError("word_mask + word_keep + word_rand must sum to 1")


# ---------------------------------------------------------------------------------------------- sources


def _source_key(files: list[str] | None, dataset: dict | None) -> dict:
    if files:
        from edgekit.distill.corpus import check_text_file

        out = []
        for f in files:
            p = Path(f)
            check_text_file(p)  # missing, empty or binary: a usage error, not a traceback deep in tokenising
            st = p.stat()
            out.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
        return {"files": out}
    if dataset:
        return {"dataset": dataset}
    raise UsageError("no training data: pass --data FILE... or --dataset NAME")


def iter_texts(files: list[str] | None = None, dataset: dict | None = None) -> Iterator[str]:
    """Lines of text files (``.xz``/``.gz``/``.bz2`` decompressed), or the text column of a ``datasets`` dataset (streamed if ``dataset['streaming']``)."""
    if files:
        from edgekit.distill.corpus import read_lines

        for f in files:
            yield from read_lines(f)
        return
    if not dataset:
        raise UsageError("no training data: pass --data FILE... or --dataset NAME")
    try:
        import datasets
    except ImportError as e:
        from edgekit.core.errors import MissingDependencyError

        raise MissingDependencyError("reading a datasets corpus", "distill", "datasets") from e
    ds = datasets.load_dataset(dataset["name"], dataset.get("config"), split=dataset.get("split", "train"),
                               streaming=bool(dataset.get("streaming", False)),
                               data_files=dataset.get("data_files"))
    col = dataset.get("text_column", "text")
    for row in ds:
        if col not in row:
            raise UsageError(f"dataset has no column {col!r}; choose one of {sorted(row)} with --text-column")
        text = row[col]
        if isinstance(text, str) and text.strip():
            yield text.strip()


def _chunks(ids: list[int], size: int, min_tokens: int) -> Iterator[list[int]]:
    for i in range(0, len(ids), size):
        c = ids[i:i + size]
        if len(c) >= min_tokens:
            yield c


# ---------------------------------------------------------------------------------------------- cache


def cache_key(tokenizer: Any, files: list[str] | None, dataset: dict | None, max_len: int, min_tokens: int,
              max_texts: int | None, drop_held_out: bool = False) -> str:
    """Hash of everything that changes the cached token ids."""
    vocab = sorted(tokenizer.get_vocab().items())
    vh = hashlib.sha256(json.dumps(vocab).encode()).hexdigest()
    desc = {"v": CACHE_VERSION, "src": _source_key(files, dataset), "vocab": vh, "lower": _lowercases(tokenizer),
            "max_len": max_len, "min_tokens": min_tokens, "max_texts": max_texts}
    if drop_held_out:
        desc["drop_held_out"] = True
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:20]


def _lowercases(tokenizer: Any) -> bool:
    return tokenizer("A", add_special_tokens=False)["input_ids"] == tokenizer("a", add_special_tokens=False)[
        "input_ids"]


def build_cache(tokenizer: Any, cache_dir: str | os.PathLike, files: list[str] | None = None,
                dataset: dict | None = None, max_len: int = 128, min_tokens: int = 12,
                max_texts: int | None = None, block: int = 2000, show_progress: bool = True,
                drop_held_out: bool = False) -> Path:
    """Tokenise the corpus once into ``cache_dir/<key>/`` and return that folder (reused if present).

    Memory stays bounded by one block of texts: blocks are appended to the Arrow file as record batches.
    ``drop_held_out`` skips the sentences reserved for evaluation (:func:`edgekit.distill.corpus.is_held_out`),
    so any corpus can be trained on and still be scored on the shipped held-out set.
    """
    import pyarrow as pa

    if max_len < 8:
        raise UsageError(f"--seq-len must be at least 8 tokens, not {max_len}")
    if min_tokens < 3 or min_tokens > max_len:
        raise UsageError(f"--min-tokens must be between 3 and --seq-len ({max_len}), not {min_tokens}")
    key = cache_key(tokenizer, files, dataset, max_len, min_tokens, max_texts, drop_held_out)
    out = Path(cache_dir) / key
    if (out / "meta.json").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{key}.tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls_id is None or sep_id is None:
        raise UsageError("the tokenizer has no [CLS]/[SEP] tokens; a BERT-family WordPiece tokenizer is needed")
    counts = np.zeros(len(tokenizer), dtype=np.int64)
    schema = pa.schema([("input_ids", pa.list_(pa.int32()))])
    n_seq = n_tok = n_texts = n_dropped = n_held = 0
    body = max_len - 2
    from edgekit.core.console import progress

    bar = progress(None, "tokenising", unit="texts", enabled=show_progress, leave=False)
    with pa.OSFile(str(tmp / "tokens.arrow"), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        def flush(texts: list[str]) -> None:
            nonlocal n_seq, n_tok, n_dropped
            enc = tokenizer(texts, add_special_tokens=False, return_attention_mask=False,
                            return_token_type_ids=False)["input_ids"]
            rows = []
            for ids in enc:
                got = False
                for c in _chunks(ids, body, min_tokens - 2):
                    rows.append([cls_id, *c, sep_id])
                    got = True
                n_dropped += not got
            n_seq += len(rows)
            if rows:
                flat = np.fromiter((t for r in rows for t in r), dtype=np.int64)
                counts[:] += np.bincount(flat, minlength=len(counts))[:len(counts)]
                n_tok += len(flat)
                writer.write_batch(pa.record_batch([pa.array(rows, type=pa.list_(pa.int32()))], schema=schema))

        buf: list[str] = []
        if drop_held_out:
            from edgekit.distill.corpus import is_held_out
        for text in iter_texts(files, dataset):
            if max_texts is not None and n_texts >= max_texts:
                break
            if drop_held_out and is_held_out(text):
                n_held += 1
                continue
            buf.append(text)
            n_texts += 1
            if len(buf) >= block:
                flush(buf)
                bar.update(len(buf))
                buf = []
        if buf:
            flush(buf)
            bar.update(len(buf))
    bar.close()
    if n_seq == 0:
        raise UsageError(f"the corpus gave no sequence of at least {min_tokens} tokens; give more or longer text")
    np.save(tmp / "counts.npy", counts, allow_pickle=False)
    meta = {"version": CACHE_VERSION, "sequences": n_seq, "tokens": n_tok, "texts": n_texts,
            "dropped_short": n_dropped, "max_len": max_len, "min_tokens": min_tokens, "dropped_held_out": n_held}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    try:
        os.replace(tmp, out)
    except OSError:
        # Another process built the same cache first: theirs is identical, use it.
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return out


class TokenCache:
    """Memory-mapped token sequences of a cache folder. ``cache[i]`` is an int64 numpy array."""

    def __init__(self, path: str | os.PathLike) -> None:
        import pyarrow as pa

        self.path = Path(path)
        self.meta = json.loads((self.path / "meta.json").read_text())
        self._mm = pa.memory_map(str(self.path / "tokens.arrow"), "r")
        reader = pa.ipc.open_file(self._mm)
        self._values: list[np.ndarray] = []
        self._offsets: list[np.ndarray] = []
        starts = [0]
        for b in range(reader.num_record_batches):
            arr = reader.get_batch(b).column(0)
            self._values.append(arr.values.to_numpy(zero_copy_only=True))
            self._offsets.append(arr.offsets.to_numpy(zero_copy_only=True))
            starts.append(starts[-1] + len(arr))
        self._starts = np.asarray(starts, dtype=np.int64)
        self.lengths = np.concatenate([np.diff(o) for o in self._offsets]).astype(np.int64)
        self.counts = np.load(self.path / "counts.npy", allow_pickle=False)

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, i: int) -> np.ndarray:
        b = int(np.searchsorted(self._starts, i, side="right") - 1)
        j = i - int(self._starts[b])
        o = self._offsets[b]
        return self._values[b][o[j]:o[j + 1]].astype(np.int64)


# ---------------------------------------------------------------------------------------------- batches


def batch_plan(lengths: np.ndarray, batch_size: int, seed: int, epoch: int, group_by_length: bool = True,
               mega: int = 50) -> list[np.ndarray]:
    """Global batches of example indices for one epoch (the incomplete last batch is dropped).

    Length grouping sorts windows of ``mega`` batches by length, so a batch pads little while the order of
    batches stays random. The plan depends only on (seed, epoch): resuming recomputes it exactly.
    """
    n = len(lengths)
    if n < batch_size:
        raise UsageError(f"the corpus has {n} sequences, fewer than one global batch of {batch_size}; "
                         "give more text or a smaller --batch-size")
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(n)
    batches: list[np.ndarray] = []
    if group_by_length:
        win = batch_size * mega
        for s in range(0, n, win):
            w = perm[s:s + win]
            w = w[np.argsort(lengths[w], kind="stable")]
            batches.extend(w[i:i + batch_size] for i in range(0, len(w) - batch_size + 1, batch_size))
        order = rng.permutation(len(batches))
        batches = [batches[i] for i in order]
    else:
        batches = [perm[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
    return batches


def shard(batch: np.ndarray, rank: int, world: int) -> np.ndarray:
    """This process's contiguous share of a global batch."""
    if len(batch) % world:
        raise UsageError(f"global batch {len(batch)} does not split over {world} processes")
    k = len(batch) // world
    return batch[rank * k:(rank + 1) * k]


def token_probs(counts: np.ndarray, smoothing: float, special_ids: Iterable[int]) -> torch.Tensor:
    """Masking weight per vocabulary id: max(count, 1)^-smoothing, zero for special tokens."""
    p = np.maximum(counts.astype(np.float64), 1.0) ** (-smoothing)
    for i in special_ids:
        if i is not None and 0 <= i < len(p):
            p[i] = 0.0
    return torch.as_tensor(p, dtype=torch.float64)


def _example_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(int(hashlib.blake2b(f"{seed}/{epoch}/{index}".encode(), digest_size=8).hexdigest(), 16) >> 1)
    return g


def mask_example(ids: np.ndarray, probs: torch.Tensor, cfg: MaskingConfig, mask_id: int, vocab_size: int,
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked input ids and labels (-100 where not predicted) for one sequence."""
    x = torch.as_tensor(ids, dtype=torch.long)
    w = probs[x]
    n_ok = int((w > 0).sum())
    labels = torch.full_like(x, -100)
    if n_ok == 0:
        return x, labels
    n = min(n_ok, max(1, round(cfg.mlm_prob * n_ok)))
    pos = torch.multinomial(w, n, replacement=False, generator=gen)
    labels[pos] = x[pos]
    r = torch.rand(n, generator=gen)
    rand_tok = torch.randint(0, vocab_size, (n,), generator=gen)
    new = x[pos].clone()
    new = torch.where(r < cfg.word_mask, torch.full_like(new, mask_id), new)
    new = torch.where(r >= cfg.word_mask + cfg.word_keep, rand_tok, new)
    x = x.clone()
    x[pos] = new
    return x, labels


@dataclass
class Batch:
    input_ids: torch.Tensor       # [B, L] (masked for MLM teachers)
    attention_mask: torch.Tensor  # [B, L]
    labels: torch.Tensor          # [B, L], -100 where not predicted
    clean_ids: torch.Tensor       # [B, L] unmasked ids (encoder-only teachers see these)

    def to(self, device: Any) -> Batch:
        return Batch(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.labels, self.clean_ids)))

    @property
    def n_tokens(self) -> int:
        return int(self.attention_mask.sum())


def collate(cache: TokenCache, indices: np.ndarray, epoch: int, seed: int, probs: torch.Tensor | None,
            cfg: MaskingConfig, mask_id: int, pad_id: int, vocab_size: int) -> Batch:
    """Pad a batch; with ``probs`` each example is freshly masked (``probs=None``: no masking)."""
    seqs = [cache[int(i)] for i in indices]
    L = max(len(s) for s in seqs)
    B = len(seqs)
    ids = torch.full((B, L), pad_id, dtype=torch.long)
    clean = torch.full((B, L), pad_id, dtype=torch.long)
    labels = torch.full((B, L), -100, dtype=torch.long)
    am = torch.zeros((B, L), dtype=torch.long)
    for b, (i, s) in enumerate(zip(indices, seqs)):
        n = len(s)
        clean[b, :n] = torch.as_tensor(s)
        am[b, :n] = 1
        if probs is not None:
            x, y = mask_example(s, probs, cfg, mask_id, vocab_size, _example_generator(seed, epoch, int(i)))
            ids[b, :n] = x
            labels[b, :n] = y
        else:
            ids[b, :n] = clean[b, :n]
    return Batch(ids, am, labels, clean)


def epochs_needed(n_batches_per_epoch: int, total_micro_batches: int) -> int:
    return math.ceil(total_micro_batches / max(1, n_batches_per_epoch))
