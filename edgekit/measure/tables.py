"""The report of a folder of exported artifacts: one row model, one table, one JSON shape, one HTML page.

``collect(folder)`` reads the records; ``build(records)`` makes the ``Report`` (host header and
one ``Row`` per artifact, plus, as an option, one PyTorch eager row per bench run and length);
``markdown``/``to_json``/``html.render`` turn it into text; ``write_reports(folder)`` writes all
three next to the artifacts. ``export``, ``demo``, ``bench`` and ``benchmarks/`` all go through here.
"""
from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit.core.record import ArtifactRecord, Status, is_record, model_stem

EAGER = "pytorch-eager"
REFERENCE = "reference"  # the status of an eager baseline row
FLAGGED_COLOUR = "#c62828"  # a ❗ row: a record that contradicts itself or its file, or cannot be read


@dataclass
class Unreadable:
    """A record a report could not read (truncated, not JSON, a schema this edgekit does not know):
    it becomes a ❗ row with the reason; its artifact never silently drops out of the table."""

    artifact: str
    target: str
    reason: str


class Records(list):  # type: ignore[type-arg]
    """``collect``'s answer: the readable records (a list, in table order), and ``unreadable``, the
    records that could not be read, which ``build`` shows as ❗ rows."""

    def __init__(self, records: Any = (), unreadable: list[Unreadable] | None = None) -> None:
        super().__init__(records)
        self.unreadable: list[Unreadable] = list(unreadable or [])


def _is_sidecar(path: Path) -> bool:
    """Whether a JSON file that cannot be read is an artifact's record: its artifact is beside it, or
    its name ends with a target's suffix plus ``.json`` (an export-failed record has no artifact)."""
    from edgekit.core import registry

    stem = path.name[: -len(".json")]
    if path.with_name(stem).exists():
        return True
    try:
        suffixes = [c.suffix for c in registry.converters().values()]
    except Exception:  # noqa: BLE001 - a broken plug-in: judge by the artifact beside it only
        suffixes = []
    return any(s and stem.endswith(s) for s in suffixes)


def _target_of(name: str) -> str:
    from edgekit.core import registry

    try:
        return next((c.name for c in registry.converters().values() if c.suffix and name.endswith(c.suffix)), "?")
    except Exception:  # noqa: BLE001
        return "?"


def _read_one(path: Path, check: bool) -> ArtifactRecord | Unreadable | None:
    """One sidecar: its record (with ``checks`` when asked), an Unreadable, or None (not a record)."""
    from edgekit.check import integrity

    artifact = path.name[: -len(".json")]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        if not _is_sidecar(path):
            return None  # some other JSON file (a golden file, a config): not the report's business
        why = "truncated or not JSON" if isinstance(e, ValueError) else "cannot be read"
        return Unreadable(artifact, _target_of(artifact), f"record {path.name} {why} ({type(e).__name__}: {e})")
    if not is_record(data):
        return None
    try:
        record = ArtifactRecord.from_dict(data)
    except Exception as e:  # noqa: BLE001 - a schema this edgekit cannot read, or a field of the wrong type
        target = data.get("target") if isinstance(data.get("target"), str) else _target_of(artifact)
        return Unreadable(str(data.get("artifact") or artifact), target,
                          f"record {path.name} cannot be read: {e}")
    if check:
        # Not a record field: what this report found when it checked the record against its file
        # and its own numbers. A row with findings shows ❗.
        record.checks = integrity.problems(path.with_name(artifact), record)  # type: ignore[attr-defined]
    return record


def collect(folder: Path, check: bool = False) -> Records:
    """Every record under ``folder``, in table order (task, length, registry target order, precision),
    and (``.unreadable``) every record that could not be read.

    ``check``: also check each record against its file and its own numbers (edgekit.check.integrity;
    hashes every artifact). ``edgekit report`` does. A record read while an export was replacing its
    pair is read again once that install has finished (``install.read_settled``), so a report
    running beside exports shows each pair whole, the old one or the new one.
    """
    from edgekit.build.install import read_settled

    folder = Path(folder)
    records: list[ArtifactRecord] = []
    unreadable: list[Unreadable] = []
    for path in sorted(folder.rglob("*.json")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts[:-1]):
            continue  # staging folders of running exports (edgekit.build.install) are not results
        artifact = path.with_name(path.name[: -len(".json")])
        got = read_settled(artifact, lambda: _read_one(path, check),
                           lambda r: isinstance(r, Unreadable) or bool(getattr(r, "checks", None)))
        if isinstance(got, Unreadable):
            unreadable.append(got)
        elif got is not None:
            records.append(got)
    return Records(sorted(records, key=_order), unreadable)


