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
EAGER = "pytorch-eager"


# ---- rows --------------------------------------------------------------------------------------

def _seq(value: Any) -> int | str:
    text = str(value)
    return int(text) if text.isdigit() else text


def build(records: list[Any], host: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
          unavailable: list[dict[str, Any]] | None = None, bench_notes: dict[str, str] | None = None,
          threads: int | None = None) -> dict[str, Any]:
    """Report data from records: ``edgekit.report``'s rows plus one PyTorch eager row per length.

    ``host``/``model``/``unavailable``/``bench_notes`` come from ``crossbench.json`` when the folder
    was written by ``edgekit bench MODEL``; without them the header is this machine's.
    """
    from . import report

    rows = []
    eager: dict[tuple[str, Any], dict[str, Any]] = {}
    for rec, r in zip(records, report.rows(records)):
        r = dict(r, seq_len=_seq(r["seq_len"]))
        lat = rec.latency or {}
        notes = [n for n in rec.notes or [] if n.startswith("bench failed")]
        r["latency_note"] = (bench_notes or {}).get(rec.artifact) or (notes[-1] if notes else None)
        base = (model or {}).get("fp32_bytes")
        if r["size_pct_fp32"] is None and r["size_mb"] and base:  # no fp32 file of this target: the weights
            r["size_pct_fp32"] = 100.0 * r["size_mb"] * 1e6 / base
        rows.append(r)
        if lat.get("eager_p50_ms") and (r["task"], r["seq_len"]) not in eager:
            eager[(r["task"], r["seq_len"])] = {
                "artifact": None, "target": EAGER, "precision": "fp32", "task": r["task"], "seq_len": r["seq_len"],
                "status": "reference", "symbol": "", "reason": None,
                "size_mb": (model or {}).get("fp32_bytes", 0) / 1e6 or (rec.source.get("fp32_param_bytes") or 0) / 1e6
                or None,
                "size_pct_fp32": 100.0, "max_abs": None, "cosine": None, "psnr": None, "agreement": None,
                "agreement_metric": None, "p50_ms": lat["eager_p50_ms"], "p90_ms": lat.get("eager_p90_ms"),
                "threads": lat.get("threads"), "eager_p50_ms": lat["eager_p50_ms"], "speedup": 1.0,
                "latency_note": None, "versions": {},
            }
    for row in eager.values():
        if row["size_mb"] is None:
            row["size_pct_fp32"] = None
    rows += eager.values()
    rows.sort(key=lambda r: (str(r["task"]), r["seq_len"] if isinstance(r["seq_len"], int) else 10**9,
                             0 if r["target"] == EAGER else 1))  # stable: report.collect's order within
    if not host:
        versions: dict[str, str] = {}
        for rec in records:
            versions.update(rec.versions)
        info = report.machine_info(threads)
        host = {"machine": f"{info['os']} {info['machine']}", "cpu": info["cpu"], "cores": info["cores"],
                "threads": threads or report._common_threads(records), "versions": versions}
    return {"host": host, "model": model or {}, "rows": rows, "unavailable": unavailable or []}


def collect(folder: Path) -> dict[str, Any]:
    """Report data of a folder: its sidecars, plus ``crossbench.json`` when ``edgekit bench`` wrote it."""
    from . import report

    folder = Path(folder)
    summary: dict[str, Any] = {}
    if (folder / "crossbench.json").is_file():
        try:
            summary = json.loads((folder / "crossbench.json").read_text())
        except ValueError:
            summary = {}
    combos = summary.get("combinations") or []
    notes = {Path(c["artifact"]).name: c["bench_skipped"] for c in combos if c.get("artifact") and c.get("bench_skipped")}
    data = build(report.collect(folder), host=summary.get("host"), model=summary.get("model"),
                 unavailable=[c for c in combos if c.get("skipped")], bench_notes=notes)
    data["folder"] = str(folder)
    return data


