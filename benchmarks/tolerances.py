"""Calibrate the parity value bounds: honest value, bound, worst damaged value per target x precision.

    nice -n 10 .venv/bin/python benchmarks/tolerances.py                       # everything
    nice -n 10 .venv/bin/python benchmarks/tolerances.py --targets onnx,ort --models minilm
    nice -n 10 .venv/bin/python benchmarks/tolerances.py --render-only         # md from the json

For every model, target and precision (edgekit.core.registry.converters(); a precision is skipped only
when its runtime is not installed, and the result says so) it exports, with edgekit's own export
and validate path (as tests/targets/test_damage.py does):
  honest      the model itself,
  damaged     a damaged copy (edgekit.check.parity.damaged_copy): the mildest damage of the precision's
              class, the case closest to passing that the bound must still catch,
              float (fp32, fp16): ffn-x1.02 (one FFN matrix x1.02, a bad fp16 weight);
              compressed: layer-x1.10 (one layer's weights x1.10, its int8 scales x1.10);
  gross       palettes only: halved, zeroed, reversed (the issue's palette damage),
and validates each file against the *undamaged* fp32 PyTorch model with the target's declared
bound, on edgekit's parity inputs at seq 64 (4 random-id inputs + the shipped real texts). Kept per
file: worst-sample cosine, worst-sample PSNR, max abs (worst over outputs), the agreement counts,
the status the bound gave. "pytorch" (a pseudo-target) is each damage in fp32 PyTorch without an
export: what the damage alone costs, before a file adds its own precision error.

Models: the embedded all-MiniLM-L6-v2 (feature-extraction) and a BERT-base-shaped random model
(hidden 768, 12 heads, FFN 3072, vocab 30522, transformers' default init, seed 0) with a
question-answering head; 2 layers instead of 12 to fit the sweep on a shared 2-core machine.

Results merge into benchmarks/results/tolerances.json row by row (model, target, precision, case),
written after every file, so a run can be partial (--targets, --models) or interrupted and resumed
(--resume skips rows already there); each row keeps the command, date and load average it came
from. The md is rendered from the whole json against the bounds in the code *now*.
"""
from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402

#: Short, so that the ~140 files of a sweep fit a shared 2-core machine. Honest int8 errors grow
#: with length (the tokens attend over more quantised states): a bound near an honest value here
#: needs room for the default 128 (and 384 for QA).
SEQ = "64"
#: The damage of each precision class closest to passing: the case every bound must still catch.
MILDEST = {"float": "ffn-x1.02", "compressed": "layer-x1.10"}
#: The issue's palette damage (a reversed LUT, zeroed FFN, halved tables), on every palette precision.
GROSS = ("halved", "zeroed", "reversed")
PALETTES = ("palettize8", "palettize6", "palettize4")
#: Core ML runs through edgekit's numpy MIL interpreter (plus its ANE-like second pass): its real
#: texts are capped (--coreml-texts) so the sweep fits; the row records how many samples ran.
SLOW_TARGETS = ("coreml",)
#: Flags a precision needs to be exportable at all (int4 blocks need iOS 18).
FLAGS = {("coreml", "int4-weight"): {"deployment_target": "iOS18"}}
MODELS = {
    "minilm": "all-MiniLM-L6-v2 (feature-extraction)",
    "bertbase": "BERT-base-shaped random, 2 layers (question-answering)",
}
MODEL_TASKS = {"minilm": "feature-extraction", "bertbase": "question-answering"}
PYTORCH = "pytorch"  # pseudo-target: the damage in fp32 PyTorch, no export