def _order(r: ArtifactRecord) -> tuple[Any, ...]:
    from edgekit.core import registry
    from edgekit.core.precision import Precision

    targets = list(registry.converters())
    t = targets.index(r.target) if r.target in targets else len(targets)
    return (r.task.value, r.seq_len.max, str(r.seq_len), t, r.target, list(Precision).index(r.precision), r.artifact)


@dataclass
class Row:
    """What one table row shows (Markdown, JSON and HTML alike)."""

    artifact: str | None
    target: str
    precision: str
    task: str
    seq_len: str
    status: str                   # a Status value, or "reference" for the eager baseline
    symbol: str
    label: str
    colour: str
    reason: str | None = None
    model: str | None = None      # the source model's short name (record.model_stem): the "model" column
    size_mb: float | None = None
    size_pct_fp32: float | None = None
    max_abs: float | None = None
    cosine: float | None = None
    psnr: float | None = None
    agreement: float | None = None
    agreement_metric: str | None = None
    # The counts behind ``agreement`` (edgekit.check.parity.ParityReport): only decisive samples are judged.
    agreed: int | None = None
    decisive: int | None = None
    judged: int | None = None
    inputs_note: str | None = None  # "random inputs only": no tokenizer, no real text
    # Core ML fp16/compressed: the same file with Neural-Engine-like fp16 sums (edgekit.targets.coreml.mil).
    ane_like_cosine: float | None = None
    ane_like_psnr: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    threads: int | None = None
    eager_p50_ms: float | None = None
    speedup: float | None = None
    not_timed: str | None = None
    run: str | None = None        # the bench run the latency comes from
    second_client: dict[str, Any] | None = None  # another runtime's verdict on the same file (Task Library)
    contradictions: list[str] = field(default_factory=list)  # edgekit.check.integrity findings (then symbol ❗)
    busy: str | None = None       # the bench run's load average exceeded the machine's cores
    unreliable: str | None = None   # bench's own sanity verdict on the latency (then no × eager)
    busy_load: float | None = None  # that load average
    arm64: str | None = None        # the phone's-CPU parity verdicts ("✅ neoverse-n1, max"), or why not checked
    # The accuracy gate on real data (record.quality), when export/validate ran it: the file's score and
    # its difference to its PyTorch model's on the same questions (F1 for QA, accuracy for classifiers).
    quality_metric: str | None = None
    quality_score: float | None = None
    quality_delta: float | None = None
    quality: dict[str, Any] | None = None

    def _flagged(self) -> Row:
        if self.contradictions:  # its own colour too: a ❗ row must not keep a green "validated" look
            self.symbol, self.label, self.colour = "❗", "record contradicts itself or its file", FLAGGED_COLOUR
        return self


@dataclass
class Report:
    title: str
    host: dict[str, Any]
    rows: list[Row] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "host": self.host, "rows": [asdict(r) for r in self.rows]}

    @property
    def models(self) -> list[str]:
        """The source models of the rows, in table order."""
        return list(dict.fromkeys(r.model for r in self.rows if r.model))

    @property
    def model_column(self) -> bool:
        """Whether the rows come from more than one source model: then a "model" column names each row's."""
        return len(self.models) > 1

    @property
    def arm64_column(self) -> bool:
        """Whether some row was checked (or asked to be) on the phone's CPU: the "arm64" column."""
        return any(r.arm64 is not None for r in self.rows)

    @property
    def flagged(self) -> list[Row]:
        """The ❗ rows: a record that contradicts itself or its file, or that could not be read."""
        return [r for r in self.rows if r.contradictions]

    @property
    def quality_column(self) -> str | None:
        """The heading of the task-quality column ("F1 (Δ)"), or None when no row carries a score."""
        metrics = [r.quality_metric for r in self.rows if r.quality_score is not None]
        if not metrics:
            return None
        return "F1 (Δ)" if "f1" in metrics else "accuracy (Δ)"

    def quality_note(self) -> str | None:
        """What the quality column's numbers are (data, count), for the notes under the table."""
        q = next((r.quality for r in self.rows if r.quality_score is not None and r.quality), None)
        if not q:
            return None
        return (f"{self.quality_column}: the file's {q['metric']} on {q['n']} examples of {Path(q['data']).name} "
                "(Δ: minus its PyTorch model's on the same examples), from the accuracy gate (--eval-data).")


