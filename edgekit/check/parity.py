"""Numeric parity of an exported artifact against the fp32 PyTorch model, as named steps.

Steps: load -> input names -> output names -> shapes -> values -> task agreement. Each is logged
✓/✗ and a failing step says the number that broke it. The result is a ParityReport, never a bool.
"""
from __future__ import annotations

import hashlib
import math
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from edgekit.core.measures import AneLikeParity, OutputMetrics, ParityReport, Step  # noqa: F401 - the report types live in core
from edgekit.core.target import Runner
from edgekit.core.tolerance import Tolerance
from edgekit.core.console import console
from edgekit.core.tasks import Task, is_per_token

if TYPE_CHECKING:
    import torch

MAX_ANSWER_TOKENS = 30

def psnr(ref: np.ndarray, got: np.ndarray) -> float:
    """PSNR as apple/ml-ane-transformers computes it: peak of the reference over the RMS error."""
    rms = math.sqrt(float(np.mean((ref.astype(np.float64) - got.astype(np.float64)) ** 2)))
    peak = float(np.abs(ref).max())
    return 20 * math.log10((peak + 1e-5) / (rms + 1e-10))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return float(a @ b / (na * nb))


def allowed_error(ref: np.ndarray, tolerance: Tolerance) -> float:
    """The per-element (RMS) error the value bound lets an artifact have on output ``ref``.

    max_abs is taken as is; a PSNR bound allows peak * 10^(-dB/20) RMS; a cosine bound allows a
    relative error norm of about sqrt(2 (1 - cos)). The most permissive enforced bound counts:
    an error that size passes the value step, so it must not decide agreement either.
    """
    ref = ref.astype(np.float64)
    rms_ref = math.sqrt(float(np.mean(ref ** 2))) if ref.size else 0.0
    cands = []
    if tolerance.max_abs is not None:
        cands.append(tolerance.max_abs)
    if tolerance.min_psnr is not None:
        cands.append(float(np.abs(ref).max()) * 10 ** (-tolerance.min_psnr / 20))
    if tolerance.min_cosine is not None:
        cands.append(rms_ref * math.sqrt(max(0.0, 2 * (1 - tolerance.min_cosine))))
    return max(cands) if cands else 0.0


def span_scores(start: np.ndarray, end: np.ndarray, valid: np.ndarray, max_len: int = MAX_ANSWER_TOKENS) -> np.ndarray:
    """start+end score of every (start, end) pair over valid tokens with start <= end < start + max_len."""
    s = np.where(valid, start.astype(np.float64), -np.inf)
    e = np.where(valid, end.astype(np.float64), -np.inf)
    scores = s[:, None] + e[None, :]
    n = len(s)
    i, j = np.indices((n, n))
    scores[(j < i) | (j >= i + max_len)] = -np.inf
    return scores


def best_span(start: np.ndarray, end: np.ndarray, valid: np.ndarray, max_len: int = MAX_ANSWER_TOKENS) -> tuple[int, int]:
    """Highest start+end score over valid tokens with start <= end < start + max_len."""
    scores = span_scores(start, end, valid, max_len)
    flat = int(np.argmax(scores))
    return flat // len(start), flat % len(start)


def _margin(scores: np.ndarray) -> float:
    """Best minus runner-up of a flat score vector (inf when there is only one finite choice)."""
    flat = scores.ravel()
    flat = flat[np.isfinite(flat)]
    if flat.size < 2:
        return math.inf
    top2 = np.partition(flat, -2)[-2:]
    return float(top2[1] - top2[0])


def _valid_rows(arr: np.ndarray, mask: np.ndarray, per_token: bool) -> np.ndarray:
    """Per-token outputs are compared on real tokens only: pad rows carry no meaning."""
    return arr[0][mask[0].astype(bool)] if per_token else arr


@dataclass
class Agreement:
    """The task decision compared on decisive samples, with the counts behind the share."""

    metric: str
    agreed: int
    decisive: int
    judged: int

    @property
    def share(self) -> float | None:
        return self.agreed / self.decisive if self.decisive else None


RECALL_K = 10