@dataclass
class Row:
    """One file (or, for ``pytorch``, one damaged model) validated against the undamaged model."""

    model: str
    target: str
    precision: str
    case: str                        # "honest" or a damaged_copy kind
    status: str                      # validated / parity-failed / export-failed / skipped / measured
    reason: str | None = None
    cosine: float | None = None      # worst sample, worst output
    psnr: float | None = None        # worst sample, worst output, dB
    max_abs: float | None = None     # largest over outputs and samples
    outputs: list[dict[str, Any]] = field(default_factory=list)
    agreed: int | None = None
    decisive: int | None = None
    judged: int | None = None
    agreement_metric: str = ""
    samples: int = 0
    text_samples: int = 0
    ane_like: dict[str, Any] | None = None   # Core ML: the ANE-like second pass (worst values)
    bound: dict[str, float] = field(default_factory=dict)   # the bound validated with
    export_s: float | None = None
    validate_s: float | None = None
    command: str = ""
    date: str = ""
    loadavg: list[float | str] | None = None   # 1/5/15-minute load averages (early rows: as /proc/loadavg's text)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.model, self.target, self.precision, self.case)


def _finite(x: float) -> float | None:
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


def _worst(outputs: list[Any]) -> dict[str, float | None]:
    return {"cosine": _finite(min(o.cosine for o in outputs)), "psnr": _finite(min(o.psnr for o in outputs)),
            "max_abs": _finite(max(o.max_abs for o in outputs))}


def _from_record(row: Row, rec: Any) -> Row:
    row.status, row.reason, row.bound = rec.status.value, rec.reason, dict(rec.tolerance)
    rep = rec.parity
    if rep is None:
        return row
    if rep.outputs:
        row.__dict__.update(_worst(rep.outputs))
        row.outputs = [{k: _finite(v) if isinstance(v, float) else v for k, v in asdict(o).items()}
                       for o in rep.outputs]
    row.agreed, row.decisive, row.judged, row.agreement_metric = rep.agreed, rep.decisive, rep.judged, rep.agreement_metric
    row.samples, row.text_samples = rep.samples, rep.text_samples
    if rep.ane_like is not None:
        row.ane_like = ({"error": rep.ane_like.error} if rep.ane_like.error else
                        {**_worst(rep.ane_like.outputs), "samples": rep.ane_like.samples})
    return row


def export_and_validate(model: Any, tok: Any, src: Any, conv: Any, precision: Any, n_text: int | None,
                        row: Row) -> Row:
    """Export ``src`` (the model or a damaged copy, in memory: the pipeline's planned job, exported by its
    stage) and validate the file against ``model``: tests/targets/test_damage.py's path, with the
    target's declared bound. Not ``edgekit.export``/``edgekit.validate``: those take model folders, and a
    damaged copy exists only in memory (DESIGN.md, "Public API")."""
    from edgekit.build.stage import export_model
    from edgekit.check.verdict import validate_artifact
    from edgekit.core.record import Status

    with tempfile.TemporaryDirectory(prefix="edgekit-tol-") as tmp:
        t0 = time.perf_counter()
        rec = export_model(src, job(model, conv.name, precision.value), Path(tmp), tokenizer=tok, validate=False,
                           verbose=False)
        row.export_s = round(time.perf_counter() - t0, 1)
        if rec.status == Status.EXPORT_FAILED:
            row.status, row.reason = rec.status.value, rec.reason
            return row
        t0 = time.perf_counter()
        rec = validate_artifact(Path(tmp) / rec.artifact, rec, model, tok, conv.tolerance(precision),
                                verbose=False, n_text=n_text)
        row.validate_s = round(time.perf_counter() - t0, 1)
    return _from_record(row, rec)


class _TorchRunner:
    """A damaged PyTorch model behind the Runner interface: the damage without any export."""

    def __init__(self, model: Any) -> None:
        self.model, self.input_names, self.output_names = model, model.input_names, model.output_names

    def run(self, feed: dict) -> dict:
        import torch

        with torch.inference_mode():
            out = self.model(*[torch.from_numpy(feed[n]) for n in self.input_names])
        return {n: t.float().numpy() for n, t in zip(self.output_names, out)}


