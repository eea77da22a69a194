"""Report of a folder of exported artifacts: one row per artifact, as Markdown, JSON and HTML.

``collect(folder)`` reads every sidecar (and ``crossbench.json`` when ``edgekit bench`` wrote the
folder) into plain row dicts; ``render_markdown`` / ``render_html`` turn those into text. The HTML
page is self-contained: inline CSS and hand-written SVG charts (latency vs size, parity per
artifact), no scripts and no plotting library.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

STATUS_LABEL = {
    "validated": "✅ validated",
    "parity-failed": "❎ parity failed",
    "export-failed": "❌ export failed",
    "validation-skipped": "⚠️ validation skipped",
    "reference": "reference",
}
STATUS_COLOR = {
    "validated": "#2e7d32", "parity-failed": "#ef6c00", "export-failed": "#c62828",
    "validation-skipped": "#757575", "reference": "#1565c0",
}
#: One colour per target, in registry order; unknown targets cycle through the rest.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
PRECISION_ORDER = ("fp32", "fp16", "int8-dynamic", "int8-static", "int8-weight", "int4-weight",
                   "palettize8", "palettize6", "palettize4")
EAGER = "pytorch-eager"


# ---- rows --------------------------------------------------------------------------------------

def _records(folder: Path) -> list[tuple[Path, Any]]:
    from .record import ArtifactRecord

    found = []
    for path in sorted(folder.rglob("*.json")):
        if path.name.startswith(".") or any(p.endswith(".mlpackage") for p in path.parts[:-1]):
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or "artifact" not in data or "target" not in data or "status" not in data:
            continue  # report.json, crossbench.json, configs
        try:
            found.append((path, ArtifactRecord.from_dict(data)))
        except (TypeError, ValueError, KeyError):
            continue
    return found


def _seq(record: Any) -> int | str:
    text = str(record.seq_len)
    return int(text) if text.isdigit() else text


def row_of(sidecar: Path, record: Any, folder: Path) -> dict[str, Any]:
    """The report row of one record (sizes in MB, parity worst-case over outputs, latency in ms)."""
    parity = record.parity or {}
    outs = parity.get("outputs") or []
    lat = record.latency or {}

    def worst(key: str, high_is_bad: bool) -> float | None:
        vals = [o[key] for o in outs if o.get(key) is not None]
        if not vals:
            return None
        return max(vals) if high_is_bad else min(vals)

    artifact = sidecar.with_name(record.artifact)
    return {
        "target": record.target,
        "precision": record.precision,
        "task": record.task,
        "seq_len": _seq(record),
        "status": record.status.value,
        "reason": record.reason,
        "artifact": str(artifact.relative_to(folder)) if artifact.is_relative_to(folder) else str(artifact),
        "size_mb": record.size_bytes / 1e6 if record.size_bytes else None,
        "size_pct_fp32": None,
        "max_abs": worst("max_abs", True),
        "cosine": worst("cosine", False),
        "psnr": worst("psnr", False),
        "agreement": parity.get("agreement"),
        "agreement_metric": parity.get("agreement_metric"),
        "p50_ms": lat.get("p50_ms"),
        "p90_ms": lat.get("p90_ms"),
        "threads": lat.get("threads"),
        "speedup_vs_eager": lat.get("speedup_vs_eager"),
        "latency_note": None,
        "notes": list(record.notes or [])[:3],
    }


def _fill_size_pct(rows: list[dict[str, Any]]) -> None:
    """Size as % of the same target's fp32 file at the same length (else of the eager fp32 weights)."""
    fp32 = {(r["target"], r["seq_len"]): r["size_mb"] for r in rows if r["precision"] == "fp32" and r["size_mb"]}
    eager = {r["seq_len"]: r["size_mb"] for r in rows if r["target"] == EAGER and r["size_mb"]}
    for r in rows:
        base = fp32.get((r["target"], r["seq_len"])) or eager.get(r["seq_len"])
        if r["size_mb"] and base:
            r["size_pct_fp32"] = 100.0 * r["size_mb"] / base