def task_agreement(task: Task, refs: list[dict[str, np.ndarray]], gots: list[dict[str, np.ndarray]],
                   masks: list[np.ndarray], tolerance: Tolerance | None = None,
                   index: np.ndarray | None = None) -> Agreement:
    """Where the artifact makes the same decision as PyTorch, judged on decisive samples only.

    A sample is decisive when the reference's best choice beats its runner-up by more than the
    error the value bound allows (``allowed_error``; twice it for a difference of two scores, four
    times for a QA span, a sum of two logits per candidate). Embeddings: recall@10 of each query's
    nearest neighbours in ``index`` (L2-normalised fp32 PyTorch embeddings of >= 1,000 real
    sentences), the artifact's query embedding against the reference's; every query counts.
    """
    tol = tolerance or Tolerance()
    if task == Task.QUESTION_ANSWERING:
        agreed = decisive = 0
        for r, g, m in zip(refs, gots, masks):
            valid = m[0].astype(bool)
            rs = span_scores(r["start_logits"][0], r["end_logits"][0], valid)
            err = 2 * (allowed_error(r["start_logits"], tol) + allowed_error(r["end_logits"], tol))
            if _margin(rs) <= err:
                continue
            decisive += 1
            ref_best = best_span(r["start_logits"][0], r["end_logits"][0], valid)
            agreed += ref_best == best_span(g["start_logits"][0], g["end_logits"][0], valid)
        return Agreement("answer span (start, end)", agreed, decisive, len(refs))
    if task == Task.SEQUENCE_CLASSIFICATION:
        agreed = decisive = 0
        for r, g in zip(refs, gots):
            if _margin(r["logits"]) <= 2 * allowed_error(r["logits"], tol):
                continue
            decisive += 1
            agreed += int(r["logits"].argmax()) == int(np.asarray(g["logits"]).argmax())
        return Agreement("label argmax", agreed, decisive, len(refs))
    if task in (Task.MASKED_LM, Task.TOKEN_CLASSIFICATION):
        agreed = decisive = judged = 0
        for r, g, m in zip(refs, gots, masks):
            rv, gv = _valid_rows(r["logits"], m, True), _valid_rows(np.asarray(g["logits"]), m, True)
            err = 2 * allowed_error(rv, tol)
            top2 = np.sort(rv, axis=-1)[:, -2:] if rv.shape[-1] > 1 else np.concatenate([rv, rv - np.inf], -1)
            keep = (top2[:, 1] - top2[:, 0]) > err
            judged += rv.shape[0]
            decisive += int(keep.sum())
            agreed += int((rv.argmax(-1) == gv.argmax(-1))[keep].sum())
        return Agreement("token argmax" if task == Task.TOKEN_CLASSIFICATION else "top-1 token", agreed, decisive, judged)
    if index is None:
        # No real-text index (no tokenizer): nearest-neighbour retrieval among the samples
        # themselves, within one sequence length (the same text padded to two lengths is a tie).
        hits = 0
        for length in sorted({m.shape[1] for m in masks}):
            idx = [i for i, m in enumerate(masks) if m.shape[1] == length]
            ref = _unit(np.concatenate([refs[i]["embedding"] for i in idx]))
            got = _unit(np.concatenate([gots[i]["embedding"] for i in idx]))
            hits += int(((got @ ref.T).argmax(axis=1) == np.arange(len(idx))).sum())
        return Agreement("nearest-neighbour retrieval", hits, len(refs), len(refs))
    k = min(RECALL_K, index.shape[0])
    agreed = decisive = 0
    for r, g in zip(refs, gots):
        ref_q = _unit(r["embedding"])[0]
        got_q = _unit(np.asarray(g["embedding"]))[0]
        sims = index @ ref_q
        order = np.argsort(-sims)
        top = order[:k]
        b = order[k] if index.shape[0] > k else None
        # A neighbour is decisive when it beats the (k+1)-th by more than the bound's error can
        # move that gap: an error vector of relative norm e (RMS-level, as for logits) moves
        # sim_j - sim_b by about e |d_j - d_b| / sqrt(dim); 3 sigma of it.
        rms = math.sqrt(float(np.mean(np.asarray(r["embedding"], np.float64) ** 2))) or 1.0
        e = allowed_error(np.asarray(r["embedding"]), tol) / rms
        if b is None:
            keep = list(top)
        else:
            spread = np.linalg.norm(index[top] - index[b], axis=1) / math.sqrt(index.shape[1])
            keep = [j for j, sp in zip(top, spread) if sims[j] - sims[b] > 3 * e * sp]
        got_top = set(np.argsort(-(index @ got_q))[:k].tolist())
        decisive += len(keep)
        agreed += sum(int(j) in got_top for j in keep)
    return Agreement(f"recall@{k} among {index.shape[0]} sentences", agreed, decisive, k * len(refs))


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)


