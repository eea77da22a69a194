"""Palettes for Core ML weights: 1-D k-means on a tensor's distinct values, optimal on micro-bins.

coremltools' ``mode="kmeans"`` clusters a tensor with its vendored ``kmeans1d`` (the exact
dynamic programme, O(k n) in the distinct values): 2-3 s for one 22,000-value MiniLM matrix at 8
bits, 37 s of the 43 s a palettize8 MiniLM export took. Weights reach the palettizer as fp16, so a
tensor is its histogram of distinct values (at most 63,488 finite ones; a 65,536-bin count of the
bit patterns, no sort). ``kmeans_1d``:

1. Lloyd's algorithm on the distinct values with their counts (each iteration a searchsorted on
   prefix sums), from centroids spaced by density^(1/3) (Panter-Dite), to a fixed point; then a
   split-and-merge local search (a lone outlier gets its own centroid).
2. Each of those cells cut into equal-width micro-bins (about ``EXACT_POINTS`` in all), and the
   exact k-means of the micro-bins (the same dynamic programme, on ~2,000 points instead of ~22,000).
3. Lloyd again on the distinct values from there.

On all-MiniLM-L6-v2 the squared error is within ~0.1-0.2% of the optimum (8 bits) and ~0.03% (6
bits); tensors of at most ``EXACT_POINTS`` distinct values get the optimum itself. Deterministic.
``palette`` follows coremltools' ``lut_function`` contract for ``OpPalettizerConfig(mode="custom")``.
Numbers: DESIGN.md, "Compressed Core ML recipes".
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

MAX_ITER = 10_000
#: At most this many points go to the exact dynamic programme (distinct values, else micro-bins).
EXACT_POINTS = 2048
#: Split-and-merge moves allowed per centroid (a safety cap; MiniLM's tensors need a few in all).
MAX_MOVES = 4
#: Bins of the density estimate that places the initial centroids (not the data Lloyd runs on).
INIT_BINS = 4096


def distinct(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sorted distinct values of ``weight`` (float64), their counts, and each element's index
    into them (flat). fp16 goes through a 65,536-entry histogram of its bit patterns (linear time);
    other dtypes through ``np.unique``. Non-finite values are an error."""
    flat = np.ascontiguousarray(weight).reshape(-1)
    if flat.dtype == np.float16:
        codes = flat.view(np.uint16)
        counts = np.bincount(codes, minlength=1 << 16)
        present = np.flatnonzero(counts)
        vals = present.astype(np.uint16).view(np.float16).astype(np.float64)
        if not np.isfinite(vals).all():
            raise ValueError("cannot palettize a tensor with non-finite values")
        # +0 and -0 are two bit patterns and one value: np.unique merges them.
        uniq, inv = np.unique(vals, return_inverse=True)
        ucounts = np.bincount(inv, weights=counts[present], minlength=len(uniq))
        code_to_index = np.zeros(1 << 16, np.int64)
        code_to_index[present] = inv
        return uniq, ucounts, code_to_index[codes]
    if not np.isfinite(flat).all():
        raise ValueError("cannot palettize a tensor with non-finite values")
    uniq, inv, cnt = np.unique(flat.astype(np.float64), return_inverse=True, return_counts=True)
    return uniq, cnt.astype(np.float64), inv.reshape(-1)


def _initial(x: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """Indices of ``k`` distinct points of sorted ``x`` placed at equal steps of the cumulative
    density^(1/3) (the optimal quantiser's point density for squared error), estimated on
    ``INIT_BINS`` equal-width bins."""
    n = len(x)
    lo, hi = x[0], x[-1]
    edges = np.linspace(lo, hi, INIT_BINS + 1)
    mass = np.bincount(np.clip(np.searchsorted(edges, x, side="right") - 1, 0, INIT_BINS - 1),
                       weights=w, minlength=INIT_BINS)
    g = np.cbrt(mass)  # density^(1/3) x (equal) width
    cdf = np.concatenate([[0.0], np.cumsum(g)])
    cdf /= cdf[-1]
    targets = np.interp((np.arange(k) + 0.5) / k, cdf, edges)
    idx = np.clip(np.searchsorted(x, targets), 0, n - 1)
    # Strictly increasing, every index in range: k distinct data points.
    step = np.arange(k)
    idx = np.maximum.accumulate(idx - step) + step
    return np.minimum(idx, n - k + step)


def kmeans_1d(x: np.ndarray, w: np.ndarray, k: int, max_iter: int = MAX_ITER) -> np.ndarray:
    """Weighted k-means of sorted distinct points ``x`` (weights ``w`` > 0): ``min(k, len(x))``
    sorted centroids (module docstring: Lloyd + split/merge, exact on micro-bins, Lloyd)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n = len(x)
    if n <= k:
        return x.copy()
    if n <= EXACT_POINTS:
        return optimal_1d(x, w, k)
    km = _Cells(x, w)
    cuts = km.local_search(km.lloyd(x[_initial(x, w, k)], max_iter), max_iter)
    # Micro-bins: each cell cut into equal-width pieces, empty pieces dropped.
    pieces = max(2, EXACT_POINTS // k)
    lo, hi = x[cuts[:-1]], x[cuts[1:] - 1]
    edges = (lo[:, None] + (hi - lo)[:, None] * (np.arange(1, pieces) / pieces)[None, :]).ravel()
    starts = np.unique(np.concatenate([cuts[:-1], np.searchsorted(x, edges, side="right")]))
    starts = starts[starts < n]
    mw = np.add.reduceat(w, starts)
    mx = np.add.reduceat(w * x, starts) / mw
    cuts = km.lloyd(np.sort(optimal_1d(mx, mw, k)), max_iter)
    return km.means(cuts)


def optimal_1d(x: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """The optimal weighted k-means of sorted distinct ``x``: ``min(k, len(x))`` sorted centroids.
    coremltools' vendored ``kmeans1d`` (C) when it imports, else ``_optimal_dp`` (numpy, the
    same optimum, 2-4x slower)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    if len(x) <= k:
        return x.copy()
    try:
        from coremltools._deps import kmeans1d  # the optimum coremltools' own kmeans mode uses
    except Exception:  # noqa: BLE001 - no coremltools, or its C part did not load
        kmeans1d = None
    if kmeans1d is not None:
        return np.sort(np.asarray(kmeans1d.cluster(x, k, weights=w).centroids, np.float64))
    return _optimal_dp(x, w, k)