def _arm64_cell(a: dict[str, Any] | None) -> str | None:
    """x86's verdict is the row's status; this is the arm64 one beside it."""
    if a is None:
        return None
    if not a.get("checked"):
        return "not checked"
    cpus = a.get("cpus") or {}
    bad = [c for c, r in cpus.items() if not r.get("passed")]
    return ("✗ " + ", ".join(bad)) if bad else ("✅ " + ", ".join(cpus))


def _busy(m: Any) -> str | None:
    """Why a measurement's numbers are suspect: other work ran beside it. Judged on the runnable tasks
    besides bench's own threads while it timed the file (``Measurement.others``); a record without
    them (older edgekit) on the 1-minute load average against the core count."""
    if not m or not m.artifact:
        return None
    from edgekit.measure.bench import cpu_name

    cores = os.cpu_count() or 1
    if m.host and m.host != cpu_name():
        return None  # measured on another machine: its core count is not ours to judge
    la = m.load_average[0] if m.load_average else None
    if m.others is not None:
        if m.others >= 1:
            return (f"{m.others:.0f} other runnable task{'s' if m.others >= 2 else ''} on {cores} cores while it was "
                    f"timed" + (f" (load average {la:.1f})" if la is not None else ""))
        return None
    if la is not None and la > cores:
        return f"load average {la:.1f} > {cores} cores during the run"
    return None


def row(r: ArtifactRecord, fp32_bytes: int | None) -> Row:
    p = r.parity
    m = r.last_latency
    q = r.quality
    scored = q is not None and q.scored
    base = fp32_bytes or r.source.fp32_param_bytes
    return Row(
        artifact=r.artifact, target=r.target, precision=r.precision.value, task=r.task.value, seq_len=str(r.seq_len),
        status=r.status.value, symbol=r.status.symbol, label=r.status.label, colour=r.status.colour, reason=r.reason,
        model=_model(r), size_mb=r.size_bytes / 1e6 if r.size_bytes else None,
        size_pct_fp32=100.0 * r.size_bytes / base if r.size_bytes and base else None,
        max_abs=p.worst("max_abs") if p else None, cosine=p.worst("cosine") if p else None,
        psnr=p.worst("psnr") if p else None, agreement=p.agreement if p else None,
        agreement_metric=(p.agreement_metric or None) if p else None,
        agreed=p.agreed if p else None, decisive=p.decisive if p else None, judged=p.judged if p else None,
        inputs_note=p.inputs_note if p else None,
        ane_like_cosine=p.ane_like.worst("cosine") if p and p.ane_like else None,
        ane_like_psnr=p.ane_like.worst("psnr") if p and p.ane_like else None,
        p50_ms=m.artifact.p50_ms if m and m.artifact else None, p90_ms=m.artifact.p90_ms if m and m.artifact else None,
        threads=m.threads if m else None, eager_p50_ms=m.eager.p50_ms if m and m.eager else None,
        speedup=m.speedup if m else None, not_timed=m.not_timed if m else None, run=m.run if m else None,
        second_client=r.options.get("task_library"), arm64=_arm64_cell(r.arm64),
        contradictions=list(getattr(r, "checks", None) or []), busy=_busy(m), busy_load=m.load_average[0] if _busy(m) and m.load_average else None,
        unreliable=m.unreliable if m else None,
        quality_metric=q.metric if q else None, quality_score=q.artifact if scored else None,
        quality_delta=q.artifact - q.pytorch if scored else None, quality=asdict(q) if q else None,
    )._flagged()


