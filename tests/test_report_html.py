"""Report rows, Markdown and the self-contained HTML page with SVG charts (from hand-made records)."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from edgekit import report_html
from edgekit.record import ArtifactRecord, Status

SVG = "{http://www.w3.org/2000/svg}"


def _record(folder, target, precision, status, size, p50=None, psnr=60.0, agreement=1.0, reason=None, seq="128"):
    name = f"m.{precision}.s{seq}.{target}"
    (folder / name).write_bytes(b"x" * size)
    parity = None
    if status in (Status.VALIDATED, Status.PARITY_FAILED):
        parity = {"outputs": [{"name": "logits", "max_abs": 1e-3, "mean_abs": 1e-4, "cosine": 0.9999, "psnr": psnr},
                              {"name": "other", "max_abs": 2e-3, "mean_abs": 1e-4, "cosine": 0.999, "psnr": psnr + 5}],
                  "agreement": agreement, "agreement_metric": "label argmax", "passed": status == Status.VALIDATED}
    latency = None if p50 is None else {"p50_ms": p50, "p90_ms": p50 * 1.2, "threads": 2,
                                        "eager_p50_ms": 100.0, "eager_p90_ms": 110.0}
    rec = ArtifactRecord(artifact=name, target=target, precision=precision, task="sequence-classification",
                         seq_len=seq, status=status, reason=reason, size_bytes=size, parity=parity, latency=latency)
    rec.save(folder / name)
    return rec


@pytest.fixture
def bench_dir(tmp_path):
    _record(tmp_path, "onnx", "fp32", Status.VALIDATED, 4000, p50=60.0, psnr=120.0)
    _record(tmp_path, "onnx", "int8-dynamic", Status.VALIDATED, 1000, p50=20.0, psnr=30.0, agreement=0.99)
    _record(tmp_path, "tflite", "fp32", Status.VALIDATED, 4100, p50=62.0)
    _record(tmp_path, "tflite", "int8-static", Status.PARITY_FAILED, 1100, p50=30.0, agreement=0.5,
            reason="agreement 50.0% < 97%")
    _record(tmp_path, "coreml", "fp16", Status.VALIDATION_SKIPPED, 2000, reason="needs macOS")
    (tmp_path / "m.fp32.s128.executorch.json").write_text(json.dumps(ArtifactRecord(
        artifact="m.fp32.s128.executorch", target="executorch", precision="fp32", task="sequence-classification",
        seq_len="128", status=Status.EXPORT_FAILED, reason="RuntimeError: <boom> & co").to_dict()))
    (tmp_path / "crossbench.json").write_text(json.dumps({
        "host": {"machine": "Linux x86_64", "cpu": "Test CPU", "cores": 2, "threads": 2, "pinned_cpus": [0, 1],
                 "load_average": [0.5, 0.4, 0.3], "versions": {"onnxruntime": "1.31.1", "torch": "2.13"}},
        "model": {"source": "tiny", "arch": "distilbert", "task": "sequence-classification", "num_layers": 2,
                  "hidden_size": 32, "fp32_bytes": 4000},
        "baselines": {"128": {"p50_ms": 100.0, "p90_ms": 110.0, "threads": 2}},
        "combinations": [
            {"target": "executorch", "precision": "int8-static", "seq_len": 128, "artifact": None,
             "skipped": "executorch int8-static needs --calibration", "bench_skipped": None},
            {"target": "coreml", "precision": "fp16", "seq_len": 128, "artifact": "m.fp16.s128.coreml",
             "skipped": None, "bench_skipped": "Core ML runs only on Apple hardware"},
        ],
    }))
    return tmp_path


def test_collect_makes_one_row_per_artifact_plus_the_eager_baseline(bench_dir):
    data = report_html.collect(bench_dir)
    rows = data["rows"]
    assert len(rows) == 7  # six sidecars + eager; crossbench.json is not an artifact
    assert rows[0]["target"] == report_html.EAGER and rows[0]["speedup"] == 1.0
    by = {(r["target"], r["precision"]): r for r in rows}
    q = by[("onnx", "int8-dynamic")]
    assert q["size_pct_fp32"] == pytest.approx(25.0)  # of onnx fp32, the same target
    assert q["max_abs"] == 2e-3 and q["cosine"] == 0.999 and q["psnr"] == 30.0  # worst output
    assert q["speedup"] == pytest.approx(5.0)
    assert by[("coreml", "fp16")]["latency_note"] == "Core ML runs only on Apple hardware"
    assert by[("coreml", "fp16")]["size_pct_fp32"] == pytest.approx(50.0)  # no coreml fp32: of the eager weights
    assert data["unavailable"][0]["target"] == "executorch"


def test_markdown_has_header_statuses_and_reasons(bench_dir):
    md = report_html.render_markdown(report_html.collect(bench_dir))
    assert "Test CPU" in md and "Threads: 2" in md and "onnxruntime 1.31.1" in md and "[0.5, 0.4, 0.3]" in md
    for text in ("✅ validated", "❎ parity failed (agreement 50.0% < 97%)", "❌ export failed",
                 "validation skipped (needs macOS)", "executorch int8-static needs --calibration"):
        assert text in md, text
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 7
    onnx_int8 = next(line for line in table if "| onnx | int8-dynamic |" in line)
    cells = [c.strip() for c in onnx_int8.strip("|").split(" | ")]
    assert cells[4:6] == ["0.0", "25%"] and cells[7] == "20.0" and cells[9] == "5.00×"


def test_html_is_self_contained_and_escaped(bench_dir):
    page = report_html.render_html(report_html.collect(bench_dir))
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "<boom>" not in page and "&lt;boom&gt; &amp; co" in page
    assert "Test CPU" in page and "onnxruntime 1.31.1" in page
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert len(svgs) == 2
    for svg in svgs:
        ET.fromstring(svg)  # well-formed


def test_scatter_plots_each_timed_artifact_and_the_eager_line(bench_dir):
    rows = report_html.collect(bench_dir)["rows"]
    svg = ET.fromstring(report_html.scatter_svg(rows, "t", report_html._target_colors(rows)))
    circles = [g.find(f"{SVG}circle") for g in svg.findall(f"{SVG}g")]  # points (the legend is outside <g>)
    timed = [r for r in rows if r["p50_ms"] is not None and r["target"] != report_html.EAGER]
    assert len(circles) == len(timed) == 4
    # Latency increases upwards: the 20 ms point sits below the 62 ms point.
    ys = {float(c.get("cy")) for c in circles}
    titles = [g.find(f"{SVG}title").text for g in svg.findall(f"{SVG}g")]
    assert any("onnx int8-dynamic: 20.0 ms" in t for t in titles)
    assert max(ys) > min(ys)
    assert svg.find(f".//{SVG}line[@stroke-dasharray]") is not None  # the eager baseline
    assert "log scale" not in ET.tostring(svg, encoding="unicode")  # 20..100 ms: linear axis
    # Failed parity is drawn hollow.
    failed = next(c for c, t in zip(circles, titles) if "tflite int8-static" in t)
    assert failed.get("fill") == "white"


def test_scatter_switches_to_a_log_axis_for_wide_ranges(bench_dir):
    rows = report_html.collect(bench_dir)["rows"]
    rows[0]["p50_ms"] = 5000.0  # a very slow eager baseline
    svg = report_html.scatter_svg(rows, "t", report_html._target_colors(rows))
    assert "log scale" in svg
    ET.fromstring(svg)


def test_parity_bars_scale_with_psnr(bench_dir):
    rows = report_html.collect(bench_dir)["rows"]
    svg = ET.fromstring(report_html.parity_svg(rows, "p", report_html._target_colors(rows)))
    bars = {g.find(f"{SVG}title").text.split(":")[0]: float(g.find(f"{SVG}rect").get("width"))
            for g in svg.findall(f"{SVG}g")}
    assert set(bars) == {"onnx fp32", "onnx int8-dynamic", "tflite fp32", "tflite int8-static"}
    assert bars["onnx fp32"] == pytest.approx(4 * bars["onnx int8-dynamic"])  # 120 dB vs 30 dB


def test_empty_folder_still_renders(tmp_path):
    data = report_html.collect(tmp_path)
    assert data["rows"] == []
    assert "no timed artifacts" in report_html.render_html(data)
    assert "| target |" in report_html.render_markdown(data)
