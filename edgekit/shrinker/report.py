"""The shrink report: every candidate file side by side on the same DEV questions, and the chosen one.

A candidate is chosen only when the paired-bootstrap 95% interval of its drop below the teacher lies
wholly within ``max_drop`` (``quality.gate.verdict`` says ``pass``): a point estimate inside the
bound with an interval that crosses it is ``undecided`` and never chosen. Among the passing,
validated files the fastest per question wins. An undecided file that would be faster than the choice
is scored on more DEV questions by the run (``shrinker.run``), so a candidate's ``n`` may exceed the
report's ``n_dev``; its Δ and interval are always against the teacher on the same ``n`` questions.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Candidate:
    """One exported file measured on DEV."""

    model: str                      # "teacher" | "student"
    precision: str
    buckets: list[int]              # the lengths the file runs ([384]: fixed)
    artifact: str                   # path relative to OUT
    status: str                     # the record's status (validated, parity-failed, …)
    size_mb: float | None = None
    metric: float | None = None     # F1 (QA) or accuracy on DEV
    delta: float | None = None      # metric - teacher's (PyTorch) metric
    interval: list[float] | None = None  # 95% interval of the drop (teacher - file)
    verdict: str | None = None      # pass | fail | undecided (against max_drop)
    same_answer: float | None = None     # share of DEV answers identical to the teacher's
    ms_per_question: float | None = None
    passes_ms: list[float] = field(default_factory=list)
    speedup: float | None = None    # baseline ms / this ms
    baseline: bool = False          # the teacher's fp32 file at fixed length
    gate: str | None = None         # the export gate's verdict against the file's own PyTorch model
    note: str | None = None
    n: int | None = None            # DEV questions its metric, Δ and interval are on (more than n_dev: extended)
    arm64: str | None = None        # the parity check in the aarch64 runtime under emulation (--arch arm64)

    @property
    def label(self) -> str:
        return f"{self.model} {self.precision} {_buckets(self.buckets)}"


def _buckets(b: list[int]) -> str:
    return "fixed " + str(b[0]) if len(b) == 1 else "buckets " + ",".join(map(str, b))


@dataclass
class ShrinkReport:
    """What ``edgekit shrink`` returns and writes as OUT/report.md|json|html."""

    task: str
    metric: str                      # "f1" | "accuracy"
    target: str
    teacher: str
    student: str | None
    out: str
    max_drop: float
    n_dev: int
    teacher_metric: float
    candidates: list[Candidate]
    chosen: str | None               # the chosen candidate's artifact
    reason: str
    layer_map: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    general: dict[str, Any] = field(default_factory=dict)  # the general distillation before training, if run
    budget_note: str | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    bundle: dict[str, Any] | None = None
    command: str | None = None

    @property
    def chosen_candidate(self) -> Candidate | None:
        return next((c for c in self.candidates if c.artifact == self.chosen), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShrinkReport:
        d = dict(d)
        d["candidates"] = [Candidate(**c) for c in d["candidates"]]
        return cls(**d)


def undecided_text(c: Candidate, n: int | None = None, n_all: int | None = None) -> str:
    """``undecided at N — evaluate more questions``, or ``… on all N DEV questions`` when DEV has no more."""
    at = c.n or n
    if at and n_all and at >= n_all:
        return f"undecided on all {at} DEV questions"
    return f"undecided{f' at {at}' if at else ''} — evaluate more questions"


def choose(candidates: list[Candidate], max_drop: float, n: int | None = None,
           n_all: int | None = None) -> tuple[Candidate | None, str]:
    """The fastest validated candidate whose whole drop interval is within ``max_drop``, and why.
    ``n``: the DEV questions a candidate without its own ``n`` was scored on; ``n_all``: all DEV has."""
    timed = [c for c in candidates if c.ms_per_question is not None and c.interval is not None]
    ok = [c for c in timed if c.verdict == "pass" and c.status == "validated"]
    undecided = [c for c in timed if c.verdict == "undecided" and c.status == "validated"]
    if not ok:
        why = f"no file's 95% interval of the drop lies within {max_drop:g} points"
        if undecided:
            why += "; " + ", ".join(f"{c.label} ({undecided_text(c, n, n_all)})" for c in undecided)
        return None, why
    best = min(ok, key=lambda c: (c.ms_per_question, c.size_mb or 0.0))
    why = (f"fastest file whose 95% interval of the drop [{best.interval[0]:+.2f}, {best.interval[1]:+.2f}] "
           f"lies within {max_drop:g} points of the teacher: {best.ms_per_question:.1f} ms/question"
           + (f", {best.speedup:.2f}x the baseline" if best.speedup else "")
           + (f", {best.size_mb:.1f} MB" if best.size_mb else ""))
    faster = [c for c in timed if c.ms_per_question < best.ms_per_question and c is not best]
    skipped = []
    for c in sorted(faster, key=lambda c: c.ms_per_question):
        if c.status != "validated":
            skipped.append(f"{c.label} ({c.status})")
        elif c.verdict == "undecided":
            skipped.append(f"{c.label} ({undecided_text(c, n, n_all)})")
        else:
            skipped.append(f"{c.label} ({c.verdict})")
    if skipped:
        why += "; faster but not chosen: " + "; ".join(skipped)
    return best, why


# ---- rendering -----------------------------------------------------------------------------------

def _f(v: Any, spec: str, none: str = "—") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return none
    if spec.startswith("+") and isinstance(v, float) and abs(v) < 0.005:
        v = 0.0  # no "-0.00"
    return format(v, spec)


COLUMNS = ["model", "precision", "lengths", "status", "{M}", "Δ{M} vs teacher", "95% interval of the drop",
           "verdict", "DEV n", "same answer", "MB", "ms/question", "speed-up"]


def _checked_arm64(rep: ShrinkReport) -> bool:
    return any(c.arm64 is not None for c in rep.candidates)


def columns(rep: ShrinkReport) -> list[str]:
    """The table's columns (``arm64`` when the run checked its files on the phone's CPU)."""
    m = "F1" if rep.metric == "f1" else "accuracy"
    return [c.replace("{M}", m) for c in COLUMNS] + (["arm64"] if _checked_arm64(rep) else [])


def arm64_summary(result: dict[str, Any] | None) -> str | None:
    """A record's ``arm64`` field in a few words: ``✓ neoverse-n1, max``, ``✗ max (…)``, ``not checked (…)``."""
    if result is None:
        return None
    if not result.get("checked"):
        return f"not checked ({result.get('reason')})"
    cpus = result.get("cpus", {})
    bad = [c for c, r in cpus.items() if not r.get("passed")]
    if bad:
        return "✗ " + ", ".join(f"{c} ({'; '.join(cpus[c].get('failures') or [])})" for c in bad)
    return "✓ " + ", ".join(cpus)