def _model(r: ArtifactRecord) -> str | None:
    """The row's model: the short name its artifact's file name starts with (None: the record names none)."""
    return model_stem(r.source.source) if r.source.source else None


def _eager_rows(records: list[ArtifactRecord]) -> list[Row]:
    """One reference row per (task, length, model, bench run): never a baseline from another run or model."""
    out: dict[tuple[str | None, ...], Row] = {}
    for r in records:
        m = r.last_latency
        if not m or not m.eager:
            continue
        key = (r.task.value, str(m.seq_len), _model(r), m.run)
        if key not in out:
            size = r.source.fp32_param_bytes
            out[key] = Row(
                artifact=None, target=EAGER, precision="fp32", task=r.task.value, seq_len=str(m.seq_len),
                status=REFERENCE, symbol="", label="PyTorch eager (baseline)", colour="#1565c0", model=_model(r),
                size_mb=size / 1e6 if size else None, size_pct_fp32=100.0 if size else None,
                p50_ms=m.eager.p50_ms, p90_ms=m.eager.p90_ms, threads=m.threads, eager_p50_ms=m.eager.p50_ms,
                speedup=1.0, run=m.run)
    return list(out.values())


def host_of(records: list[ArtifactRecord]) -> dict[str, Any]:
    """The header: where the latencies were measured (from the records), else this machine."""
    from edgekit.core.threads import cores
    from edgekit.measure.bench import cpu_name

    ms = [r.last_latency for r in records if r.last_latency]
    versions: dict[str, str] = {}
    for r in records:
        versions.update(r.versions)
    threads = sorted({m.threads for m in ms})
    loads = [m.load_average for m in ms if m.load_average]
    return {
        "os": f"{platform.system()} {platform.release()}", "machine": platform.machine(),
        "cpu": next((m.host for m in ms if m.host), None) or cpu_name(), "cores": cores(),
        "threads": threads[0] if len(threads) == 1 else (threads or None),
        "pinned_cpus": next((m.pinned_cpus for m in ms if m.pinned_cpus), None),
        "load_average": loads[0] if loads else None, "load_average_end": loads[-1] if loads else None,
        "runs": sorted({m.run for m in ms}),
        "versions": dict(sorted(versions.items())),
    }


def build(records: list[ArtifactRecord], title: str = "edgekit report", baselines: bool = True) -> Report:
    """The report of ``records`` (in the order given; ``collect`` sorts)."""
    fp32 = {(r.target, r.task, str(r.seq_len), r.source.source): r.size_bytes
            for r in records if r.precision.value == "fp32" and r.size_bytes and not r.options.get("ane")}
    rows = [row(r, fp32.get((r.target, r.task, str(r.seq_len), r.source.source))) for r in records]
    several = len({rw.model for rw in rows if rw.model}) > 1
    if several:  # a folder of several models: each model's rows together, in the given order within it
        first = {m: i for i, m in reversed(list(enumerate(rw.model for rw in rows)))}
        rows.sort(key=lambda rw: first[rw.model] if rw.model else len(rows))

    def same(e: Row, rw: Row) -> bool:
        return (e.task, e.seq_len) == (rw.task, rw.seq_len) and (not several or e.model == rw.model)

    if baselines:
        eager = _eager_rows(records)
        # Each eager row goes first among the rows of its task and length (and model, when several).
        ordered: list[Row] = []
        for rw in rows:
            for e in [e for e in eager if same(e, rw)]:
                ordered.append(e)
                eager.remove(e)
            ordered.append(rw)
        rows = ordered + eager
    rows += [_unreadable_row(u) for u in getattr(records, "unreadable", [])]
    return Report(title, host_of(records), rows)


def _unreadable_row(u: Unreadable) -> Row:
    return Row(artifact=u.artifact, target=u.target, precision="?", task="?", seq_len="?", status="unreadable",
               symbol="❗", label="record unreadable", colour=FLAGGED_COLOUR, reason=u.reason,
               contradictions=[u.reason])


# ---- Markdown ----------------------------------------------------------------------------------

def _fmt(v: Any, spec: str, none: str = "—") -> str:
    return none if v is None else format(v, spec)