def pytorch_damage(model: Any, tok: Any, damaged: Any, row: Row) -> Row:
    from edgekit.core.config import SeqLen
    from edgekit.core.tolerance import Tolerance
    from edgekit.check.verdict import parity_feeds
    from edgekit.check.parity import compare
    from edgekit.model.samples import embedding_index
    from edgekit.core.tasks import Task

    feeds, real = parity_feeds(model, tok, model.task, SeqLen.parse(SEQ))
    index = embedding_index(model, tok) if model.task == Task.FEATURE_EXTRACTION else None
    rep = compare(model, lambda: _TorchRunner(damaged), feeds, model.task, Tolerance(), verbose=False,
                  real=real, index=index)
    row.status = "measured"
    row.__dict__.update(_worst(rep.outputs))
    row.agreed, row.decisive, row.judged, row.agreement_metric = rep.agreed, rep.decisive, rep.judged, rep.agreement_metric
    row.samples, row.text_samples = rep.samples, rep.text_samples
    return row


def job(model: Any, target: str, precision: str) -> Any:
    """The planned job of one file (``edgekit.build.plan.plan``, checked for this model's inputs)."""
    return harness.plan_one(target, precision, SEQ, model.task, flags=dict(FLAGS.get((target, precision), {})),
                            n_inputs=len(model.input_names))


def build_model(which: str, work: Path) -> tuple[Any, Any]:
    from edgekit.model.modeling import embedded_model_path, load_model, load_tokenizer

    folder = embedded_model_path("the tolerance calibration")
    if which == "bertbase":
        folder = harness.build_checkpoint(work / "bert-base-shaped", "question-answering", arch="bert", layers=2,
                                          tokenizer="minilm")
    return load_model(folder, MODEL_TASKS[which]), load_tokenizer(folder)


def cases(precision: Any) -> tuple[str, ...]:
    return ("honest", MILDEST["float" if precision.is_float else "compressed"]) \
        + (GROSS if precision.value in PALETTES else ())


def rows_of(data: dict[str, Any]) -> dict[tuple[str, str, str, str], Row]:
    """The rows the results json holds (none when it was measured at another length or layout)."""
    if data.get("seq") != SEQ:
        return {}
    return {r.key: r for r in (Row(**d) for d in data.get("rows", []))}


def render(data: dict[str, Any]) -> str:
    return to_markdown(rows_of(data))


def results_file(stem: Path) -> harness.Results:
    return harness.Results(stem, render, indent=1)


def save(results: harness.Results, new: Row) -> None:
    """Merge one row into the json (re-read under a lock: runs on other models or targets may write it
    at the same time) and render the md."""
    with results.update() as data:
        rows = rows_of(data)
        rows[new.key] = new
        order = {m: i for i, m in enumerate(MODELS)}
        out = sorted(rows.values(), key=lambda r: (order.get(r.model, 99), _target_rank(r.target), r.precision, r.case))
        data.clear()
        data.update({"seq": SEQ, "rows": [asdict(r) for r in out]})


def _target_rank(name: str) -> int:
    from edgekit.core import registry

    names = [PYTORCH, *registry.converters()]
    return names.index(name) if name in names else len(names)