def _optimal_dp(x: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """Exact 1-D k-means: D[m][i] = min_j D[m-1][j] + cost(j, i) over prefixes, the argmin is
    monotone in i, so each layer is a divide-and-conquer over i, vectorised by recursion level."""
    n = len(x)
    km = _Cells(x, w)
    D = km.cost(np.zeros(n + 1, np.int64), np.arange(n + 1))
    back = []
    for m in range(2, k + 1):
        new = np.full(n + 1, np.inf)
        arg = np.zeros(n + 1, np.int64)
        # Pending ranges: i in [lo, hi], its argmin j in [olo, ohi].
        lo, hi, olo, ohi = (np.array([m]), np.array([n]), np.array([m - 1]), np.array([n - 1]))
        while len(lo):
            mid = (lo + hi) // 2
            cnt = np.minimum(mid - 1, ohi) - olo + 1
            starts = np.concatenate([[0], np.cumsum(cnt)[:-1]])
            seg = np.repeat(np.arange(len(lo)), cnt)
            j = np.arange(int(cnt.sum())) - starts[seg] + olo[seg]
            v = D[j] + km.cost(j, mid[seg])
            best_v = np.minimum.reduceat(v, starts)
            best = j[_first_per_group(np.flatnonzero(v == best_v[seg]), seg, len(lo))]
            new[mid], arg[mid] = best_v, best
            left, right = lo <= mid - 1, mid + 1 <= hi
            lo, hi, olo, ohi = (np.concatenate([lo[left], mid[right] + 1]), np.concatenate([mid[left] - 1, hi[right]]),
                                np.concatenate([olo[left], best[right]]), np.concatenate([best[left], ohi[right]]))
        D = new
        back.append(arg)
    cuts, i = [n], n
    for arg in reversed(back):
        i = int(arg[i])
        cuts.append(i)
    cuts.append(0)
    return km.means(np.array(cuts[::-1]))


def _first_per_group(hit: np.ndarray, group: np.ndarray, groups: int) -> np.ndarray:
    """For ascending positions ``hit`` whose ``group`` ids do not decrease: the first position of
    each group (0 for a group without one)."""
    g = group[hit]
    first = np.concatenate([[True], g[1:] != g[:-1]])
    out = np.zeros(groups, np.int64)
    out[g[first]] = hit[first]
    return out


class _Cells:
    """Prefix sums of sorted points: a cell is a half-open index range [a, b)."""

    def __init__(self, x: np.ndarray, w: np.ndarray) -> None:
        self.x, self.w, self.n = x, w, len(x)
        # Centred for the sums of squares: costs are differences of large prefix sums.
        self.mu = float(np.average(x, weights=w))
        xc = x - self.mu
        self.cw = np.concatenate([[0.0], np.cumsum(w)])
        self.cwx = np.concatenate([[0.0], np.cumsum(w * xc)])
        self.cwxx = np.concatenate([[0.0], np.cumsum(w * xc * xc)])

    def means(self, cuts: np.ndarray) -> np.ndarray:
        a, b = cuts[:-1], cuts[1:]
        return (self.cwx[b] - self.cwx[a]) / (self.cw[b] - self.cw[a]) + self.mu

    def cost(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Weighted squared error of each cell [a, b) about its mean (0 for an empty cell)."""
        wt = self.cw[b] - self.cw[a]
        sx = self.cwx[b] - self.cwx[a]
        sxx = self.cwxx[b] - self.cwxx[a]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.maximum(np.where(wt > 0, sxx - sx * sx / np.where(wt > 0, wt, 1.0), 0.0), 0.0)

    def cuts_for(self, cen: np.ndarray) -> np.ndarray:
        """Cell j holds the points closer to centroid j than to its neighbours (ties go left)."""
        inner = np.searchsorted(self.x, (cen[:-1] + cen[1:]) / 2, side="right")
        return np.concatenate([[0], inner, [self.n]])

    def local_search(self, cuts: np.ndarray, max_iter: int) -> np.ndarray:
        """While splitting one cell at its best point gains more than merging the cheapest
        adjacent pair costs, do both and run Lloyd again (the squared error only decreases)."""
        k = len(cuts) - 1
        for _ in range(MAX_MOVES * k if k > 2 else 0):
            cost = self.cost(cuts[:-1], cuts[1:])
            gain, where = self.best_splits(cuts, cost)
            merge = self.cost(cuts[:-2], cuts[2:]) - cost[:-1] - cost[1:]   # pair (j, j+1)
            j = int(np.argmax(gain))
            merge[max(j - 1, 0): j + 1] = np.inf                             # pairs that hold cell j
            p = int(np.argmin(merge))
            if not gain[j] - merge[p] > 1e-12 * cost.sum():
                break
            moved = np.sort(np.concatenate([np.delete(cuts, p + 1), [where[j]]]))
            cuts = self.lloyd(self.means(moved), max_iter)
        return cuts

    def lloyd(self, cen: np.ndarray, max_iter: int) -> np.ndarray:
        """Lloyd's algorithm from sorted centroids ``cen`` to a fixed point: the cuts."""
        cuts = None
        for _ in range(max_iter):
            new = self.cuts_for(cen)
            empty = new[1:] == new[:-1]
            if empty.any():
                cen = self.reseed(cen, new, empty)
                cuts = None
                continue
            if cuts is not None and np.array_equal(new, cuts):
                break
            cuts = new
            cen = self.means(cuts)
        return cuts if cuts is not None else self.cuts_for(cen)

    def reseed(self, cen: np.ndarray, cuts: np.ndarray, empty: np.ndarray) -> np.ndarray:
        """Move each centroid whose cell is empty onto the point of largest weighted squared error
        that is not a centroid already (scikit-learn's rule), and keep the centroids sorted."""
        cell = np.repeat(np.arange(len(cen)), np.diff(cuts))
        err = self.w * (self.x - cen[cell]) ** 2
        err[np.isin(self.x, cen)] = -1.0
        fresh = self.x[np.argsort(-err, kind="stable")[: int(empty.sum())]]
        return np.sort(np.concatenate([cen[~empty], fresh]))

    def best_splits(self, cuts: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each cell, what splitting it in two at its best point gains, and that point."""
        s = np.arange(1, self.n)
        cell = np.searchsorted(cuts, s, side="right") - 1
        both = np.full(self.n, np.inf)
        both[s] = self.cost(cuts[cell], s) + self.cost(s, cuts[cell + 1])
        both[cuts[:-1]] = np.inf             # a cut is no split of its own cell
        best = np.minimum.reduceat(both, cuts[:-1])
        gain = np.where(np.isfinite(best), cost - best, -np.inf)
        # The argmin within each cell: the first index of the cell holding its minimum.
        hit = np.flatnonzero(both == np.repeat(best, np.diff(cuts)))
        cell = np.searchsorted(cuts, np.arange(self.n), side="right") - 1
        return gain, _first_per_group(hit, cell, len(cost))


def assign(x: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Index of the nearest entry of sorted ``lut`` for each of ``x`` (ties to the lower entry)."""
    return np.searchsorted((lut[:-1] + lut[1:]) / 2, x, side="left")


def palette(weight: np.ndarray, nbits: int) -> tuple[np.ndarray, np.ndarray]:
    """coremltools' ``lut_function`` contract: (LUT of ``2**nbits`` entries in ``weight``'s dtype,
    flat uint8 indices, one per element). The k-means centroids are rounded to the dtype first and
    each distinct value takes its nearest rounded entry, so the file stores exactly what was chosen.
    A tensor with at most ``2**nbits`` distinct values is stored exactly (unused entries are 0)."""
    k = 1 << nbits
    x, w, index = distinct(weight)
    cen = kmeans_1d(x, w, k)
    stored = cen.astype(weight.dtype)
    order = np.argsort(stored.astype(np.float64), kind="stable")
    stored = stored[order]
    which = assign(x, stored.astype(np.float64))
    lut = np.zeros(k, weight.dtype)
    lut[: len(stored)] = stored
    return lut, which.astype(np.uint8)[index]


def lut_function(nbits: int) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``palette`` at ``nbits``, for ``OpPalettizerConfig(mode="custom", lut_function=...)``."""
    return functools.partial(palette, nbits=nbits)


def sse(weight: np.ndarray, lut: np.ndarray, indices: np.ndarray) -> float:
    """Squared error of ``weight`` stored as ``lut[indices]`` (float64)."""
    got = np.asarray(lut, np.float64)[np.asarray(indices).reshape(-1)]
    return float(((np.asarray(weight, np.float64).reshape(-1) - got) ** 2).sum())