COLUMNS = ("", "target", "precision", "task", "seq", "size MB", "% fp32", "max abs", "cosine", "PSNR dB",
           "agreement", "agreed / decisive (of judged)", "p50 ms", "p90 ms", "× eager")
FIRST_NUMERIC = 5  # columns from here on are numbers (right-aligned), without the model column
MODEL_COLUMN = 1   # where the "model" column goes when a folder holds several models


def columns(rep: Report) -> list[str]:
    """The table's headings: COLUMNS, with "model" when the rows come from several models, the
    task-quality column when some row carries a score, "arm64" when some row was checked there."""
    q = rep.quality_column
    cols = list(COLUMNS)
    if rep.model_column:
        cols.insert(MODEL_COLUMN, "model")
    return cols + ([q] if q else []) + (["arm64"] if rep.arm64_column else [])


def first_numeric(rep: Report) -> int:
    """The index of the first right-aligned (numeric) column of ``columns(rep)``."""
    return FIRST_NUMERIC + (1 if rep.model_column else 0)


def cells(d: Row, quality: bool = False, arm64: bool = False, model: bool = False) -> list[str]:
    """The table cells of one row: the one column model Markdown and HTML share (``quality``: with
    the task-quality column, ``arm64``: with the phone's-CPU verdicts, ``model``: with the source
    model; see ``columns``)."""
    p50 = _fmt(d.p50_ms, ".1f", "n/a" if d.not_timed else "—")
    out = [d.symbol, d.target, d.precision, d.task, d.seq_len, _fmt(d.size_mb, ".1f"), _fmt(d.size_pct_fp32, ".0f"),
           _fmt(d.max_abs, ".2g"), _fmt(d.cosine, ".5f"), _fmt(d.psnr, ".1f"),
           _fmt(d.agreement and 100 * d.agreement, ".1f") + ("%" if d.agreement is not None else ""),
           _counts(d), p50, _fmt(d.p90_ms, ".1f"), "unreliable" if d.unreliable else _fmt(d.speedup, ".2f")]
    if model:
        out.insert(MODEL_COLUMN, d.model or "—")
    if quality:
        out.append("—" if d.quality_score is None or d.quality_delta is None
                   else f"{d.quality_score:.2f} ({d.quality_delta:+.2f})")
    if arm64:
        out.append(d.arm64 or "—")
    return out


def _counts(d: Row) -> str:
    """``agreed / decisive (of judged)``: only decisive samples (a margin the value bound cannot
    flip) are judged; for embeddings, recall@10 neighbour hits."""
    if d.decisive is None:
        return "—"
    judged = f" (of {d.judged})" if d.judged not in (None, d.decisive) else ""
    return f"{d.agreed} / {d.decisive}{judged}"


def header_lines(rep: Report) -> list[str]:
    h = rep.host
    lines = [f"Machine: {h['cpu']} ({h['cores']} cores, {h['os']} {h['machine']})"]
    if rep.model_column:
        lines.append(f"Models: {', '.join(rep.models)} (the model column names each row's)")
    if h.get("threads"):
        pin = f", pinned to CPUs {h['pinned_cpus']}" if h.get("pinned_cpus") else ""
        lines.append(f"Threads: {h['threads']}{pin}; batch 1")
    if h.get("load_average"):
        end = f" (last measurement: {h['load_average_end']})" if h.get("load_average_end") else ""
        lines.append(f"Load average at the first measurement: {h['load_average']}{end}")
    if h.get("versions"):
        lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in h["versions"].items()))
    return lines


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _busy_line(rows: list[Any]) -> str:
    """One line for every row measured while other work ran (each row carries its flag)."""
    loads = sorted(r.busy_load for r in rows if r.busy_load is not None)
    span = f"{loads[0]:.1f}" if loads and loads[0] == loads[-1] else (f"{loads[0]:.1f}-{loads[-1]:.1f}" if loads else "?")
    which = ", ".join(f"`{r.artifact}`" for r in rows) if len(rows) <= 3 else f"{len(rows)} files"
    return (f"- {which} measured while other work ran on the {os.cpu_count() or 1} cores (load average {span}): "
            f"{'their latencies are' if len(rows) != 1 else 'its latency is'} "
            "not a clean measurement (flagged per row in report.json / report.html)")


