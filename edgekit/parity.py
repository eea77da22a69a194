"""Numeric parity of an exported artifact against the fp32 PyTorch model, as named steps.

Steps: load -> input names -> output names -> shapes -> values -> task agreement. Each is logged
✓/✗ and a failing step says the number that broke it. The result is a ParityReport, never a bool.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from .converter import Runner, Tolerance
from .console import console
from .tasks import Task, is_per_token

MAX_ANSWER_TOKENS = 30


@dataclass
class OutputMetrics:
    name: str
    max_abs: float
    mean_abs: float
    cosine: float   # worst sample
    psnr: float     # worst sample, dB


@dataclass
class Step:
    name: str
    ok: bool
    detail: str


@dataclass
class ParityReport:
    samples: int
    steps: list[Step] = field(default_factory=list)
    outputs: list[OutputMetrics] = field(default_factory=list)
    agreement: float | None = None
    agreement_metric: str = ""
    tolerance: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures and all(s.ok for s in self.steps)

    def worst(self, metric: str) -> float | None:
        vals = [getattr(o, metric) for o in self.outputs]
        if not vals:
            return None
        return max(vals) if metric in ("max_abs", "mean_abs") else min(vals)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        return d


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


def best_span(start: np.ndarray, end: np.ndarray, valid: np.ndarray, max_len: int = MAX_ANSWER_TOKENS) -> tuple[int, int]:
    """Highest start+end score over valid tokens with start <= end < start + max_len."""
    s = np.where(valid, start.astype(np.float64), -np.inf)
    e = np.where(valid, end.astype(np.float64), -np.inf)
    scores = s[:, None] + e[None, :]
    n = len(s)
    i, j = np.indices((n, n))
    scores[(j < i) | (j >= i + max_len)] = -np.inf
    flat = int(np.argmax(scores))
    return flat // n, flat % n


def _valid_rows(arr: np.ndarray, mask: np.ndarray, per_token: bool) -> np.ndarray:
    """Per-token outputs are compared on real tokens only: pad rows carry no meaning."""
    return arr[0][mask[0].astype(bool)] if per_token else arr


def task_agreement(task: Task, refs: list[dict[str, np.ndarray]], gots: list[dict[str, np.ndarray]],
                   masks: list[np.ndarray]) -> tuple[float, str]:
    """The share of samples (or tokens) where the artifact makes the same decision as PyTorch."""
    if task == Task.QUESTION_ANSWERING:
        same = [best_span(r["start_logits"][0], r["end_logits"][0], m[0].astype(bool))
                == best_span(g["start_logits"][0], g["end_logits"][0], m[0].astype(bool))
                for r, g, m in zip(refs, gots, masks)]
        return float(np.mean(same)), "answer span (start, end)"
    if task == Task.SEQUENCE_CLASSIFICATION:
        same = [int(r["logits"].argmax()) == int(g["logits"].argmax()) for r, g in zip(refs, gots)]
        return float(np.mean(same)), "label argmax"
    if task in (Task.MASKED_LM, Task.TOKEN_CLASSIFICATION):
        hits, total = 0, 0
        for r, g, m in zip(refs, gots, masks):
            rv, gv = _valid_rows(r["logits"], m, True), _valid_rows(g["logits"], m, True)
            hits += int((rv.argmax(-1) == gv.argmax(-1)).sum())
            total += rv.shape[0]
        return hits / max(total, 1), "token argmax" if task == Task.TOKEN_CLASSIFICATION else "top-1 token"
    # Feature extraction: would a nearest-neighbour search find the same item? Searched within
    # one sequence length: the same text padded to two lengths has the same embedding, a tie.
    hits = 0
    for length in sorted({m.shape[1] for m in masks}):
        idx = [i for i, m in enumerate(masks) if m.shape[1] == length]
        ref = np.concatenate([refs[i]["embedding"] for i in idx]).astype(np.float64)
        got = np.concatenate([gots[i]["embedding"] for i in idx]).astype(np.float64)
        ref /= np.linalg.norm(ref, axis=1, keepdims=True) + 1e-12
        got /= np.linalg.norm(got, axis=1, keepdims=True) + 1e-12
        hits += int(((got @ ref.T).argmax(axis=1) == np.arange(len(idx))).sum())
    return hits / len(refs), "nearest-neighbour retrieval"


def reference_outputs(model: torch.nn.Module, feeds: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """Run the fp32 PyTorch model on each feed."""
    outs = []
    with torch.inference_mode():
        for feed in feeds:
            args = [torch.from_numpy(feed[n]) for n in model.input_names]
            result = model(*args)
            outs.append({n: t.float().numpy() for n, t in zip(model.output_names, result)})
    return outs


def compare(
    model: torch.nn.Module, load: Callable[[], Runner], feeds: list[dict[str, np.ndarray]], task: Task,
    tolerance: Tolerance, verbose: bool = True,
) -> ParityReport:
    """Run the named validation steps and return the full report."""
    report = ParityReport(samples=len(feeds), tolerance=tolerance.to_dict())

    def step(name: str, ok: bool, detail: str) -> bool:
        report.steps.append(Step(name, ok, detail))
        if verbose:
            mark = "[green]✓[/]" if ok else "[red]✗[/]"
            console.print(f"    {mark} {name}: {detail}")
        return ok

    t0 = time.perf_counter()
    runner = load()
    step("load", True, f"{time.perf_counter() - t0:.2f} s")

    want_in, want_out = tuple(model.input_names), tuple(model.output_names)
    if not step("input names", set(want_in) <= set(runner.input_names),
                f"{list(runner.input_names)} (need {list(want_in)})"):
        return report
    if not step("output names", set(want_out) <= set(runner.output_names),
                f"{list(runner.output_names)} (need {list(want_out)})"):
        return report

    refs = reference_outputs(model, feeds)
    gots = [runner.run(feed) for feed in feeds]
    masks = [feed["attention_mask"] for feed in feeds]
    bad = [f"{n}: {gots[0][n].shape} vs {refs[0][n].shape}" for n in want_out
           if np.asarray(gots[0][n]).shape != refs[0][n].shape]
    if not step("shapes", not bad, "; ".join(bad) or ", ".join(f"{n} {list(refs[0][n].shape)}" for n in want_out)):
        return report

    for name in want_out:
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
        report.outputs.append(OutputMetrics(
            name, float("inf") if nonfinite else float(alld.max()), float(np.mean(alld)), min(cos), min(ps)))

    fails = []
    for o in report.outputs:
        if tolerance.max_abs is not None and not o.max_abs <= tolerance.max_abs:
            fails.append(f"{o.name} max_abs {o.max_abs:.3g} > {tolerance.max_abs:.3g}")
        if tolerance.min_cosine is not None and not o.cosine >= tolerance.min_cosine:
            fails.append(f"{o.name} cosine {o.cosine:.6f} < {tolerance.min_cosine}")
        if tolerance.min_psnr is not None and not o.psnr >= tolerance.min_psnr:
            fails.append(f"{o.name} PSNR {o.psnr:.1f} dB < {tolerance.min_psnr} dB")
    detail = "; ".join(f"{o.name} max_abs={o.max_abs:.3g} cos={o.cosine:.6f} psnr={o.psnr:.1f}dB" for o in report.outputs)
    step("values", not fails, "; ".join(fails) if fails else detail)

    report.agreement, report.agreement_metric = task_agreement(task, refs, gots, masks)
    agree_ok = tolerance.min_agreement is None or report.agreement >= tolerance.min_agreement
    if not agree_ok:
        fails.append(f"agreement {report.agreement:.1%} < {tolerance.min_agreement:.0%}")
    step("task agreement", agree_ok, f"{report.agreement:.1%} ({report.agreement_metric}, {len(feeds)} samples)")
    report.failures = fails
    return report
