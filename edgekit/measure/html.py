"""The report as one self-contained HTML page: inline CSS and hand-written SVG charts (latency vs
size, parity per artifact), no scripts and no plotting library. The table uses the same columns and
cells as the Markdown report.
"""
from __future__ import annotations

import html
import math
from dataclasses import asdict
from typing import Any

from edgekit.measure.tables import EAGER, Report, cells, columns, first_numeric, header_lines

#: One colour per target, in registry order; unknown targets cycle through the rest.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


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


Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def _overlaps(box: Box, boxes: list[Box]) -> bool:
    return any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in boxes)


def _place_labels(points: list[tuple[float, float, str]], char_w: float = 6.2, line_h: float = 12.0,
                  area: Box | None = None, taken: list[Box] | None = None) -> list[tuple[float, float] | None]:
    """Label positions near each point that overlap no earlier label and nothing in ``taken`` (the
    points), nudged vertically, inside ``area``; None where no such place exists (greedy)."""
    placed: list[Box] = list(taken or [])
    out: list[tuple[float, float] | None] = []
    for x, y, text in points:
        w = char_w * len(text)
        spot = None
        for k in (0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5):
            ly = y - 6 + k * line_h
            box = (x, ly - line_h + 2, x + w, ly + 2)
            inside = area is None or (area[0] <= box[0] and box[2] <= area[2]
                                      and area[1] <= box[1] and box[3] <= area[3])
            if inside and not _overlaps(box, placed):
                spot = (x, ly)
                placed.append(box)
                break
        out.append(spot)
    return out