def rows(rep: ShrinkReport) -> list[list[str]]:
    out = []
    arm = _checked_arm64(rep)
    for c in rep.candidates:
        mark = " ⭐" if c.artifact == rep.chosen else (" (baseline)" if c.baseline else "")
        out.append([c.model + mark, c.precision, _buckets(c.buckets), c.status, _f(c.metric, ".2f"),
                    _f(c.delta, "+.2f"),
                    f"[{_f(c.interval[0], '+.2f')}, {_f(c.interval[1], '+.2f')}]" if c.interval else "—",
                    c.verdict or "—", _f(c.n if c.n is not None else (rep.n_dev if c.metric is not None else None), "d"),
                    _f(None if c.same_answer is None else 100 * c.same_answer, ".1f") + (
                        "%" if c.same_answer is not None else ""),
                    _f(c.size_mb, ".1f"), _f(c.ms_per_question, ".1f"), _f(c.speedup, ".2f") + (
                        "x" if c.speedup is not None else "")] + ([c.arm64 or "—"] if arm else []))
    return out


def header_lines(rep: ShrinkReport) -> list[str]:
    m = rep.metric.upper() if rep.metric == "f1" else rep.metric
    lines = [f"Teacher {rep.teacher}: {m} {rep.teacher_metric:.2f} on {rep.n_dev} DEV "
             f"{'questions' if rep.task == 'question-answering' else 'examples'} (PyTorch)"]
    if rep.layer_map:
        lm = rep.layer_map
        meas = ", ".join(f"{x['map']} {x['score']:.2f}" for x in lm.get("measured", []))
        line = (f"Student: teacher layers {lm.get('map')} of {lm.get('teacher_layers')} ({lm.get('chosen_by')}; "
                f"held-out slice of TRAIN, untrained: {meas}")
        if lm.get("probed"):
            pb = lm.get("probe") or {}
            length = f"{pb['steps']} steps" if "steps" in pb else f"{pb.get('budget_minutes', 0):g} minutes"
            line += (f"; after a probe of {length}: "
                     + ", ".join(f"{x['map']} {x['score']:.2f}" for x in lm["probed"]))
        if lm.get("margin"):
            line += f"; the kept map {lm['margin']['text']}"
        lines.append(line + ")")
    g = rep.general
    if g:
        gc = g.get("card", {})
        loss = (f", loss {g['first_loss']:.3g} -> {g['final_loss']:.3g}"
                if g.get("first_loss") is not None and g.get("final_loss") is not None else "")
        lines.append(f"General distillation before the task: {gc.get('steps')} steps of {gc.get('batch_size')} "
                     f"paragraphs of {g.get('text')} (the teacher's final hidden states), {gc.get('elapsed_s')} s{loss}")
    tr = rep.training
    if tr:
        card = tr.get("card", {})
        scores = ", ".join(f"step {s['step']} {s['score']:.2f}" for s in tr.get("scores", []))
        lines.append(f"Training: {card.get('steps')} steps of {card.get('batch_size')} windows, "
                     f"{card.get('elapsed_s')} s; checkpoints on the held-out slice of TRAIN ({scores}); "
                     f"kept step {tr.get('chosen_step')}"
                     + (f": {tr['chosen_because']}" if tr.get("chosen_because") else ""))
    if rep.budget_note:
        lines.append(rep.budget_note)
    mach = rep.machine
    if mach:
        lines.append(f"Measured on {mach.get('cpu')}, {mach.get('threads')} threads, {mach.get('passes')} passes "
                     f"of {mach.get('n_timed')} DEV questions per file (each file in its own process), load average "
                     f"{mach.get('load_min')}–{mach.get('load_max')}")
    return lines