#: Reference outputs kept per model object, so the artifacts of one run (one loaded model, the
#: same parity feeds) run PyTorch once per feed rather than once per artifact. Bounded: a masked-LM
#: head's logits are 15 MB per sample at length 128, more than a run should hold.
REFERENCE_CACHE_BYTES = 512 * 2**20
_REF_CACHE: "weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], dict[str, np.ndarray]]]" = weakref.WeakKeyDictionary()


def _weights_version(model: Any) -> int | None:
    """Sum of the parameters' in-place version counters: an edit of the weights (a test's damage)
    changes it, so outputs computed before it are not reused. None: not trackable, no cache."""
    try:
        return sum(p._version for p in model.parameters())
    except (AttributeError, RuntimeError):  # inference tensors have no version counter
        return None


def _feed_key(model: Any, feed: dict[str, np.ndarray], version: int) -> tuple[Any, ...]:
    """The cache key of one feed: its bytes and the weights' version."""
    h = hashlib.blake2b(digest_size=16)
    for n in model.input_names:
        a = np.ascontiguousarray(feed[n])
        h.update(n.encode() + str(a.shape).encode() + str(a.dtype).encode() + a.tobytes())
    return (h.digest(), version)


def reference_outputs(model: "torch.nn.Module", feeds: list[dict[str, np.ndarray]],
                      batch: int = 32) -> list[dict[str, np.ndarray]]:
    """Run the fp32 PyTorch model on each feed, batching feeds of one length (same numbers, faster).

    Outputs are cached per model object and feed content (``REFERENCE_CACHE_BYTES`` per model):
    the same feeds for the next artifact of a run are not recomputed."""
    import torch

    version = _weights_version(model)
    try:
        cache = _REF_CACHE.setdefault(model, {}) if version is not None else {}
    except TypeError:  # not weak-referenceable: no cache
        cache = {}
    keys = [_feed_key(model, f, version or 0) for f in feeds]
    outs: list[dict[str, np.ndarray] | None] = [cache.get(k) for k in keys]
    groups: dict[int, list[int]] = {}
    for i, feed in enumerate(feeds):
        if outs[i] is None:
            groups.setdefault(feed["input_ids"].shape[1], []).append(i)
    used = sum(a.nbytes for o in cache.values() for a in o.values())
    with torch.inference_mode():
        for idx in groups.values():
            for lo in range(0, len(idx), batch):
                part = idx[lo:lo + batch]
                args = [torch.from_numpy(np.concatenate([feeds[i][n] for i in part])) for n in model.input_names]
                result = model(*args)
                for j, i in enumerate(part):
                    outs[i] = {n: t[j:j + 1].float().numpy() for n, t in zip(model.output_names, result)}
                    size = sum(a.nbytes for a in outs[i].values())
                    if used + size <= REFERENCE_CACHE_BYTES:
                        cache[keys[i]] = outs[i]
                        used += size
    return outs  # type: ignore[return-value]