def _sort_key(r: dict[str, Any], order: list[str]) -> tuple[Any, ...]:
    seq = r["seq_len"] if isinstance(r["seq_len"], int) else 10**9
    t = order.index(r["target"]) if r["target"] in order else len(order)
    p = PRECISION_ORDER.index(r["precision"]) if r["precision"] in PRECISION_ORDER else len(PRECISION_ORDER)
    return (seq, -1 if r["target"] == EAGER else t, r["target"], p, r["precision"])


def collect(folder: Path) -> dict[str, Any]:
    """Everything the reports show: header (host, threads, versions), rows, unavailable combinations."""
    from . import registry

    folder = Path(folder)
    summary_path = folder / "crossbench.json"
    summary: dict[str, Any] = {}
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text())
        except ValueError:
            summary = {}
    rows = [row_of(p, r, folder) for p, r in _records(folder)]
    combos = summary.get("combinations") or []
    by_artifact = {c["artifact"]: c for c in combos if c.get("artifact")}
    for r in rows:
        c = by_artifact.get(r["artifact"])
        if c and c.get("bench_skipped") and r["p50_ms"] is None:
            r["latency_note"] = c["bench_skipped"]
    model_info = summary.get("model") or {}
    for seq, base in (summary.get("baselines") or {}).items():
        rows.append({
            "target": EAGER, "precision": "fp32", "task": model_info.get("task"), "seq_len": int(seq),
            "status": "reference", "reason": None, "artifact": None,
            "size_mb": model_info.get("fp32_bytes", 0) / 1e6 or None, "size_pct_fp32": None,
            "max_abs": None, "cosine": None, "psnr": None, "agreement": None, "agreement_metric": None,
            "p50_ms": base.get("p50_ms"), "p90_ms": base.get("p90_ms"), "threads": base.get("threads"),
            "speedup_vs_eager": 1.0, "latency_note": None, "notes": ["PyTorch eager fp32 (the baseline)"],
        })
    _fill_size_pct(rows)
    try:
        order = list(registry.converters())
    except Exception:  # noqa: BLE001 - a broken plug-in must not stop the report
        order = []
    rows.sort(key=lambda r: _sort_key(r, order))
    unavailable = [c for c in combos if c.get("skipped")]
    host = summary.get("host") or {}
    if not host:
        from .crossbench import library_versions

        host = {"versions": library_versions(), "note": "no crossbench.json: latency only where records carry it"}
    return {"folder": str(folder), "host": host, "model": model_info, "rows": rows, "unavailable": unavailable}


# ---- formatting helpers ------------------------------------------------------------------------

def _f(v: Any, fmt: str, none: str = "–") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return none
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    return format(v, fmt)


def _parity_text(r: dict[str, Any]) -> str:
    if r["max_abs"] is None and r["agreement"] is None:
        return "–"
    parts = [f"max abs {_f(r['max_abs'], '.2g')}"]
    if r["cosine"] is not None:
        parts.append(f"cos {_f(r['cosine'], '.5f')}")
    if r["psnr"] is not None:
        parts.append(f"PSNR {_f(r['psnr'], '.1f')} dB")
    if r["agreement"] is not None:
        parts.append(f"agree {r['agreement']:.1%}")
    return ", ".join(parts)


def _status_text(r: dict[str, Any]) -> str:
    label = STATUS_LABEL.get(r["status"], r["status"])
    return f"{label} ({r['reason']})" if r.get("reason") and r["status"] != "validated" else label