def to_html(records: list[Any], threads: int | None = None) -> str:
    """The HTML page for a list of records (what ``edgekit report DIR --format html`` prints)."""
    return render_html(build(records, threads=threads))


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
        lat_p50, _f(r["p90_ms"], ".1f"), _f(r["speedup"], ".2f") + ("×" if r["speedup"] else ""),
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
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def _place_labels(points: list[tuple[float, float, str]], char_w: float = 6.2, line_h: float = 12.0,
                  ) -> list[tuple[float, float]]:
    """Label positions near each point that do not overlap earlier labels (greedy, nudged vertically)."""
    placed: list[tuple[float, float, float, float]] = []
    out = []
    for x, y, text in points:
        w = char_w * len(text)
        for k in (0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5):
            ly = y - 6 + k * line_h
            box = (x, ly - line_h + 2, x + w, ly + 2)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                break
        placed.append(box)
        out.append((x, ly))
    return out


def _ticks(vmax: float, n: int = 5) -> list[float]:
    return [vmax * i / n for i in range(n + 1)]


def _target_colors(rows: list[dict[str, Any]]) -> dict[str, str]:
    targets = list(dict.fromkeys(r["target"] for r in rows))
    return {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(targets)}


GRID = 'stroke="#e6e6e6" stroke-width="1"'
TITLE = 'font-size="13" font-weight="600"'
SVG_OPEN = ('<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
            'aria-label="{label}" font-family="system-ui, sans-serif" font-size="11" class="chart">'
            '<rect width="{w}" height="{h}" fill="white"/>')


def _log_ticks(lo: float, hi: float) -> list[float]:
    ticks = []
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi * 1.0001:
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo * 0.9999 <= v <= hi * 1.0001:
                ticks.append(v)
        e += 1
    return ticks or [lo, hi]