def run(results: harness.Results, targets: list[str] | None, models: list[str], n_slow: int, resume: bool) -> None:
    from edgekit.core import registry
    from edgekit.core.errors import UsageError
    from edgekit.check.parity import damaged_copy

    convs = registry.converters()
    names = targets or [PYTORCH, *convs]
    for name in names:
        if name != PYTORCH:
            registry.get(name)  # an unknown target is a usage error up front, with the choices
    have = rows_of(results.load()) if resume else {}
    command = harness.command(__file__)

    def done(row: Row) -> Row:
        row.__dict__.update(command=command, date=harness.date(), loadavg=harness.load()[:3])
        save(results, row)
        print(f"{row.model} {row.target} {row.precision} {row.case}: {row.status} cos={row.cosine} "
              f"psnr={row.psnr} max={row.max_abs} agree={row.agreed}/{row.decisive} "
              f"({row.export_s}+{row.validate_s} s)", file=sys.stderr, flush=True)
        return row

    with tempfile.TemporaryDirectory(prefix="edgekit-tol-models-") as work:
        for mkey in models:
            model, tok = build_model(mkey, Path(work))
            damaged: dict[str, Any] = {}

            def dmodel(kind: str) -> Any:
                return damaged.setdefault(kind, damaged_copy(model, kind))

            for name in names:
                if name == PYTORCH:
                    for kind in (*MILDEST.values(), *GROSS):
                        if (mkey, PYTORCH, "fp32", kind) not in have:
                            done(pytorch_damage(model, tok, dmodel(kind), Row(mkey, PYTORCH, "fp32", kind, "")))
                    continue
                conv = convs[name]
                missing = conv.missing_module()
                # Every precision first (honest + mildest damage), then the gross palette cases:
                # an interrupted run has the calibration rows before the extras.
                jobs = [(p, c) for p in conv.precisions for c in cases(p)[:2]] \
                    + [(p, c) for p in conv.precisions for c in cases(p)[2:]]
                for p, case in jobs:
                    row = Row(mkey, conv.name, p.value, case, "")
                    if row.key in have and have[row.key].status != "error":
                        continue
                    if missing:
                        row.status, row.reason = "skipped", f"runtime not installed: {missing}"
                        done(row)
                        continue
                    try:
                        job(model, conv.name, p.value)
                    except UsageError as e:
                        row.status, row.reason = "skipped", f"not exportable: {e}"
                        done(row)
                        continue
                    src = model if case == "honest" else dmodel(case)
                    n_text = n_slow if conv.name in SLOW_TARGETS else None
                    try:
                        done(export_and_validate(model, tok, src, conv, p, n_text, row))
                    except Exception as e:  # noqa: BLE001 - one broken job must not end the sweep
                        row.status, row.reason = "error", f"{type(e).__name__}: {e}"
                        done(row)


# ---- rendering ----------------------------------------------------------------------------------
def values_pass(r: Row, bound: dict[str, float]) -> bool | None:
    """The value step's verdict on the stored numbers against ``bound`` (None: no numbers): the
    rule of ``edgekit.check.parity.value_failures`` applied to the row's worst output (a value stored as
    None, i.e. not finite, fails its bound)."""
    from edgekit.core.tolerance import Tolerance
    from edgekit.check.parity import value_failures
    from edgekit.core.measures import OutputMetrics

    if r.cosine is None and r.max_abs is None:
        return None
    nan = float("nan")
    worst = OutputMetrics("worst", nan if r.max_abs is None else r.max_abs, nan,
                          nan if r.cosine is None else r.cosine, nan if r.psnr is None else r.psnr)
    return not value_failures([worst], Tolerance(**bound))


def agreement_passes(r: Row, bound: dict[str, float]) -> bool:
    need = bound.get("min_agreement")
    return need is None or not r.decisive or (r.agreed or 0) / r.decisive >= need


def separating(honest: list[Row], damaged: list[Row]) -> str:
    """Which value bound could lie strictly between every honest and every damaged file given."""
    h = [r for r in honest if r.cosine is not None]
    d = [r for r in damaged if r.cosine is not None]
    if not h or not d:
        return "—"
    found = []
    lo, hi = max(r.cosine for r in d), min(r.cosine for r in h)
    if hi > lo:
        # A gap far smaller than the honest error itself is no bound: one more sample moves it.
        hair = " (by a hair: gap < 10% of the honest 1 - cos)" if hi - lo < 0.1 * (1 - hi) else ""
        found.append(f"cos in ({lo:.6f}, {hi:.6f}){hair}")
    hp, dp = [r.psnr for r in h if r.psnr is not None], [r.psnr for r in d if r.psnr is not None]
    if hp and dp and min(hp) > max(dp):
        found.append(f"PSNR in ({max(dp):.1f}, {min(hp):.1f}) dB")
    hm, dm = [r.max_abs for r in h if r.max_abs is not None], [r.max_abs for r in d if r.max_abs is not None]
    if hm and dm and max(hm) < min(dm):
        found.append(f"max abs in ({max(hm):.3g}, {min(dm):.3g})")
    return "yes: " + "; ".join(found) if found else "**NO**"


