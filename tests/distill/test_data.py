"""Token cache, dynamic masking and length-grouped batches."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekit.distill import data as D
from edgekit.core.errors import UsageError


@pytest.fixture()
def small_corpus(tmp_path):
    lines = ["short one.", "the quick brown fox jumps over the lazy dog " * 12, ""]
    lines += [f"sentence number {i} talks about module {i % 7} and its function arguments." for i in range(40)]
    p = tmp_path / "c.txt"
    p.write_text("\n".join(lines))
    return p


def test_cache_splits_long_drops_short_and_is_reused(tmp_path, tokenizer, small_corpus):
    cdir = tmp_path / "cache"
    path = D.build_cache(tokenizer, cdir, files=[str(small_corpus)], max_len=16, min_tokens=8, show_progress=False)
    cache = D.TokenCache(path)
    long_ids = tokenizer("the quick brown fox jumps over the lazy dog " * 12, add_special_tokens=False)["input_ids"]
    n_long = sum(1 for i in range(0, len(long_ids), 14) if len(long_ids[i:i + 14]) >= 6)
    assert cache.meta["dropped_short"] == 1  # "short one." (4 tokens) is gone
    assert len(cache) == n_long + 40 == cache.meta["sequences"]
    assert cache.lengths.max() <= 16 and cache.lengths.min() >= 8
    first = cache[0]
    assert first[0] == tokenizer.cls_token_id and first[-1] == tokenizer.sep_token_id
    assert list(first[1:-1]) == long_ids[:14]
    # counts are token frequencies over the cache
    total = np.concatenate([cache[i] for i in range(len(cache))])
    assert cache.counts.sum() == len(total) == cache.meta["tokens"]
    assert cache.counts[tokenizer.cls_token_id] == len(cache)
    assert not list(cdir.glob("*/*.pkl")) and (path / "tokens.arrow").is_file()
    mtime = (path / "tokens.arrow").stat().st_mtime_ns
    again = D.build_cache(tokenizer, cdir, files=[str(small_corpus)], max_len=16, min_tokens=8, show_progress=False)
    assert again == path and (path / "tokens.arrow").stat().st_mtime_ns == mtime
    other = D.build_cache(tokenizer, cdir, files=[str(small_corpus)], max_len=32, min_tokens=8, show_progress=False)
    assert other != path


def test_streaming_dataset_source(tmp_path, tokenizer, small_corpus):
    pytest.importorskip("datasets")
    ds = {"name": "text", "data_files": str(small_corpus), "split": "train", "streaming": True}
    path = D.build_cache(tokenizer, tmp_path / "cache", dataset=ds, max_len=16, min_tokens=8, show_progress=False)
    from_files = D.build_cache(tokenizer, tmp_path / "cache2", files=[str(small_corpus)], max_len=16, min_tokens=8,
                               show_progress=False)
    assert D.TokenCache(path).lengths.tolist() == D.TokenCache(from_files).lengths.tolist()


def test_bad_sources_are_usage_errors(tmp_path, tokenizer):
    with pytest.raises(UsageError):
        D.build_cache(tokenizer, tmp_path, files=[str(tmp_path / "missing.txt")], show_progress=False)
    (tmp_path / "tiny.txt").write_text("a b\n")
    with pytest.raises(UsageError, match="no sequence"):
        D.build_cache(tokenizer, tmp_path, files=[str(tmp_path / "tiny.txt")], show_progress=False)


def test_masking_rates_and_specials():
    vocab = 1000
    counts = np.ones(vocab)
    probs = D.token_probs(counts, 0.7, [0, 1, 2])
    cfg = D.MaskingConfig()
    ids = np.concatenate([[1], np.arange(10, 110), [2]])
    n_pred = n_mask = n_keep = n_rand = 0
    for k in range(400):
        x, y = D.mask_example(ids, probs, cfg, mask_id=3, vocab_size=vocab, gen=D._example_generator(0, 0, k))
        sel = y != -100
        assert not sel[0] and not sel[-1]  # [CLS]/[SEP] are never predicted
        assert int(sel.sum()) == 15  # 15% of the 100 maskable tokens
        assert torch.equal(y[sel], torch.as_tensor(ids)[sel])
        n_pred += int(sel.sum())
        n_mask += int((x[sel] == 3).sum())
        n_keep += int((x[sel] == y[sel]).sum())
        assert torch.equal(x[~sel], torch.as_tensor(ids)[~sel])
    n_rand = n_pred - n_mask - n_keep
    assert n_mask / n_pred == pytest.approx(0.8, abs=0.03)
    assert n_keep / n_pred == pytest.approx(0.1, abs=0.03)
    assert n_rand / n_pred == pytest.approx(0.1, abs=0.03)


def test_smoothing_favours_rare_tokens():
    counts = np.ones(100)
    counts[10] = 10_000  # frequent
    probs = D.token_probs(counts, 0.7, [])
    ids = np.array([10] * 50 + list(range(20, 70)))
    hits_freq = hits_rare = 0
    for k in range(200):
        _, y = D.mask_example(ids, probs, D.MaskingConfig(), 3, 100, D._example_generator(1, 0, k))
        sel = (y != -100).numpy()
        hits_freq += sel[:50].sum()
        hits_rare += sel[50:].sum()
    assert hits_freq < 0.05 * hits_rare  # 10000^-0.7 ~ 0.0016 of a count-1 token's weight
    uniform = D.token_probs(counts, 0.0, [])
    assert torch.all(uniform == 1.0)


def test_masking_is_redrawn_but_reproducible():
    probs = D.token_probs(np.ones(500), 0.7, [])
    ids = np.arange(100, 200)
    cfg = D.MaskingConfig()
    a = D.mask_example(ids, probs, cfg, 3, 500, D._example_generator(0, 0, 7))[1]
    b = D.mask_example(ids, probs, cfg, 3, 500, D._example_generator(0, 0, 7))[1]
    c = D.mask_example(ids, probs, cfg, 3, 500, D._example_generator(0, 1, 7))[1]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_batch_plan_groups_lengths_and_is_deterministic():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 120, size=1000)
    plan = D.batch_plan(lengths, 16, seed=1, epoch=0)
    flat = np.concatenate(plan)
    assert len(flat) == len(set(flat.tolist())) == 62 * 16  # each example at most once, last partial dropped
    assert all(len(b) == 16 for b in plan)
    assert [b.tolist() for b in plan] == [b.tolist() for b in D.batch_plan(lengths, 16, seed=1, epoch=0)]
    assert plan[0].tolist() != D.batch_plan(lengths, 16, seed=1, epoch=1)[0].tolist()

    def padding(p):
        return sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in p)

    assert padding(plan) < 0.25 * padding(D.batch_plan(lengths, 16, 1, 0, group_by_length=False))
    assert D.shard(plan[0], 1, 2).tolist() == plan[0][8:].tolist()
    with pytest.raises(UsageError):
        D.shard(plan[0], 0, 3)
    with pytest.raises(UsageError):
        D.batch_plan(lengths[:3], 16, 0, 0)


def test_collate_pads_and_masks(tmp_path, tokenizer, small_corpus):
    cache = D.TokenCache(D.build_cache(tokenizer, tmp_path, files=[str(small_corpus)], max_len=16, min_tokens=8,
                                       show_progress=False))
    probs = D.token_probs(cache.counts, 0.7, tokenizer.all_special_ids)
    idx = np.array([0, len(cache) - 1])
    b = D.collate(cache, idx, 0, 0, probs, D.MaskingConfig(), tokenizer.mask_token_id, 0, len(tokenizer))
    assert b.input_ids.shape == b.attention_mask.shape == b.labels.shape
    assert b.attention_mask.sum(1).tolist() == [len(cache[0]), len(cache[len(cache) - 1])]
    assert (b.labels[b.attention_mask == 0] == -100).all()
    assert (b.labels != -100).sum() >= 2
    assert torch.equal(b.clean_ids[0, :len(cache[0])], torch.as_tensor(cache[0]))