def header_lines(data: dict[str, Any]) -> list[str]:
    h = data["host"]
    lines = []
    if h.get("machine") or h.get("cpu"):
        lines.append(f"Machine: {h.get('machine', '?')}, {h.get('cpu', '?')}, {h.get('cores', '?')} cores")
    if h.get("threads"):
        pin = f", pinned to CPUs {h['pinned_cpus']}" if h.get("pinned_cpus") else ""
        lines.append(f"Threads: {h['threads']}{pin}; batch 1")
    if h.get("load_average"):
        end = f" (end of run: {h['load_average_end']})" if h.get("load_average_end") else ""
        lines.append(f"Load average at start: {h['load_average']}{end}")
    m = data.get("model") or {}
    if m:
        lines.append(f"Model: {m.get('source', '?')} ({m.get('arch', '?')}, {m.get('num_layers', '?')} layers, "
                     f"hidden {m.get('hidden_size', '?')}, task {m.get('task', '?')})")
    versions = h.get("versions") or {}
    if versions:
        lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    if h.get("date"):
        lines.append(f"Measured: {h['date']}")
    return lines


COLUMNS = ("target", "precision", "seq", "status", "size MB", "% of fp32", "parity", "p50 ms", "p90 ms",
           "speed-up vs eager")


def _cells(r: dict[str, Any]) -> list[str]:
    lat_p50 = _f(r["p50_ms"], ".1f") if r["p50_ms"] is not None else ("n/a" if r.get("latency_note") else "–")
    return [
        r["target"], r["precision"], str(r["seq_len"]), _status_text(r), _f(r["size_mb"], ".1f"),
        _f(r["size_pct_fp32"], ".0f") + ("%" if r["size_pct_fp32"] is not None else ""), _parity_text(r),
        lat_p50, _f(r["p90_ms"], ".1f"), _f(r["speedup_vs_eager"], ".2f") + ("×" if r["speedup_vs_eager"] else ""),
    ]


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(data: dict[str, Any]) -> str:
    """A Markdown page: header, one table row per artifact, then what could not run and why."""
    out = ["# edgekit report", ""]
    out += [f"- {_md_escape(line)}" for line in header_lines(data)]
    out += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in data["rows"]:
        out.append("| " + " | ".join(_md_escape(c) for c in _cells(r)) + " |")
    notes = [r for r in data["rows"] if r.get("latency_note")]
    if notes:
        out += ["", "Not timed:", ""]
        out += [f"- {r['target']} {r['precision']} (seq {r['seq_len']}): {_md_escape(r['latency_note'])}" for r in notes]
    if data.get("unavailable"):
        out += ["", "Not run on this host:", ""]
        seen = set()
        for c in data["unavailable"]:
            key = (c["target"], c["precision"], c["skipped"])
            if key in seen:
                continue
            seen.add(key)
            what = c["target"] if c["precision"] == "-" else f"{c['target']} {c['precision']}"
            out.append(f"- {what}: {_md_escape(c['skipped'])}")
    return "\n".join(out) + "\n"


# ---- SVG charts --------------------------------------------------------------------------------

def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def _ticks(vmax: float, n: int = 5) -> list[float]:
    return [vmax * i / n for i in range(n + 1)]


def _target_colors(rows: list[dict[str, Any]]) -> dict[str, str]:
    targets = list(dict.fromkeys(r["target"] for r in rows))
    return {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(targets)}