def compare(
    model: "torch.nn.Module", load: Callable[[], Runner], feeds: list[dict[str, np.ndarray]], task: Task,
    tolerance: Tolerance, verbose: bool = True, real: list[bool] | None = None, index: np.ndarray | None = None,
) -> ParityReport:
    """Run the named validation steps and return the full report.

    ``real`` marks the feeds that are real text: task agreement is judged on those (on all feeds,
    with the note "random inputs only", when there are none). ``index``: see ``task_agreement``.
    """
    real = real if real is not None else [False] * len(feeds)
    report = ParityReport(samples=len(feeds), tolerance=tolerance.to_dict(), text_samples=sum(real),
                          lengths=sorted({f["input_ids"].shape[1] for f in feeds}))
    if not any(real):
        report.inputs_note = "random inputs only"

    last = [time.perf_counter()]

    def step(name: str, ok: bool, detail: str, timed: bool = True) -> bool:
        report.steps.append(Step(name, ok, detail))
        if verbose:
            mark = "[green]✓[/]" if ok else "[red]✗[/]"
            took = time.perf_counter() - last[0]
            # A step that took a while says how long since the step before it: where the time went.
            tail = f" [dim]({took:.1f} s)[/]" if timed and took >= 0.5 else ""
            console.print(f"    {mark} {name}: {detail}{tail}")
        last[0] = time.perf_counter()
        return ok

    runner = load()
    step("load", True, f"{time.perf_counter() - last[0]:.2f} s", timed=False)

    want_in, want_out = tuple(model.input_names), tuple(model.output_names)
    if not step("input names", set(want_in) <= set(runner.input_names),
                f"{list(runner.input_names)} (need {list(want_in)})"):
        return report
    if not step("output names", set(want_out) <= set(runner.output_names),
                f"{list(runner.output_names)} (need {list(want_out)})"):
        return report

    refs = reference_outputs(model, feeds)
    gots = _run_all(runner, feeds, verbose)
    masks = [feed["attention_mask"] for feed in feeds]
    bad = [f"{n}: {gots[0][n].shape} vs {refs[0][n].shape}" for n in want_out
           if np.asarray(gots[0][n]).shape != refs[0][n].shape]
    if not step("shapes", not bad, "; ".join(bad) or ", ".join(f"{n} {list(refs[0][n].shape)}" for n in want_out)):
        return report

    report.outputs = value_metrics(task, refs, gots, masks)
    fails = value_failures(report.outputs, tolerance)
    detail = "; ".join(f"{o.name} max_abs={o.max_abs:.3g} cos={o.cosine:.6f} psnr={o.psnr:.1f}dB" for o in report.outputs)
    step("values", not fails, "; ".join(fails) if fails else detail)

    sel = [i for i, r in enumerate(real) if r] or list(range(len(feeds)))
    agr = task_agreement(task, [refs[i] for i in sel], [gots[i] for i in sel], [masks[i] for i in sel],
                         tolerance, index if any(real) else None)
    report.agreement, report.agreement_metric = agr.share, agr.metric
    report.agreed, report.decisive, report.judged = agr.agreed, agr.decisive, agr.judged
    agree_ok = tolerance.min_agreement is None or agr.share is None or agr.share >= tolerance.min_agreement
    if not agree_ok:
        fails.append(f"agreement {agr.agreed}/{agr.decisive} = {agr.share:.1%} < {tolerance.min_agreement:.0%}")
    share = "n/a" if agr.share is None else f"{agr.share:.1%}"
    what = "texts" if any(real) else "random inputs only"
    step("task agreement", agree_ok,
         f"{share} ({agr.metric}: {agr.agreed}/{agr.decisive} decisive of {agr.judged}, {len(sel)} {what})")
    report.failures = fails
    return report


#: Seconds between two progress lines while a file runs its samples (plain lines: they land in logs too).
PROGRESS_EVERY_S = 30.0


def _run_all(runner: Runner, feeds: list[dict[str, np.ndarray]], verbose: bool) -> list[dict[str, np.ndarray]]:
    """The file's outputs on every feed; on a slow runtime (the MIL interpreter, emulation) one plain
    line every ``PROGRESS_EVERY_S`` seconds says how far it is (no carriage returns, no bar)."""
    t0 = last = time.perf_counter()
    out = []
    for i, feed in enumerate(feeds, 1):
        out.append(runner.run(feed))
        now = time.perf_counter()
        if verbose and now - last >= PROGRESS_EVERY_S and i < len(feeds):
            lengths = ",".join(str(n) for n in sorted({int(f["input_ids"].shape[1]) for f in feeds}))
            console.print(f"      … running the file: {i}/{len(feeds)} samples ({lengths} tokens), {now - t0:.0f} s")
            last = now
    return out