def markdown(rep: ShrinkReport) -> str:
    m = "F1" if rep.metric == "f1" else "accuracy"
    cols = columns(rep)
    out = [f"# edgekit shrink: {rep.teacher} → {rep.target}", ""]
    if rep.command:
        out += ["```", rep.command, "```", ""]
    out += [f"- {line}" for line in header_lines(rep)] + [""]
    out.append("| " + " | ".join(cols) + " |")
    out.append("|" + "|".join("---" if i < 4 or c == "arm64" else "---:" for i, c in enumerate(cols)) + "|")
    out += ["| " + " | ".join(r) + " |" for r in rows(rep)]
    out.append("")
    chosen = rep.chosen_candidate
    if chosen is not None:
        out.append(f"**Chosen: `{chosen.artifact}`** ({chosen.label}) — {rep.reason}.")
    else:
        out.append(f"**No file chosen** — {rep.reason}.")
    out.append("")
    out.append(f"Δ{m} and the same-answer rate are against the teacher in PyTorch on the same DEV items (the "
               f"first {rep.n_dev}, or the first \"DEV n\" where a file was scored on more); the interval is a paired "
               f"bootstrap (95%) of the drop. verdict: pass = the whole interval within {rep.max_drop:g} points, "
               f"fail = wholly beyond it, undecided = it straddles the bound (never chosen; an undecided file "
               f"faster than the choice is scored on twice the questions, round by round, until it is decided "
               f"or DEV has no more). Speed-up is against the baseline, the teacher's fp32 file at fixed length.")
    notes = [f"- {c.label}: {c.note}" for c in rep.candidates if c.note]
    if notes:
        out += ["", "Notes:"] + notes
    if rep.bundle:
        out += ["", f"Bundled for {rep.bundle.get('app')}: `{rep.bundle.get('out')}` ({rep.bundle.get('artifact')})"]
    return "\n".join(out) + "\n"


def to_json(rep: ShrinkReport) -> str:
    return json.dumps(rep.to_dict(), indent=2) + "\n"