def _v(r: Row | None) -> str:
    if r is None:
        return "not measured"
    if r.cosine is None:
        return f"{r.status}: {(r.reason or '')[:60]}"
    agr = f" · agree {r.agreed}/{r.decisive}" if r.decisive is not None else ""
    return f"cos {r.cosine:.6f} · {r.psnr:.1f} dB · max {r.max_abs:.2g}{agr}"


def _b(b: dict[str, float]) -> str:
    parts = []
    if "max_abs" in b:
        parts.append(f"max ≤ {b['max_abs']:g}")
    if "min_cosine" in b:
        parts.append(f"cos ≥ {b['min_cosine']:g}")
    if "min_psnr" in b:
        parts.append(f"≥ {b['min_psnr']:g} dB")
    if "min_agreement" in b:
        parts.append(f"agree ≥ {b['min_agreement']:g}")
    return " · ".join(parts) or "none"


#: What the bound does to a file, by (values pass, agreement passes): an honest file should pass,
#: a damaged one should be caught.
_HONEST = {False: "**NO** (values)", True: {True: "yes", False: "**NO** (agreement)"}}
_DAMAGED = {False: "yes (values)", True: {True: "**NO**", False: "yes (agreement only)"}}


def _verdict(words: dict[bool, Any], r: Row | None, bound: dict[str, float]) -> str:
    v = values_pass(r, bound) if r else None
    if v is None:
        return "—"
    return words[False] if not v else words[True][agreement_passes(r, bound)]


def _verdict_honest(r: Row | None, bound: dict[str, float]) -> str:
    return _verdict(_HONEST, r, bound)


def _verdict_damaged(r: Row | None, bound: dict[str, float]) -> str:
    return _verdict(_DAMAGED, r, bound)