def _scatter_points(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The timed artifacts a latency chart draws, in the order they are numbered (fastest first)."""
    pts = [r for r in rows if r["p50_ms"] is not None and r["size_mb"] and r["target"] != EAGER]
    return sorted(pts, key=lambda r: (r["p50_ms"], r["size_mb"]))


def _point_name(r: dict[str, Any], with_model: bool = False) -> str:
    """What a chart calls an artifact: target and precision (and its model in a folder of several)."""
    name = f'{r["target"]} {r["precision"]}'
    return f'{r["model"]} {name}' if with_model and r.get("model") else name


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
    pts = _scatter_points(rows)
    # One baseline per model (and bench run): a folder of several models has several eager lines.
    eagers = list({(r.get("model"), r["p50_ms"]): r for r in rows
                   if r["target"] == EAGER and r["p50_ms"] is not None}.values())
    if not pts:
        return f'<p class="empty">{_esc(title)}: no timed artifacts.</p>'
    with_model = len({r.get("model") for r in pts}) > 1
    left, right, top, bottom = 64, 130, 30, 45
    pw, ph = width - left - right, height - top - bottom
    lats = [r["p50_ms"] for r in pts] + [e["p50_ms"] for e in eagers]
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
    eager_models = len({e.get("model") for e in eagers}) > 1
    eager_boxes: list[Box] = []
    for eager in eagers:
        ey = y(eager["p50_ms"])
        whose = f'{eager["model"]} ' if eager_models and eager.get("model") else ""
        text = f'{whose}PyTorch eager fp32 {eager["p50_ms"]:.1f} ms'
        eager_boxes.append((left + 6, ey - 15, left + 6 + 6.2 * len(text), ey - 3))
        parts.append(f'<line x1="{left}" y1="{ey:.1f}" x2="{left + pw}" y2="{ey:.1f}" stroke="#1565c0" '
                     f'stroke-width="1.5" stroke-dasharray="6 4"/>'
                     f'<text x="{left + 6}" y="{ey - 5:.1f}" text-anchor="start" fill="#1565c0">'
                     f'{_esc(text)}</text>')
    # Each point is numbered (the legend table under the chart lists every number) and labelled
    # "N target precision" where that label fits without touching another label or point; where it
    # does not, by its number alone, and where not even that fits, by the table only.
    area = (left, top, left + pw, top + ph)
    dots = [(x(r["size_mb"]) - 6, y(r["p50_ms"]) - 6, x(r["size_mb"]) + 6, y(r["p50_ms"]) + 6) for r in pts]
    dots += eager_boxes  # the baselines' own labels are taken too

    def anchors(texts: list[str]) -> list[tuple[float, float, str]]:
        out = []
        for r, text in zip(pts, texts):
            cx = x(r["size_mb"])
            right = cx > left + pw * 0.75  # labels near the right edge go to the left of their point
            out.append((cx - 8 - 6.2 * len(text) if right else cx + 8, y(r["p50_ms"]), text))
        return out

    full = [f"{i} {_point_name(r, with_model)}" for i, r in enumerate(pts, 1)]
    spots = _place_labels(anchors(full), area=area, taken=dots)
    if None in spots:  # the long labels do not all fit: number every point; the table names them
        full = [str(i) for i in range(1, len(pts) + 1)]
        spots = _place_labels(anchors(full), area=area, taken=dots)
    for r, text, spot in zip(pts, full, spots):
        cx, cy = x(r["size_mb"]), y(r["p50_ms"])
        color = colors.get(r["target"], "#333")
        ok = r["status"] == "validated"
        tip = (f'{_point_name(r, with_model)}: {r["p50_ms"]:.1f} ms, {r["size_mb"]:.1f} MB, '
               f'{r["label"]}')
        label = "" if spot is None else \
            f'<text x="{spot[0]:.1f}" y="{spot[1]:.1f}" fill="{color}">{_esc(text)}</text>'
        parts.append(f'<g><title>{_esc(tip)}</title>'
                     f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{color if ok else "white"}" '
                     f'stroke="{color}" stroke-width="2"/>{label}</g>')
    for i, (target, color) in enumerate(t for t in colors.items() if t[0] != EAGER):
        ly = top + 8 + 16 * i
        parts.append(f'<circle cx="{left + pw + 14}" cy="{ly}" r="5" fill="{color}"/>'
                     f'<text x="{left + pw + 24}" y="{ly + 4}">{_esc(target)}</text>')
    n = sum(1 for t in colors if t != EAGER)
    parts.append(f'<circle cx="{left + pw + 14}" cy="{top + 8 + 16 * n}" r="5" fill="white" stroke="#555" '
                 f'stroke-width="2"/><text x="{left + pw + 24}" y="{top + 12 + 16 * n}">not validated</text>')
    parts.append("</svg>")
    return "".join(parts)


def scatter_legend(rows: list[dict[str, Any]]) -> str:
    """The latency chart's legend table: every point's number, target and precision (and model),
    latency, size and status in words, so a point is named even where its label did not fit."""
    pts = _scatter_points(rows)
    if not pts:
        return ""
    with_model = len({r.get("model") for r in pts}) > 1
    head = ["#"] + (["model"] if with_model else []) + ["target", "precision", "p50 ms", "size MB", "status"]
    body = []
    for i, r in enumerate(pts, 1):
        cells = [str(i)] + ([r.get("model") or "–"] if with_model else []) + [
            r["target"], r["precision"], f'{r["p50_ms"]:.1f}', f'{r["size_mb"]:.1f}']
        body.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + _status_td(r) + "</tr>")
    return ("<table class='legend-table'><thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(body) + "</tbody></table>")


def _status_td(r: dict[str, Any]) -> str:
    """A status cell in words and colour (the emoji alone is a blank box without an emoji font)."""
    if r["target"] == EAGER:
        return "<td class='status'>baseline</td>"
    return (f"<td class='status' style='color:{_esc(r['colour'])};border-left:4px solid {_esc(r['colour'])}'>"
            f"{_esc((r['symbol'] + ' ') if r['symbol'] else '')}{_esc(r['label'])}</td>")


def parity_svg(rows: list[dict[str, Any]], title: str, colors: dict[str, str], width: int = 640) -> str:
    """One horizontal bar per validated-or-failed artifact: worst-output PSNR (dB), agreement as text."""
    bars = [r for r in rows if r["target"] != EAGER and (r["psnr"] is not None or r["agreement"] is not None)]
    if not bars:
        return f'<p class="empty">{_esc(title)}: no parity results.</p>'
    with_model = len({r.get("model") for r in bars}) > 1
    row_h, left, right, top = 22, 170 + (90 if with_model else 0), 150, 30
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
        stroke = r["colour"]
        agree = f'{r["agreement"]:.1%} agree' if r["agreement"] is not None else ""
        status_note = "" if r["status"] == "validated" else f' ({r["status"].replace("-", " ")})'
        label = _point_name(r, with_model)
        tip = f'{label}: {_parity_text(r)}; {r["label"]}'
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
td.status{font-weight:600;white-space:nowrap} table.legend-table{font-size:12px}
"""


def render(rep: Report) -> str:
    """A self-contained HTML page: header, charts per sequence length, the table, notes."""
    rows = [asdict(r) for r in rep.rows]
    colors = _target_colors(rows)
    seqs = list(dict.fromkeys(r["seq_len"] for r in rows))
    out = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
           f"<title>{_esc(rep.title)}</title>", f"<style>{CSS}</style></head><body>",
           f"<h1>{_esc(rep.title)}</h1><ul class='header'>"]
    out += [f"<li>{_esc(line)}</li>" for line in header_lines(rep)]
    out.append("</ul>")
    out.append("<div class='legend'>" + "".join(
        f"<span><i style='background:{c}'></i>{_esc(t)}</span>" for t, c in colors.items() if t != EAGER)
        + "<span class='small'>hollow point / outlined bar: not validated</span></div>")
    if not rows:
        out.append("<p class='empty'>No records in this folder.</p>")
    for seq in seqs:
        sub = [r for r in rows if r["seq_len"] == seq]
        out.append(f"<h2>Sequence length {_esc(seq)}</h2><div class='charts'>")
        out.append(scatter_svg(sub, f"Latency vs size (seq {seq})", colors))
        out.append(parity_svg(sub, f"Parity per artifact (seq {seq})", colors))
        out.append("</div>")
        out.append(scatter_legend(sub))
    out.append("<h2>All artifacts</h2><table><thead><tr>"
               + "".join(f"<th>{_esc(c)}</th>" for c in columns(rep)) + "</tr></thead><tbody>")
    quality = rep.quality_column is not None
    num = first_numeric(rep)
    for r in rep.rows:
        cls = " class='reference'" if r.target == EAGER else ""
        tds = []
        for i, c in enumerate(cells(r, quality, rep.arm64_column, rep.model_column)):
            if i == 0:  # the status: symbol, words and colour (not the emoji alone)
                tds.append(_status_td(asdict(r)))
            else:
                tds.append(f"<td{' class=num' if i >= num else ''}>{_esc(c)}</td>")
        out.append(f"<tr{cls}>" + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    if rep.quality_note():
        out.append(f"<p class='small'>{_esc(rep.quality_note())}</p>")
    _notes(out, "❗ Record contradicts itself or its file", [f"{r.artifact} (record says {r.status}): "
                                                           + "; ".join(r.contradictions)
                                                           for r in rep.rows if r.contradictions])
    _notes(out, "Not validated", [f"{r.artifact} ({r.label}): {r.reason}" for r in rep.rows
                                  if r.reason and r.status not in ("validated", "reference")])
    _notes(out, "Not timed", [f"{r.artifact}: {r.not_timed}" for r in rep.rows if r.not_timed])
    _notes(out, "Random inputs only", [f"{r.artifact}: agreement on {r.inputs_note} (no tokenizer)"
                                       for r in rep.rows if r.inputs_note])
    _notes(out, "ANE-like numerics (fp16 accumulation, fp16 LayerNorm statistics; the bound applies with --ane)",
           [f"{r.artifact}: cosine {r.ane_like_cosine:.5f}, PSNR {r.ane_like_psnr:.1f} dB"
            for r in rep.rows if r.ane_like_psnr is not None])
    _notes(out, "Measured on a busy machine", [f"{r.artifact}: {r.busy}" for r in rep.rows if r.busy])
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _notes(out: list[str], title: str, items: list[str]) -> None:
    if items:
        out.append(f"<h2>{_esc(title)}</h2><ul>" + "".join(f"<li>{_esc(i)}</li>" for i in items) + "</ul>")