def scatter_svg(rep: ShrinkReport, width: int = 680, height: int = 400) -> str:
    """F1 (or accuracy) against ms per question, one point per candidate, the marker's area ∝ size."""
    from edgekit.measure.html import SVG_OPEN, TITLE, _esc, _nice_max, _ticks

    pts = [c for c in rep.candidates if c.ms_per_question is not None and c.metric is not None]
    title = f"{'F1' if rep.metric == 'f1' else 'accuracy'} vs ms per question (marker area: file size)"
    if not pts:
        return f'<p class="empty">{_esc(title)}: no measured files.</p>'
    left, right, top, bottom = 64, 170, 30, 45
    pw, ph = width - left - right, height - top - bottom
    xmax = _nice_max(max(c.ms_per_question for c in pts) * 1.1)
    lo = min(min(c.metric for c in pts), rep.teacher_metric - rep.max_drop)
    hi = max(max(c.metric for c in pts), rep.teacher_metric)
    pad = max(1.0, (hi - lo) * 0.15)
    ylo, yhi = max(0.0, lo - pad), min(100.0, hi + pad)
    smax = max((c.size_mb or 0.0) for c in pts) or 1.0

    def x(v: float) -> float:
        return left + pw * v / xmax

    def y(v: float) -> float:
        return top + ph * (1 - (v - ylo) / max(1e-9, yhi - ylo))

    parts = [SVG_OPEN.format(w=width, h=height, label=_esc(title)),
             f'<text x="{left + pw / 2}" y="18" text-anchor="middle" {TITLE}>{_esc(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for t in _ticks(xmax):
        parts.append(f'<text x="{x(t):.1f}" y="{top + ph + 16}" text-anchor="middle">{t:g}</text>')
    for i in range(6):
        v = ylo + (yhi - ylo) * i / 5
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle">ms per question</text>')
    bound = rep.teacher_metric - rep.max_drop
    parts.append(f'<line x1="{left}" y1="{y(bound):.1f}" x2="{left + pw}" y2="{y(bound):.1f}" stroke="#c62828" '
                 f'stroke-dasharray="6 4"/><text x="{left + pw + 4}" y="{y(bound) + 4:.1f}" fill="#c62828">'
                 f'teacher − {rep.max_drop:g}</text>')
    for c in sorted(pts, key=lambda c: -(c.size_mb or 0)):
        r = 3 + 12 * math.sqrt((c.size_mb or 0) / smax)
        color = "#1f77b4" if c.model == "teacher" else "#ff7f0e"
        stroke = ' stroke="#000" stroke-width="2.5"' if c.artifact == rep.chosen else ""
        parts.append(f'<circle cx="{x(c.ms_per_question):.1f}" cy="{y(c.metric):.1f}" r="{r:.1f}" fill="{color}" '
                     f'fill-opacity="0.55"{stroke}><title>{_esc(c.label)}: {c.metric:.2f}, '
                     f'{c.ms_per_question:.1f} ms, {_f(c.size_mb, ".1f")} MB</title></circle>')
    parts.append(f'<text x="{left + pw + 4}" y="{top + 12}" fill="#1f77b4">● teacher</text>'
                 f'<text x="{left + pw + 4}" y="{top + 28}" fill="#ff7f0e">● student</text>'
                 f'<text x="{left + pw + 4}" y="{top + 44}">◯ bold: chosen</text>')
    parts.append("</svg>")
    return "".join(parts)


def html(rep: ShrinkReport) -> str:
    from edgekit.measure.html import CSS, _esc

    title = f"edgekit shrink: {rep.teacher} → {rep.target}"
    out = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>", f"<title>{_esc(title)}</title>",
           f"<style>{CSS}</style></head><body>", f"<h1>{_esc(title)}</h1><ul class='header'>"]
    out += [f"<li>{_esc(line)}</li>" for line in header_lines(rep)]
    out.append("</ul>")
    chosen = rep.chosen_candidate
    out.append(f"<p><b>{'Chosen: ' + _esc(chosen.artifact) if chosen else 'No file chosen'}</b> — {_esc(rep.reason)}</p>")
    out.append("<div class='charts'>" + scatter_svg(rep) + "</div>")
    cols = columns(rep)
    out.append("<table><thead><tr>" + "".join(f"<th>{_esc(c)}</th>" for c in cols) + "</tr></thead><tbody>")
    for r in rows(rep):
        out.append("<tr>" + "".join(f"<td{' class=num' if 4 <= i < len(COLUMNS) else ''}>{_esc(v)}</td>"
                                    for i, v in enumerate(r))
                   + "</tr>")
    out.append("</tbody></table></body></html>")
    return "\n".join(out) + "\n"


def write(rep: ShrinkReport, out: Path) -> None:
    from edgekit.core.record import atomic_write_text

    atomic_write_text(out / "report.md", markdown(rep))
    atomic_write_text(out / "report.json", to_json(rep))
    atomic_write_text(out / "report.html", html(rep))
