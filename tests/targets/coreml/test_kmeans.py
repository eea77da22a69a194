"""edgekit's own 1-D k-means for Core ML palettes (edgekit.targets.coreml.kmeans)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgekit.targets.coreml import kmeans


def _brute_force(x: np.ndarray, w: np.ndarray, k: int) -> float:
    """The least weighted squared error over every split of sorted x into k contiguous runs
    (an optimal 1-D clustering is contiguous)."""
    best = np.inf
    for cuts in itertools.combinations(range(1, len(x)), k - 1):
        edges = (0, *cuts, len(x))
        err = 0.0
        for a, b in zip(edges[:-1], edges[1:]):
            m = np.average(x[a:b], weights=w[a:b])
            err += float((w[a:b] * (x[a:b] - m) ** 2).sum())
        best = min(best, err)
    return best


def _err(x: np.ndarray, w: np.ndarray, cen: np.ndarray) -> float:
    cen = np.sort(cen)
    return float((w * (x - cen[kmeans.assign(x, cen)]) ** 2).sum())


def _bell(n: int, seed: int = 0, outliers: int = 3) -> np.ndarray:
    """Bell-shaped weights with a few lone outliers, like a transformer's matrices, in fp16."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(n) * 0.05
    w[rng.choice(n, outliers, replace=False)] = rng.choice([-1, 1], outliers) * rng.uniform(0.5, 6, outliers)
    return w.astype(np.float16)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [2, 3, 4])
def test_optimum_matches_brute_force(seed, k):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.choice(np.round(rng.standard_normal(40), 3), 9, replace=False))
    w = rng.integers(1, 6, len(x)).astype(np.float64)
    want = _brute_force(x, w, k)
    for solve in (kmeans._optimal_dp, kmeans.optimal_1d, kmeans.kmeans_1d):
        got = _err(x, w, solve(x, w, k))
        assert got == pytest.approx(want, rel=1e-9, abs=1e-15), solve.__name__


def test_numpy_programme_matches_coremltools_kmeans1d():
    pytest.importorskip("coremltools._deps.kmeans1d")
    x, w, _ = kmeans.distinct(_bell(20_000, seed=1))
    x, w = x[:1500], w[:1500]  # the exact programme's size (EXACT_POINTS)
    for k in (16, 64):
        assert _err(x, w, kmeans._optimal_dp(x, w, k)) == pytest.approx(_err(x, w, kmeans.optimal_1d(x, w, k)), rel=1e-9)


@pytest.mark.parametrize("k", [16, 64, 256])
def test_large_tensor_is_within_a_fraction_of_a_percent_of_the_optimum(k):
    """Above EXACT_POINTS distinct values the programme runs on micro-bins: on MiniLM that cost
    +0.01-0.03% squared error at 6 bits and +0.1-0.2% at 8 (DESIGN.md); here a bound of 0.5%."""
    x, w, _ = kmeans.distinct(_bell(200_000, seed=2))
    assert len(x) > kmeans.EXACT_POINTS
    best = _err(x, w, kmeans.optimal_1d(x, w, k))
    got = _err(x, w, kmeans.kmeans_1d(x, w, k))
    assert best <= got <= best * 1.005


def test_beats_scikit_learn_kmeans():
    """scikit-learn's k-means (coremltools' fallback for small tensors) is a local optimum."""
    cluster = pytest.importorskip("sklearn.cluster")
    w16 = _bell(3_000, seed=3)
    for nbits in (4, 6):
        lut, idx = kmeans.palette(w16, nbits)
        km = cluster.KMeans(1 << nbits, init="k-means++", n_init=3, random_state=0).fit(w16.reshape(-1, 1).astype(np.float64))
        ref = float(((w16.astype(np.float64) - km.cluster_centers_.ravel()[km.labels_]) ** 2).sum())
        assert kmeans.sse(w16, lut, idx) <= ref * 1.001


def test_palette_follows_coremltools_lut_contract_and_is_deterministic():
    w16 = _bell(50_000, seed=4).reshape(250, 200)
    lut, idx = kmeans.palette(w16, 6)
    assert lut.shape == (64,) and lut.dtype == np.float16
    assert idx.shape == (w16.size,) and idx.dtype == np.uint8 and idx.max() < 64
    assert np.all(np.diff(lut.astype(np.float64)) > 0)
    # Every element takes its nearest entry of the stored (fp16) table.
    err = np.abs(w16.reshape(-1).astype(np.float64)[:, None] - lut.astype(np.float64)[None, :])
    assert np.array_equal(err[np.arange(w16.size), idx], err.min(axis=1))
    lut2, idx2 = kmeans.palette(w16.copy(), 6)
    assert np.array_equal(lut, lut2) and np.array_equal(idx, idx2)


def test_constant_tensor_and_fewer_values_than_entries_are_exact():
    const = np.full((8, 16), 0.125, np.float16)
    lut, idx = kmeans.palette(const, 8)
    assert lut.shape == (256,) and lut[0] == np.float16(0.125) and not idx.any()
    few = np.array([[0.5, -1.0, 0.5, 2.0], [-1.0, 0.0, -0.0, 2.0]], np.float16)  # 4 values: -0 is 0
    lut, idx = kmeans.palette(few, 2)
    assert kmeans.sse(few, lut, idx) == 0.0
    assert sorted(lut.tolist()) == [-1.0, 0.0, 0.5, 2.0]
    lut, idx = kmeans.palette(few, 6)
    assert lut.shape == (64,) and kmeans.sse(few, lut, idx) == 0.0


def test_float32_weights_and_non_finite_values():
    w32 = _bell(5_000, seed=5).astype(np.float32) + np.float32(1e-6)
    lut, idx = kmeans.palette(w32, 4)
    assert lut.dtype == np.float32 and idx.shape == (w32.size,)
    x, c, _ = kmeans.distinct(w32)
    assert kmeans.sse(w32, lut, idx) <= _err(x, c, kmeans.optimal_1d(x, c, 16)) * 1.005
    bad = np.array([0.0, np.inf, 1.0], np.float16)
    with pytest.raises(ValueError, match="non-finite"):
        kmeans.palette(bad, 2)


@pytest.mark.parametrize("block_sizes", [[0, 0], [16, 0]])  # per tensor; per group of 16 rows
def test_coremltools_custom_mode_stores_our_palette(block_sizes):
    """The contract with coremltools 9: ``mode="custom"`` calls lut_function once per table (per
    tensor or per channel group) and stores its LUT and indices as given."""
    cto = pytest.importorskip("coremltools.optimize.coreml._quantization_passes")
    w16 = _bell(64 * 48, seed=6).reshape(64, 48)
    params = cto.palettize_weights.blockwise_compress(w16, "CUSTOM", None, block_sizes,
                                                      lut_function=kmeans.lut_function(4))
    dense = cto.palettize_weights.decompress(params)
    groups = 1 if block_sizes[0] == 0 else 64 // block_sizes[0]
    want = np.concatenate([kmeans.palette(g, 4)[0][kmeans.palette(g, 4)[1]].reshape(g.shape)
                           for g in np.split(w16, groups, axis=0)])
    assert np.array_equal(np.asarray(dense, np.float16), want)