def value_metrics(task: Task, refs: list[dict[str, np.ndarray]], gots: list[dict[str, np.ndarray]],
                  masks: list[np.ndarray]) -> list[OutputMetrics]:
    """max/mean abs over all samples, worst-sample cosine and PSNR, per output."""
    metrics = []
    for name in refs[0]:
        per_tok = is_per_token(task, name)
        diffs, cos, ps = [], [], []
        for r, g, m in zip(refs, gots, masks):
            rv = _valid_rows(r[name], m, per_tok)
            gv = _valid_rows(np.asarray(g[name], dtype=np.float32), m, per_tok)
            diffs.append(np.abs(rv - gv))
            cos.append(cosine(rv, gv))
            ps.append(psnr(rv, gv))
        alld = np.concatenate([d.ravel() for d in diffs])
        nonfinite = not np.isfinite(alld).all()
        metrics.append(OutputMetrics(
            name, float("inf") if nonfinite else float(alld.max()), float(np.mean(alld)), min(cos), min(ps)))
    return metrics


def value_failures(outputs: list[OutputMetrics], tolerance: Tolerance) -> list[str]:
    """One line per output and bound the numbers break."""
    fails = []
    for o in outputs:
        if tolerance.max_abs is not None and not o.max_abs <= tolerance.max_abs:
            fails.append(f"{o.name} max_abs {o.max_abs:.3g} > {tolerance.max_abs:.3g}")
        if tolerance.min_cosine is not None and not o.cosine >= tolerance.min_cosine:
            fails.append(f"{o.name} cosine {o.cosine:.6f} < {tolerance.min_cosine}")
        if tolerance.min_psnr is not None and not o.psnr >= tolerance.min_psnr:
            fails.append(f"{o.name} PSNR {o.psnr:.1f} dB < {tolerance.min_psnr} dB")
    return fails


DAMAGES = ("ffn-x1.02", "ffn-x1.10", "layer-x1.10", "halved", "zeroed", "reversed")


def damaged_copy(model: Any, kind: str) -> Any:
    """A deep copy of an EdgeModel with one of ``DAMAGES`` applied to its weights.

    The bound calibration (benchmarks/tolerances.py) and the damage tests export these copies and
    validate the files against the undamaged model: what a broken compression step (a reversed
    palette, halved tables, one layer's int8 scales x1.10, a bad fp16 FFN matrix) amounts to.
    """
    import copy

    import torch

    m = copy.deepcopy(model)
    layers = list(m.layers)
    mats = lambda layer: [layer.q, layer.k, layer.v, layer.o, layer.ffn_in, layer.ffn_out]  # noqa: E731
    with torch.no_grad():
        if kind.startswith("ffn-x"):
            layers[0].ffn_in.weight.mul_(float(kind[5:]))
        elif kind == "layer-x1.10":
            for lin in mats(layers[len(layers) // 2]):
                lin.weight.mul_(1.10)
        elif kind == "halved":
            m.embeddings.word.weight.mul_(0.5)
            for layer in layers:
                for lin in mats(layer):
                    lin.weight.mul_(0.5)
        elif kind == "zeroed":
            for layer in layers[:2]:
                for lin in (layer.o, layer.ffn_in, layer.ffn_out):
                    lin.weight.zero_()
        elif kind == "reversed":
            # A 4-bit palette read in the wrong order: each weight's 16-level cluster (quantile
            # bins) takes another cluster's value. (Plain negation is not it: negated q and k,
            # or v and o, cancel out.) Cluster i -> the reversed order of a k-means LUT, which is
            # not sorted: a fixed permutation of the sorted levels.
            gen = torch.Generator().manual_seed(11)
            perm = torch.randperm(16, generator=gen)
            for layer in layers:
                for lin in mats(layer):
                    w = lin.weight
                    edges = torch.quantile(w.flatten()[::max(1, w.numel() // 100_000)].float(),
                                           torch.linspace(0, 1, 17)[1:-1])
                    idx = torch.bucketize(w, edges)
                    levels = torch.stack([w[idx == i].median() if (idx == i).any() else w.new_zeros(())
                                          for i in range(16)])
                    w.copy_(levels[perm][idx])
        else:
            raise ValueError(kind)
    return m