def scatter_svg(rows: list[dict[str, Any]], title: str, colors: dict[str, str], width: int = 680,
                height: int = 400) -> str:
    """Latency (p50) against file size, one labelled point per timed artifact; eager as a dashed line.

    The latency axis is logarithmic when the values span more than 20x, so that a slow baseline
    does not squash every fast artifact onto the axis.
    """
    pts = [r for r in rows if r["p50_ms"] is not None and r["size_mb"] and r["target"] != EAGER]
    eager = next((r for r in rows if r["target"] == EAGER and r["p50_ms"] is not None), None)
    if not pts:
        return f'<p class="empty">{_esc(title)}: no timed artifacts.</p>'
    left, right, top, bottom = 64, 130, 30, 45
    pw, ph = width - left - right, height - top - bottom
    lats = [r["p50_ms"] for r in pts] + ([eager["p50_ms"]] if eager else [])
    xmax = _nice_max(max(r["size_mb"] for r in pts) * 1.08)
    log = max(lats) / max(min(lats), 1e-6) > 20
    if log:
        ylo = 10 ** math.floor(math.log10(max(min(lats), 1e-3)))
        yhi = 10 ** math.ceil(math.log10(max(lats) * 1.05))
        yticks = _log_ticks(ylo, yhi)
    else:
        ylo, yhi = 0.0, _nice_max(max(lats) * 1.08)
        yticks = _ticks(yhi)

    def x(v: float) -> float:
        return left + pw * v / xmax

    def y(v: float) -> float:
        if log:
            frac = (math.log10(max(v, ylo)) - math.log10(ylo)) / (math.log10(yhi) - math.log10(ylo))
        else:
            frac = (v - ylo) / (yhi - ylo)
        return top + ph * (1 - frac)

    parts = [SVG_OPEN.format(w=width, h=height, label=_esc(title)),
             f'<text x="{left + pw / 2}" y="18" text-anchor="middle" {TITLE}>{_esc(title)}</text>']
    for t in _ticks(xmax):
        parts.append(f'<line x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" y2="{top + ph}" {GRID}/>'
                     f'<text x="{x(t):.1f}" y="{top + ph + 16}" text-anchor="middle">{t:g}</text>')
    for t in yticks:
        parts.append(f'<line x1="{left}" y1="{y(t):.1f}" x2="{left + pw}" y2="{y(t):.1f}" {GRID}/>'
                     f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle">file size (MB)</text>')
    ylabel = "p50 latency (ms" + (", log scale)" if log else ")")
    parts.append(f'<text x="16" y="{top + ph / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 16 {top + ph / 2})">{ylabel}</text>')
    if eager:
        ey = y(eager["p50_ms"])
        parts.append(f'<line x1="{left}" y1="{ey:.1f}" x2="{left + pw}" y2="{ey:.1f}" stroke="#1565c0" '
                     f'stroke-width="1.5" stroke-dasharray="6 4"/>'
                     f'<text x="{left + 6}" y="{ey - 5:.1f}" text-anchor="start" fill="#1565c0">'
                     f'PyTorch eager fp32 {eager["p50_ms"]:.1f} ms</text>')
    order = sorted(pts, key=lambda r: (r["p50_ms"], r["size_mb"]))
    anchors = []
    for r in order:
        cx = x(r["size_mb"])
        right = cx > left + pw * 0.75  # labels near the right edge go to the left of their point
        text = r["precision"]
        anchors.append((cx - 8 - 6.2 * len(text) if right else cx + 8, y(r["p50_ms"]), text))
    for r, (lx, ly) in zip(order, _place_labels(anchors)):
        cx, cy = x(r["size_mb"]), y(r["p50_ms"])
        color = colors.get(r["target"], "#333")
        ok = r["status"] == "validated"
        tip = (f'{r["target"]} {r["precision"]}: {r["p50_ms"]:.1f} ms, {r["size_mb"]:.1f} MB, '
               f'{STATUS_LABEL.get(r["status"], r["status"])}')
        parts.append(f'<g><title>{_esc(tip)}</title>'
                     f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{color if ok else "white"}" '
                     f'stroke="{color}" stroke-width="2"/>'
                     f'<text x="{lx:.1f}" y="{ly:.1f}" fill="{color}">{_esc(r["precision"])}</text></g>')
    for i, (target, color) in enumerate(t for t in colors.items() if t[0] != EAGER):
        ly = top + 8 + 16 * i
        parts.append(f'<circle cx="{left + pw + 14}" cy="{ly}" r="5" fill="{color}"/>'
                     f'<text x="{left + pw + 24}" y="{ly + 4}">{_esc(target)}</text>')
    n = sum(1 for t in colors if t != EAGER)
    parts.append(f'<circle cx="{left + pw + 14}" cy="{top + 8 + 16 * n}" r="5" fill="white" stroke="#555" '
                 f'stroke-width="2"/><text x="{left + pw + 24}" y="{top + 12 + 16 * n}">not validated</text>')
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
    parts = [SVG_OPEN.format(w=width, h=height, label=_esc(title)),
             f'<text x="{width / 2}" y="18" text-anchor="middle" {TITLE}>{_esc(title)}</text>']
    for t in _ticks(xmax, 4):
        gx = left + pw * t / xmax
        parts.append(f'<line x1="{gx:.1f}" y1="{top}" x2="{gx:.1f}" y2="{top + row_h * len(bars)}" {GRID}/>'
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
        status_note = "" if r["status"] == "validated" else f' ({r["status"].replace("-", " ")})'
        label = f'{r["target"]} {r["precision"]}'
        tip = f'{label}: {_parity_text(r)}; {STATUS_LABEL.get(r["status"], r["status"])}'
        parts.append(f'<g><title>{_esc(tip)}</title>'
                     f'<text x="{left - 6}" y="{by + 15}" text-anchor="end">{_esc(label)}</text>'
                     f'<rect x="{left}" y="{by + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{color}" '
                     f'fill-opacity="0.75" stroke="{stroke}" stroke-width="{2 if r["status"] != "validated" else 0}"/>'
                     f'<text x="{left + w + 4:.1f}" y="{by + 15}">{_esc(_f(psnr, ".0f") + " dB")} '
                     f'{_esc(agree)}{_esc(status_note)}</text></g>')
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
    if not rows:
        out.append("<p class='empty'>No sidecars in this folder: no timed artifacts to chart.</p>")
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
