"""Teacher outputs computed once and kept beside the token cache.

An encoder-only teacher is frozen and sees unmasked text, so its mean-pooled embedding of a corpus sequence
never changes: the first epoch (or the first run) computes it, every later one reads it and runs the student
only. The cache is a float32 ``.npy`` memory map ``[sequences, dim]`` plus a ``.npy`` fill mask beside the
Arrow token cache; its name carries the fingerprints of the teacher's weights and of the corpus (the token
cache key), so a different teacher, corpus, tokenizer or sequence length gets a fresh cache. ``.npy`` rather
than Arrow because it is filled row by row as batches arrive (Arrow files are written once). Nothing is
pickled.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

_WEIGHT_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5")


def model_fingerprint(path: str | os.PathLike) -> str:
    """SHA-256 (first 16 hex) of a model folder's config and weight files: changes when the weights change."""
    p = Path(path)
    h = hashlib.sha256()
    found = False
    for name in _WEIGHT_FILES:
        f = p / name
        if f.is_file():
            found = True
            h.update(name.encode())
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    if not found:  # not a folder we know: fall back to the path itself (no cache sharing across paths)
        h.update(str(p.resolve()).encode())
    return h.hexdigest()[:16]


class PooledCache:
    """The teacher's mean-pooled embeddings of the corpus sequences, filled lazily.

    ``lookup(indices)`` returns a ``[len(indices), dim]`` tensor when every row is cached, else None;
    ``store(indices, emb)`` writes rows. Rows are written before the fill mask is, so a crash mid-write
    leaves rows unmarked (recomputed), never marked and wrong.
    """

    def __init__(self, token_cache_dir: str | os.PathLike, teacher_fp: str, n: int, dim: int,
                 tag: str = "pooled") -> None:
        d = Path(token_cache_dir)
        key = hashlib.sha256(json.dumps([teacher_fp, d.name, n, dim, tag]).encode()).hexdigest()[:16]
        self.emb_path = d / f"teacher-{tag}-{key}.npy"
        self.mask_path = d / f"teacher-{tag}-{key}.filled.npy"
        self.n, self.dim = n, dim
        if not (self.emb_path.is_file() and self.mask_path.is_file()):
            self._create()
        self.emb = np.load(self.emb_path, mmap_mode="r+")
        self.filled = np.load(self.mask_path, mmap_mode="r+")
        if self.emb.shape != (n, dim) or self.filled.shape != (n,):
            del self.emb, self.filled
            self._create()
            self.emb = np.load(self.emb_path, mmap_mode="r+")
            self.filled = np.load(self.mask_path, mmap_mode="r+")

    def _create(self) -> None:
        for path, shape, dtype in ((self.emb_path, (self.n, self.dim), np.float32), (self.mask_path, (self.n,), np.uint8)):
            tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
            m = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
            m.flush()
            del m
            os.replace(tmp, path)

    @property
    def fraction_filled(self) -> float:
        return float(self.filled.mean()) if self.n else 1.0

    def lookup(self, indices: Any) -> torch.Tensor | None:
        idx = np.asarray(indices, dtype=np.int64)
        if not self.filled[idx].all():
            return None
        return torch.from_numpy(np.array(self.emb[idx]))

    def store(self, indices: Any, emb: torch.Tensor) -> None:
        idx = np.asarray(indices, dtype=np.int64)
        self.emb[idx] = emb.detach().float().cpu().numpy()
        self.emb.flush()
        self.filled[idx] = 1
        self.filled.flush()


def held_out_teacher_embeddings(teacher_dir: str, tokenizer: Any, texts: list[str], max_len: int,
                                cache_dir: str | os.PathLike, model: Any = None) -> torch.Tensor:
    """The teacher's normalised sentence embeddings of the held-out texts, cached by teacher and texts."""
    from edgekit.distill.compare import embed

    key = hashlib.sha256(json.dumps([model_fingerprint(teacher_dir), max_len, texts]).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"held-out-teacher-{key}.npy"
    if path.is_file():
        arr = np.load(path)
        if arr.shape[0] == len(texts):
            return torch.from_numpy(arr)
    if model is None:
        from transformers import AutoModel

        model = AutoModel.from_pretrained(teacher_dir)
    emb = embed(model, tokenizer, texts, max_len)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.npy")
    np.save(tmp, emb.numpy(), allow_pickle=False)
    os.replace(tmp, path)
    return emb
