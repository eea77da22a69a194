"""The report package: one row model, one Markdown table, one JSON shape, the HTML page with SVG charts."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from edgekit.measure import tables as report
from edgekit.measure import html
from edgekit.core.measures import OutputMetrics, ParityReport
from edgekit.core.record import ArtifactRecord, LatencyStats, Measurement, ModelSource, Quality, Status

SVG = "{http://www.w3.org/2000/svg}"


def _stats(p50):
    return LatencyStats(p50_ms=p50, p90_ms=p50 * 1.2, mean_ms=p50, std_ms=0.0, min_ms=p50, runs=3, warmup=1)


def _record(folder, target, precision, status, size, p50=None, psnr=60.0, agreement=1.0, reason=None,
            not_timed=None, run="r1", eager=100.0, second=None, model="tiny"):
    name = f"{'m' if model == 'tiny' else model}.{precision}.s128.{target}"
    (folder / name).write_bytes(b"x" * size)
    parity = None
    if status in (Status.VALIDATED, Status.PARITY_FAILED):
        parity = ParityReport(samples=8, outputs=[OutputMetrics("logits", 1e-3, 1e-4, 0.9999, psnr),
                                                  OutputMetrics("other", 2e-3, 1e-4, 0.999, psnr + 5)],
                              agreement=agreement, agreement_metric="label argmax")
    latency = []
    if p50 is not None or not_timed:
        latency = [Measurement(run=run, seq_len=128, threads=2, host="Test CPU", load_average=[0.5, 0.4, 0.3],
                               artifact=_stats(p50) if p50 else None, eager=_stats(eager), not_timed=not_timed)]
    rec = ArtifactRecord(artifact=name, target=target, precision=precision, task="sequence-classification",
                         seq_len="128", status=status, reason=reason, size_bytes=size, parity=parity, latency=latency,
                         source=ModelSource(f"./{model}", fp32_param_bytes=4000),
                         options={"task_library": second} if second else {}, versions={"onnxruntime": "1.31.1"})
    rec.save(folder / name)
    return rec


@pytest.fixture
def bench_dir(tmp_path):
    _record(tmp_path, "onnx", "fp32", Status.VALIDATED, 4000, p50=60.0, psnr=120.0)
    _record(tmp_path, "onnx", "int8-dynamic", Status.VALIDATED, 1000, p50=20.0, psnr=30.0, agreement=0.99)
    _record(tmp_path, "tflite", "fp32", Status.VALIDATED, 4100, p50=62.0)
    _record(tmp_path, "tflite", "int8-static", Status.PARITY_FAILED, 1100, p50=30.0, agreement=0.5,
            reason="agreement 50.0% < 97%",
            second={"client": "tflite-support BertNLClassifier", "status": "disagreed", "agreement": 0.5})
    _record(tmp_path, "coreml", "fp16", Status.VALIDATION_SKIPPED, 2000, reason="needs macOS",
            not_timed="Core ML runs only on Apple hardware")
    (tmp_path / "m.fp32.s128.executorch.json").write_text(json.dumps(ArtifactRecord(
        artifact="m.fp32.s128.executorch", target="executorch", precision="fp32", task="sequence-classification",
        seq_len="128", status=Status.EXPORT_FAILED, reason="RuntimeError: <boom> & co").to_dict()))
    (tmp_path / "unrelated.json").write_text('{"not": "a record"}')
    return tmp_path


def test_one_row_per_artifact_plus_the_eager_baseline_in_registry_order(bench_dir):
    rep = report.build(report.collect(bench_dir))
    assert [r.target for r in rep.rows] == [report.EAGER, "executorch", "coreml", "tflite", "tflite", "onnx", "onnx"]
    by = {(r.target, r.precision): r for r in rep.rows}
    assert by[(report.EAGER, "fp32")].speedup == 1.0 and by[(report.EAGER, "fp32")].p50_ms == 100.0
    q = by[("onnx", "int8-dynamic")]
    assert q.size_pct_fp32 == pytest.approx(25.0)  # of onnx fp32, the same target
    assert q.max_abs == 2e-3 and q.cosine == 0.999 and q.psnr == 30.0  # worst output
    assert q.speedup == pytest.approx(5.0)
    assert by[("coreml", "fp16")].not_timed == "Core ML runs only on Apple hardware"
    assert by[("coreml", "fp16")].size_pct_fp32 == pytest.approx(50.0)  # no coreml fp32: of the fp32 weights


def test_baselines_of_different_runs_are_never_mixed(tmp_path):
    _record(tmp_path, "onnx", "fp32", Status.VALIDATED, 4000, p50=50.0, run="r1", eager=100.0)
    _record(tmp_path, "tflite", "fp32", Status.VALIDATED, 4000, p50=50.0, run="r2", eager=200.0)
    rep = report.build(report.collect(tmp_path))
    eager = [r for r in rep.rows if r.target == report.EAGER]
    assert sorted((r.run, r.p50_ms) for r in eager) == [("r1", 100.0), ("r2", 200.0)]
    by = {r.target: r.speedup for r in rep.rows}
    assert by["onnx"] == pytest.approx(2.0) and by["tflite"] == pytest.approx(4.0)


def test_markdown_has_header_statuses_and_reasons(bench_dir):
    md = report.markdown(report.build(report.collect(bench_dir)))
    assert "Test CPU" in md and "Threads: 2" in md and "onnxruntime 1.31.1" in md and "[0.5, 0.4, 0.3]" in md
    for text in ("✅ validated", "❎ exported, parity failed", "❌ export failed", "⚠️ exported, validation skipped",
                 "❎ `m.int8-static.s128.tflite` (parity-failed): agreement 50.0% < 97%",
                 "⚠️ `m.fp16.s128.coreml` (validation-skipped): needs macOS",
                 "`m.fp16.s128.coreml`: Core ML runs only on Apple hardware",
                 "BertNLClassifier: disagreed (50% agreement)"):
        assert text in md, text
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 7
    assert "| ✅ | onnx | int8-dynamic | sequence-classification | 128 | 0.0 | 25 | 0.002 | 0.99900 | 30.0 | " \
           "99.0% | — | 20.0 | 24.0 | 5.00 |" in table


def test_json_is_the_row_model(bench_dir):
    rep = report.build(report.collect(bench_dir))
    data = json.loads(report.to_json(rep))
    assert set(data) == {"title", "host", "rows"}
    assert data["rows"][1]["status"] == "export-failed" and set(data["rows"][0]) == set(data["rows"][1])


def test_html_is_self_contained_and_escaped(bench_dir):
    page = html.render(report.build(report.collect(bench_dir)))
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "<boom>" not in page and "&lt;boom&gt; &amp; co" in page
    assert "Test CPU" in page and "onnxruntime 1.31.1" in page
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert len(svgs) == 2
    for svg in svgs:
        ET.fromstring(svg)  # well-formed


def _rows(folder):
    from dataclasses import asdict

    rows = [asdict(r) for r in report.build(report.collect(folder)).rows]
    return rows, html._target_colors(rows)


def test_scatter_plots_each_timed_artifact_and_the_eager_line(bench_dir):
    rows, colors = _rows(bench_dir)
    svg = ET.fromstring(html.scatter_svg(rows, "t", colors))
    circles = [g.find(f"{SVG}circle") for g in svg.findall(f"{SVG}g")]  # points (the legend is outside <g>)
    timed = [r for r in rows if r["p50_ms"] is not None and r["target"] != report.EAGER]
    assert len(circles) == len(timed) == 4
    ys = {float(c.get("cy")) for c in circles}
    titles = [g.find(f"{SVG}title").text for g in svg.findall(f"{SVG}g")]
    assert any("onnx int8-dynamic: 20.0 ms" in t for t in titles)
    assert max(ys) > min(ys)
    assert svg.find(f".//{SVG}line[@stroke-dasharray]") is not None  # the eager baseline
    assert "log scale" not in ET.tostring(svg, encoding="unicode")  # 20..100 ms: linear axis
    failed = next(c for c, t in zip(circles, titles) if "tflite int8-static" in t)
    assert failed.get("fill") == "white"  # failed parity is drawn hollow


def test_scatter_switches_to_a_log_axis_for_wide_ranges(bench_dir):
    rows, colors = _rows(bench_dir)
    rows[0]["p50_ms"] = 5000.0  # a very slow eager baseline
    svg = html.scatter_svg(rows, "t", colors)
    assert "log scale" in svg
    ET.fromstring(svg)


def test_parity_bars_scale_with_psnr(bench_dir):
    rows, colors = _rows(bench_dir)
    svg = ET.fromstring(html.parity_svg(rows, "p", colors))
    bars = {g.find(f"{SVG}title").text.split(":")[0]: float(g.find(f"{SVG}rect").get("width"))
            for g in svg.findall(f"{SVG}g")}
    assert set(bars) == {"onnx fp32", "onnx int8-dynamic", "tflite fp32", "tflite int8-static"}
    assert bars["onnx fp32"] == pytest.approx(4 * bars["onnx int8-dynamic"])  # 120 dB vs 30 dB


def test_empty_folder_still_renders(tmp_path):
    rep = report.build(report.collect(tmp_path))
    assert rep.rows == []
    assert "No records" in html.render(rep)
    assert "| target |" in report.markdown(rep)


def test_write_reports_writes_all_three(bench_dir):
    from edgekit.measure.render import write_reports

    rep = write_reports(bench_dir)
    assert len(rep.rows) == 7
    assert json.loads((bench_dir / "report.json").read_text()) == rep.to_dict()
    assert (bench_dir / "report.md").read_text() == report.markdown(rep)
    assert "<svg" in (bench_dir / "report.html").read_text()


def test_quality_column_only_when_records_carry_the_accuracy_gate(bench_dir):
    rep = report.build(report.collect(bench_dir))
    assert rep.quality_column is None and "F1 (Δ)" not in report.markdown(rep) and "F1 (Δ)" not in html.render(rep)
    rec = ArtifactRecord.load(bench_dir / "m.int8-dynamic.s128.onnx")
    rec.quality = Quality(metric="f1", data="/d/dev.json.xz", n=200, pytorch=77.23, artifact=73.68, drop=3.55,
                          max_drop=1.0, passed=False)
    rec.save(bench_dir / rec.artifact)
    rep = report.build(report.collect(bench_dir))
    assert rep.quality_column == "F1 (Δ)"
    md = report.markdown(rep)
    head = next(line for line in md.splitlines() if line.startswith("|  | target"))
    assert head.endswith("| F1 (Δ) |")
    row = next(line for line in md.splitlines() if "| int8-dynamic |" in line)
    assert row.endswith("| 73.68 (-3.55) |")
    fp32 = next(line for line in md.splitlines() if "| onnx | fp32 |" in line)
    assert fp32.endswith("| — |")  # a row without the gate shows a dash, not a number
    assert "200 examples of dev.json.xz" in md
    page = html.render(rep)
    assert "<th>F1 (Δ)</th>" in page and "73.68 (-3.55)" in page
    rows = json.loads(report.to_json(rep))["rows"]
    (q,) = [r for r in rows if r["quality_score"] is not None]
    assert q["precision"] == "int8-dynamic" and q["quality_delta"] == pytest.approx(-3.55)
    assert q["quality"]["n"] == 200


def test_counts_column_and_ane_like_and_random_inputs_notes(tmp_path):
    from edgekit.core.measures import AneLikeParity

    rec = _record(tmp_path, "coreml", "fp16", Status.VALIDATED, 1000)
    path = tmp_path / rec.artifact
    rec.parity.agreed, rec.parity.decisive, rec.parity.judged = 60, 62, 64
    rec.parity.inputs_note = "random inputs only"
    rec.parity.ane_like = AneLikeParity(outputs=[OutputMetrics("logits", 1e-2, 1e-3, 0.99951, 41.25)], samples=20)
    rec.save(path)
    back = report.collect(tmp_path)[0]
    assert back.parity.ane_like.worst("psnr") == 41.25  # typed round trip
    md = report.markdown(report.build([back]))
    assert "| 60 / 62 (of 64) |" in md
    assert "agreement on random inputs only (no tokenizer)" in md
    assert "cosine 0.99951, PSNR 41.2 dB" in md


# ---- a folder of several models (issue 28) ------------------------------------------------------

def test_one_model_has_no_model_column(bench_dir):
    rep = report.build(report.collect(bench_dir))
    assert rep.models == ["tiny"] and not rep.model_column
    assert "model" not in report.columns(rep) and "Models:" not in report.markdown(rep)


def test_a_folder_of_several_models_names_each_rows_model(tmp_path):
    _record(tmp_path, "onnx", "fp32", Status.VALIDATED, 4000, p50=50.0, eager=100.0, model="tiny")
    _record(tmp_path, "tflite", "fp32", Status.VALIDATED, 4000, p50=40.0, eager=100.0, model="tiny")
    _record(tmp_path, "onnx", "fp32", Status.VALIDATED, 4000, p50=10.0, eager=30.0, model="other")
    rep = report.build(report.collect(tmp_path))
    assert rep.model_column and sorted(rep.models) == ["other", "tiny"]
    # One eager row per model and length (same run), each first among its own model's rows.
    assert [(r.model, r.target) for r in rep.rows] in (
        [("other", report.EAGER), ("other", "onnx"), ("tiny", report.EAGER), ("tiny", "tflite"), ("tiny", "onnx")],
        [("tiny", report.EAGER), ("tiny", "tflite"), ("tiny", "onnx"), ("other", report.EAGER), ("other", "onnx")])
    eager = {r.model: r.p50_ms for r in rep.rows if r.target == report.EAGER}
    assert eager == {"tiny": 100.0, "other": 30.0}
    md = report.markdown(rep)
    head = next(line for line in md.splitlines() if line.startswith("|  |"))
    assert head.startswith("|  | model | target | precision |")
    assert "| ✅ | other | onnx | fp32 |" in md and "- Models: " in md
    align = next(line for line in md.splitlines() if line.startswith("|---"))
    assert align.count("---:") == len(report.columns(rep)) - report.first_numeric(rep) == len(report.COLUMNS) - 5
    page = html.render(rep)
    assert "<th>model</th>" in page and "<td>other</td>" in page
    from edgekit.measure.render import write_reports

    assert "(2 models)" in write_reports(tmp_path, title="edgekit export: ./tiny").title


def test_html_status_is_words_and_colour_not_an_emoji_alone(bench_dir):
    rep = report.build(report.collect(bench_dir))
    page = html.render(rep)
    cells = re.findall(r"<td class='status'[^>]*>(.*?)</td>", page)
    assert "✅ validated" in cells and "❌ export failed" in cells and "❎ exported, parity failed" in cells
    assert "baseline" in cells
    ok = re.search(r"<td class='status' style='([^']*)'>✅ validated</td>", page).group(1)
    bad = re.search(r"<td class='status' style='([^']*)'>❌ export failed</td>", page).group(1)
    assert ok != bad and "#2e7d32" in ok and "#c62828" in bad
    row = next(r for r in rep.rows if r.status == "validated")
    row.contradictions = ["sha256 differs"]
    row._flagged()
    assert row.symbol == "❗" and row.colour == report.FLAGGED_COLOUR != Status.VALIDATED.colour


def _boxes(svg):
    """The bounding boxes of the point labels (x, baseline y, text) as drawn, 6.2 px a character."""
    out = []
    for g in svg.findall(f"{SVG}g"):
        t = g.find(f"{SVG}text")
        if t is not None:
            x, y = float(t.get("x")), float(t.get("y"))
            out.append((x, y - 10, x + 6.2 * len(t.text), y + 2, t.text))
    return out


def test_chart_points_are_labelled_target_and_precision_without_collisions(tmp_path):
    # Eight files of nearly the same size and latency: labels must not collide; the table names them all.
    for i, (target, precision) in enumerate([("onnx", "fp32"), ("onnx", "int8-dynamic"), ("tflite", "fp32"),
                                             ("tflite", "int8-dynamic"), ("tflite", "fp16"), ("ort", "fp32"),
                                             ("executorch", "fp32"), ("torchscript", "fp32")]):
        _record(tmp_path, target, precision, Status.VALIDATED, 4000 + i, p50=50.0 + 0.1 * i)
    rows, colors = _rows(tmp_path)
    svg = ET.fromstring(html.scatter_svg(rows, "t", colors))
    boxes = _boxes(svg)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a[4], b[4])
    legend = html.scatter_legend(rows)
    for n in range(1, 9):
        assert f"<td>{n}</td>" in legend
    assert "<td>executorch</td><td>fp32</td>" in legend
    # Points far apart get their full name: number, target and precision.
    spread = tmp_path / "spread"
    spread.mkdir()
    _record(spread, "onnx", "fp32", Status.VALIDATED, 4000, p50=60.0)
    _record(spread, "tflite", "int8-dynamic", Status.VALIDATED, 1000, p50=20.0)
    rows, colors = _rows(spread)
    texts = {b[4] for b in _boxes(ET.fromstring(html.scatter_svg(rows, "t", colors)))}
    assert texts == {"1 tflite int8-dynamic", "2 onnx fp32"}