def to_markdown(rows: dict[tuple[str, str, str, str], Row]) -> str:
    from edgekit.core import registry
    from edgekit.core.precision import Precision

    def bound_now(target: str, precision: str) -> dict[str, float]:
        return registry.get(target).tolerance(Precision(precision)).to_dict()

    runs: dict[str, list[Row]] = {}
    for r in sorted(rows.values(), key=lambda r: r.date):
        runs.setdefault(r.command, []).append(r)
    lines = [
        "# Parity value bounds: calibration", "",
        "Generated by `benchmarks/tolerances.py` (see its docstring). Every file here was exported by edgekit "
        "and validated by edgekit (`export_model` then `validate_artifact`) against the **undamaged** fp32 "
        f"PyTorch model, with the target's declared bound, at seq {SEQ}: 4 random-id inputs plus the shipped "
        "real texts (Wikipedia sentences; SQuAD dev pairs for QA). Values are the worst sample's cosine and "
        "PSNR and the largest absolute difference, worst over outputs; *agree* is agreed/decisive samples "
        "(embeddings: recall@10 hits among 1,024 sentences). *Damaged* is the mildest damage of the "
        "precision's class (float: one FFN matrix x1.02; compressed: one layer's weights x1.10, i.e. its "
        "int8 scales x1.10): the case closest to passing. Verdicts use the bound in the code **now** on the "
        "stored values (agreement counts are as measured).", "",
        "Runs (each row of the json keeps its command, date and load average; `--resume` fills gaps):", "",
    ]
    for cmd, rs in runs.items():
        loads = [float(r.loadavg[0]) for r in rs if r.loadavg]
        load = f"1-min load average {min(loads):.1f}-{max(loads):.1f}" if loads else "load average unknown"
        lines.append(f"- `{cmd}`: {len(rs)} rows, {rs[0].date} to {rs[-1].date} ({load}, shared 2-core machine)")
    slow = [r for r in rows.values() if r.target in SLOW_TARGETS and r.samples]
    if slow:
        lines += ["", f"Core ML runs through edgekit's numpy MIL interpreter: its files were validated on "
                  f"{min(r.text_samples for r in slow)}-{max(r.text_samples for r in slow)} real texts (+4 random ids) "
                  "instead of 64, to fit the sweep; its ANE-like second pass (fp16 accumulation) is listed apart."]
    skipped = [r for r in rows.values() if r.status in ("skipped", "export-failed", "error")]
    absent = [f"{m} {c.name} {p.value} {case}" for m in MODELS for c in registry.converters().values()
              for p in c.precisions for case in cases(p) if (m, c.name, p.value, case) not in rows]
    if skipped or absent:
        lines += ["", "Not measured:", ""]
        lines += [f"- {MODELS.get(r.model, r.model)} · {r.target} {r.precision} {r.case}: {r.status}: {r.reason}"
                  for r in skipped]
        if absent:
            lines.append(f"- not run yet ({len(absent)}; `--resume` fills them): " + ", ".join(absent))

    measured = {(r.target, r.precision) for r in rows.values()}
    combos = [(c.name, p.value) for c in registry.converters().values() for p in c.precisions
              if (c.name, p.value) in measured]
    lines += ["", "## Summary: one bound for both models", "",
              "Worst honest value and the damaged value closest to passing, over the models measured; "
              "*separable* names the value bounds that would lie strictly between them.", "",
              "| target | precision | bound (now) | worst honest | mildest damage, closest to passing | "
              "honest pass | damaged caught | separable by values |", "|---|---|---|---|---|---|---|---|"]
    for target, prec in combos:
        bound = bound_now(target, prec)
        kind = MILDEST["float" if Precision(prec).is_float else "compressed"]
        hs = [r for r in rows.values() if (r.target, r.precision, r.case) == (target, prec, "honest")]
        ds = [r for r in rows.values() if (r.target, r.precision, r.case) == (target, prec, kind)]
        hw = min((r for r in hs if r.cosine is not None), key=lambda r: r.cosine, default=None)
        dw = max((r for r in ds if r.cosine is not None), key=lambda r: r.cosine, default=None)
        hp = "all" if hs and all(_verdict_honest(r, bound) == "yes" for r in hs) else \
            ", ".join(f"{r.model}: {_verdict_honest(r, bound)}" for r in hs) or "—"
        dc = "all" if ds and all(_verdict_damaged(r, bound).startswith("yes") for r in ds) else \
            ", ".join(f"{r.model}: {_verdict_damaged(r, bound)}" for r in ds) or "—"
        lines.append(f"| {target} | {prec} | {_b(bound)} | {_v(hw)} | {_v(dw)} ({kind}) | {hp} | {dc} | "
                     f"{separating(hs, ds)} |")

    for mkey, mname in MODELS.items():
        mine = {k: r for k, r in rows.items() if r.model == mkey}
        if not mine:
            continue
        lines += ["", f"## {mname}", "",
                  "| target | precision | bound (now) | honest | damaged (case) | honest passes | damaged caught | "
                  "separable | status at run (honest / damaged) | seconds (export+validate) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for target, prec in combos:
            kind = MILDEST["float" if Precision(prec).is_float else "compressed"]
            h, d = mine.get((mkey, target, prec, "honest")), mine.get((mkey, target, prec, kind))
            if h is None and d is None:
                continue
            bound = bound_now(target, prec)
            secs = " / ".join(f"{r.export_s}+{r.validate_s}" for r in (h, d) if r)
            lines.append(f"| {target} | {prec} | {_b(bound)} | {_v(h)} | {_v(d)} ({kind}) | {_verdict_honest(h, bound)} "
                         f"| {_verdict_damaged(d, bound)} | {separating([h] if h else [], [d] if d else [])} | "
                         f"{h.status if h else '—'} / {d.status if d else '—'} | {secs} |")
        gross = [r for r in mine.values() if r.case in GROSS and r.target != PYTORCH]
        if gross:
            lines += ["", "Gross palette damage, as files:", "",
                      "| target | precision | damage | value | caught (bound now) | status at run |", "|---|---|---|---|---|---|"]
            lines += [f"| {r.target} | {r.precision} | {r.case} | {_v(r)} | "
                      f"{_verdict_damaged(r, bound_now(r.target, r.precision))} | {r.status} |" for r in gross]
        ane = [r for r in mine.values() if r.ane_like and "cosine" in r.ane_like]
        if ane:
            lines += ["", "Core ML ANE-like second pass (fp16 accumulation, fp16 LayerNorm statistics; "
                      "information unless exported with --ane):", "",
                      "| precision | case | cos | PSNR | max abs | samples |", "|---|---|---|---|---|---|"]
            lines += [f"| {r.precision} | {r.case} | {r.ane_like['cosine']:.6f} | {r.ane_like['psnr']:.1f} dB | "
                      f"{r.ane_like['max_abs']:.2g} | {r.ane_like['samples']} |" for r in ane]
        pt = [r for r in mine.values() if r.target == PYTORCH]
        if pt:
            lines += ["", "The damage alone: fp32 PyTorch, no export, against the undamaged model "
                      "(a file adds its own precision error to this):", "", "| damage | value |", "|---|---|"]
            lines += [f"| {r.case} | {_v(r)} |" for r in pt]
    lines += ["", "## Separable, but the bound in the code does not separate", ""]
    move = []
    for target, prec in combos:
        kind = MILDEST["float" if Precision(prec).is_float else "compressed"]
        bound = bound_now(target, prec)
        hs = [r for r in rows.values() if (r.target, r.precision, r.case) == (target, prec, "honest")]
        ds = [r for r in rows.values() if (r.target, r.precision, r.case) == (target, prec, kind)]
        sep = separating(hs, ds)
        wrong = [f"{r.model} honest {_v(r)}" for r in hs if _verdict_honest(r, bound) != "yes"] \
            + [f"{r.model} {kind} {_v(r)}" for r in ds if _verdict_damaged(r, bound) == "**NO**"]
        if sep.startswith("yes") and wrong:
            move.append(f"- {target} {prec} (bound {_b(bound)}): " + "; ".join(wrong) + f". A bound could sit at {sep[5:]}.")
    lines += move or ["None: wherever values separate honest from damaged files, the bound does."]
    lines += ["", "## Not separable by values", ""]
    bad = []
    for target, prec in combos:
        kind = MILDEST["float" if Precision(prec).is_float else "compressed"]
        hs = [r for r in rows.values() if (r.target, r.precision, r.case) == (target, prec, "honest")]
        ds = [r for r in rows.values() if (r.target, r.precision, r.case) == (target, prec, kind)]
        if separating(hs, ds) == "**NO**":
            h = min((r for r in hs if r.cosine is not None), key=lambda r: r.cosine)
            d = max((r for r in ds if r.cosine is not None), key=lambda r: r.cosine)
            bad.append(f"- {target} {prec}: honest {_v(h)} ({h.model}) vs {kind} {_v(d)} ({d.model}): "
                       "no cosine, PSNR or max-abs bound passes every honest file and fails every damaged one.")
    lines += bad or ["Every measured target x precision has a value bound between its honest and damaged files."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = harness.parser(__doc__, full_doc=True, resume=True, render_only=True, out=harness.RESULTS / "tolerances",
                        out_help="the results' path without .md/.json")
    ap.add_argument("--targets", help=f"comma-separated targets, {PYTORCH} for the damage alone (default: all)")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    ap.add_argument("--coreml-texts", type=int, default=16, help="real texts per Core ML file (default 16)")
    args = ap.parse_args(argv)
    from edgekit.core.console import quiet_backends

    quiet_backends()
    results = results_file(args.out)
    if args.render_only:
        return results.render_only()
    unknown = set(args.models.split(",")) - set(MODELS)
    if unknown:
        ap.error(f"unknown model(s) {sorted(unknown)}: choose from {list(MODELS)}")
    run(results, args.targets.split(",") if args.targets else None, args.models.split(","), args.coreml_texts,
        args.resume)
    results.write_md(results.load())
    print(results.md.read_text())
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