def scatter_svg(rows: list[dict[str, Any]], title: str, colors: dict[str, str], width: int = 640,
                height: int = 380) -> str:
    """Latency (p50) against file size, one labelled point per timed artifact; eager as a line."""
    pts = [r for r in rows if r["p50_ms"] is not None and r["size_mb"] and r["target"] != EAGER]
    eager = next((r for r in rows if r["target"] == EAGER and r["p50_ms"] is not None), None)
    if not pts:
        return f'<p class="empty">{_esc(title)}: no timed artifacts.</p>'
    left, right, top, bottom = 60, 20, 30, 45
    pw, ph = width - left - right, height - top - bottom
    xmax = _nice_max(max(r["size_mb"] for r in pts) * 1.05)
    ymax = _nice_max(max([r["p50_ms"] for r in pts] + ([eager["p50_ms"]] if eager else [])) * 1.05)

    def x(v: float) -> float:
        return left + pw * v / xmax

    def y(v: float) -> float:
        return top + ph * (1 - v / ymax)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{_esc(title)}" class="chart">',
             f'<text x="{width / 2}" y="18" text-anchor="middle" class="title">{_esc(title)}</text>']
    for t in _ticks(xmax):
        parts.append(f'<line x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" y2="{top + ph}" class="grid"/>'
                     f'<text x="{x(t):.1f}" y="{top + ph + 16}" text-anchor="middle">{t:g}</text>')
    for t in _ticks(ymax):
        parts.append(f'<line x1="{left}" y1="{y(t):.1f}" x2="{left + pw}" y2="{y(t):.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle">file size (MB)</text>')
    parts.append(f'<text x="14" y="{top + ph / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {top + ph / 2})">p50 latency (ms)</text>')
    if eager:
        ey = y(eager["p50_ms"])
        parts.append(f'<line x1="{left}" y1="{ey:.1f}" x2="{left + pw}" y2="{ey:.1f}" class="eager"/>'
                     f'<text x="{left + pw - 4}" y="{ey - 4:.1f}" text-anchor="end" class="eager-label">'
                     f'PyTorch eager fp32 {eager["p50_ms"]:.1f} ms</text>')
    for r in pts:
        cx, cy = x(r["size_mb"]), y(r["p50_ms"])
        ok = r["status"] == "validated"
        fill = colors.get(r["target"], "#333") if ok else "white"
        tip = (f'{r["target"]} {r["precision"]}: {r["p50_ms"]:.1f} ms, {r["size_mb"]:.1f} MB, '
               f'{STATUS_LABEL.get(r["status"], r["status"])}')
        parts.append(f'<g><title>{_esc(tip)}</title>'
                     f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{fill}" '
                     f'stroke="{colors.get(r["target"], "#333")}" stroke-width="2"/>'
                     f'<text x="{cx + 7:.1f}" y="{cy - 6:.1f}" class="pt">{_esc(r["precision"])}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def parity_svg(rows: list[dict[str, Any]], title: str, colors: dict[str, str], width: int = 640) -> str:
    """One horizontal bar per validated-or-failed artifact: worst-output PSNR (dB), agreement as text."""
    bars = [r for r in rows if r["target"] != EAGER and (r["psnr"] is not None or r["agreement"] is not None)]
    if not bars:
        return f'<p class="empty">{_esc(title)}: no parity results.</p>'
    row_h, left, right, top = 22, 170, 150, 30
    height = top + row_h * len(bars) + 35
    pw = width - left - right
    finite = [r["psnr"] for r in bars if r["psnr"] is not None and math.isfinite(r["psnr"])]
    xmax = _nice_max(max(finite + [1.0]))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{_esc(title)}" class="chart">',
             f'<text x="{width / 2}" y="18" text-anchor="middle" class="title">{_esc(title)}</text>']
    for t in _ticks(xmax, 4):
        gx = left + pw * t / xmax
        parts.append(f'<line x1="{gx:.1f}" y1="{top}" x2="{gx:.1f}" y2="{top + row_h * len(bars)}" class="grid"/>'
                     f'<text x="{gx:.1f}" y="{top + row_h * len(bars) + 14}" text-anchor="middle">{t:g}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle">'
                 f'PSNR of the worst output vs PyTorch (dB, higher is closer)</text>')
    for i, r in enumerate(bars):
        by = top + i * row_h
        psnr = r["psnr"]
        w = 0.0 if psnr is None else (pw if not math.isfinite(psnr) else max(0.0, pw * min(psnr, xmax) / xmax))
        color = colors.get(r["target"], "#333")
        stroke = STATUS_COLOR.get(r["status"], "#333")
        agree = f'{r["agreement"]:.1%} agree' if r["agreement"] is not None else ""
        label = f'{r["target"]} {r["precision"]}'
        tip = f'{label}: {_parity_text(r)}; {STATUS_LABEL.get(r["status"], r["status"])}'
        parts.append(f'<g><title>{_esc(tip)}</title>'
                     f'<text x="{left - 6}" y="{by + 15}" text-anchor="end">{_esc(label)}</text>'
                     f'<rect x="{left}" y="{by + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{color}" '
                     f'fill-opacity="0.75" stroke="{stroke}" stroke-width="{2 if r["status"] != "validated" else 0}"/>'
                     f'<text x="{left + w + 4:.1f}" y="{by + 15}">{_esc(_f(psnr, ".0f") + " dB")} '
                     f'{_esc(STATUS_LABEL.get(r["status"], "")[:2])} {_esc(agree)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px} h2{font-size:18px;margin-top:28px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.reference td{background:#eef4fb}
.header li{margin:2px 0;font-size:14px}
svg.chart{font-size:11px;margin:8px 16px 8px 0;background:#fff;border:1px solid #eee}
svg .title{font-size:13px;font-weight:600} svg .grid{stroke:#eee}
svg .eager{stroke:#1565c0;stroke-dasharray:5 4} svg .eager-label{fill:#1565c0}
.charts{display:flex;flex-wrap:wrap} .legend span{display:inline-block;margin-right:14px;font-size:13px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}
.empty{color:#777} .small{font-size:12px;color:#555}
"""


def render_html(data: dict[str, Any]) -> str:
    """A self-contained HTML page: header, charts per sequence length, the table, skipped items."""
    rows = data["rows"]
    colors = _target_colors(rows)
    seqs = list(dict.fromkeys(r["seq_len"] for r in rows))
    out = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
           "<title>edgekit report</title>", f"<style>{CSS}</style></head><body>",
           "<h1>edgekit report</h1><ul class='header'>"]
    out += [f"<li>{_esc(line)}</li>" for line in header_lines(data)]
    out.append("</ul>")
    out.append("<div class='legend'>" + "".join(
        f"<span><i style='background:{c}'></i>{_esc(t)}</span>" for t, c in colors.items() if t != EAGER)
        + "<span class='small'>hollow point / outlined bar: not validated</span></div>")
    for seq in seqs:
        sub = [r for r in rows if r["seq_len"] == seq]
        out.append(f"<h2>Sequence length {_esc(seq)}</h2><div class='charts'>")
        out.append(scatter_svg(sub, f"Latency vs size (seq {seq})", colors))
        out.append(parity_svg(sub, f"Parity per artifact (seq {seq})", colors))
        out.append("</div>")
    out.append("<h2>All artifacts</h2><table><thead><tr>"
               + "".join(f"<th>{_esc(c)}</th>" for c in COLUMNS) + "</tr></thead><tbody>")
    numeric = {4, 5, 7, 8, 9}
    for r in rows:
        cells = _cells(r)
        cls = " class='reference'" if r["target"] == EAGER else ""
        tds = []
        for i, c in enumerate(cells):
            style = f" style='color:{STATUS_COLOR.get(r['status'], '#222')}'" if i == 3 else ""
            tds.append(f"<td{' class=num' if i in numeric else ''}{style}>{_esc(c)}</td>")
        out.append(f"<tr{cls}>" + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    notes = [r for r in rows if r.get("latency_note")]
    if notes:
        out.append("<h2>Not timed</h2><ul>" + "".join(
            f"<li>{_esc(r['target'])} {_esc(r['precision'])} (seq {_esc(r['seq_len'])}): {_esc(r['latency_note'])}</li>"
            for r in notes) + "</ul>")
    if data.get("unavailable"):
        seen, items = set(), []
        for c in data["unavailable"]:
            key = (c["target"], c["precision"], c["skipped"])
            if key not in seen:
                seen.add(key)
                what = c["target"] if c["precision"] == "-" else f"{c['target']} {c['precision']}"
                items.append(f"<li>{_esc(what)}: {_esc(c['skipped'])}</li>")
        out.append("<h2>Not run on this host</h2><ul>" + "".join(items) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