def _grouped(rows: list[Any], attr: str = "not_timed") -> list[str]:
    """One line per distinct reason (``N files (targets): reason``), not one per file."""
    by: dict[str, list[Any]] = {}
    for r in rows:
        by.setdefault(getattr(r, attr), []).append(r)
    out = []
    for reason, rs in by.items():
        if len(rs) == 1:
            out.append(f"- `{rs[0].artifact}`: {_md(reason)}")
        else:
            targets = ", ".join(sorted({r.target for r in rs}))
            out.append(f"- {len(rs)} files ({targets}): {_md(reason)}")
    return out


def markdown(rep: Report) -> str:
    """A Markdown page: header, one row per artifact, then why anything was not validated or timed."""
    lines = [f"# {rep.title}", ""] + [f"- {_md(x)}" for x in header_lines(rep)] + [""]
    cols = columns(rep)
    quality = rep.quality_column is not None
    arm = rep.arm64_column
    num = first_numeric(rep)
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * num + "---:|" * (len(cols) - num)]
    notes, untimed, clients, bad, busy, inputs, ane, shaky = [], [], [], [], [], [], [], []
    for d in rep.rows:
        lines.append("| " + " | ".join(_md(c) for c in cells(d, quality, arm, rep.model_column)) + " |")
        if d.contradictions:
            said = "unreadable" if d.status == "unreadable" else f"record says {d.status}"
            bad.append(f"- ❗ `{d.artifact}` ({said}): {_md('; '.join(d.contradictions))}")
        elif d.status not in (Status.VALIDATED.value, REFERENCE) and d.reason:
            notes.append(f"- {d.symbol} `{d.artifact}` ({d.status}): {_md(d.reason)}")
        if d.inputs_note:
            inputs.append(f"- {d.symbol} `{d.artifact}`: agreement on {d.inputs_note} (no tokenizer)")
        if d.ane_like_psnr is not None:
            ane.append(f"- `{d.artifact}`: cosine {d.ane_like_cosine:.5f}, PSNR {d.ane_like_psnr:.1f} dB "
                       f"(normal: {_fmt(d.cosine, '.5f')}, {_fmt(d.psnr, '.1f')} dB)")
        if d.busy:
            busy.append(d)
        if d.unreliable:
            shaky.append(d)
        if d.not_timed:
            untimed.append(d)
        if d.second_client:
            s = d.second_client
            detail = f"{s['agreement']:.0%} agreement" if s.get("agreement") is not None else s.get("reason")
            clients.append(f"- `{d.artifact}`: {s.get('client')}: {s.get('status')} ({detail})")
    lines += ["", " · ".join(f"{s.symbol} {s.label}" for s in Status)
              + (" · ❗ record contradicts itself or its file" if bad else "")]
    if any(d.speedup is not None for d in rep.rows):
        lines.append("× eager: PyTorch eager fp32 p50 ÷ artifact p50, both measured in the same run.")
    if rep.quality_note():
        lines.append(_md(rep.quality_note() or ""))
    if bad:
        lines += ["", "❗ Record contradicts itself or its file (do not ship; re-export, or "
                      "`edgekit validate --rebind` a file changed on purpose):", *bad]
    if notes:
        lines += ["", "Not validated:", *notes]
    if inputs:
        lines += ["", "Random inputs only:", *inputs]
    if ane:
        lines += ["", "ANE-like numerics (fp16 accumulation, fp16 LayerNorm statistics; the bound applies with --ane):",
                  *ane]
    if busy:
        lines += ["", "Measured on a busy machine:", _busy_line(busy)]
    if shaky:
        lines += ["", "Unreliable latency (bench's sanity checks; × eager not reported):",
                  *_grouped(shaky, "unreliable")]
    if untimed:
        lines += ["", "Not timed:", *_grouped(untimed)]
    if clients:
        lines += ["", "Second client (the runtime apps use):", *clients]
    return "\n".join(lines) + "\n"


def to_json(rep: Report) -> str:
    return json.dumps(rep.to_dict(), indent=2, default=str) + "\n"
