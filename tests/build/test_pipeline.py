"""The run pipeline: plan -> export/validate -> bench -> record -> report, shared by export, demo and bench MODEL."""
from __future__ import annotations

import json
import os
import re

import pytest

from edgekit.build import plan as pipeline
from edgekit.core import registry
from edgekit.cli import main
from edgekit.core.config import SeqLen
from edgekit.core.errors import MissingDependencyError, UsageError
from edgekit.core.precision import Precision
from edgekit.core.tasks import Task

S16 = [SeqLen.parse("16")]


def _plan(targets, precisions, **kw):
    return pipeline.plan(targets, precisions, kw.pop("seq_lens", S16), kw.pop("task", Task.QUESTION_ANSWERING), **kw)


def test_plan_checks_every_job_up_front():
    jobs = _plan("torchscript,onnx", "fp32,int8", seq_lens=[SeqLen.parse("16"), SeqLen.parse("32")])
    assert [(j.target, j.precision, str(j.seq_len)) for j in jobs] == [
        ("torchscript", "fp32", "16"), ("torchscript", "int8-dynamic", "16"),
        ("torchscript", "fp32", "32"), ("torchscript", "int8-dynamic", "32"),
        ("onnx", "fp32", "16"), ("onnx", "int8-dynamic", "16"), ("onnx", "fp32", "32"), ("onnx", "int8-dynamic", "32")]
    assert all(j.options is not None and not j.skipped for j in jobs)


def test_a_sweep_keeps_what_cannot_run_as_skipped_jobs_with_the_reason(monkeypatch):
    pytest.importorskip("coremltools")
    conv = registry.get("onnx")
    monkeypatch.setattr(type(conv), "missing_module", lambda self: "onnxruntime_not_here")
    jobs = {(j.target, j.precision): j for j in _plan("all", "all")}
    assert "onnxruntime_not_here" in jobs[("onnx", "-")].skipped and "edgekit[onnx]" in jobs[("onnx", "-")].skipped
    assert "--deployment-target iOS18" in jobs[("coreml", "int4-weight")].skipped  # int4 before iOS 18
    assert jobs[("coreml", "fp16")].options is not None
    # a flag goes only to the targets that take it
    jobs = {(j.target, j.precision): j for j in _plan("all", "fp32", flags={"ane": True})}
    assert jobs[("coreml", "fp32")].options.flags == {"ane": True} and jobs[("torchscript", "fp32")].options.flags == {}
    # named explicitly, the same problems are errors
    with pytest.raises(MissingDependencyError, match=r"edgekit\[onnx\]"):
        _plan("onnx", "fp32")
    with pytest.raises(UsageError, match="does not take --ane"):
        _plan("torchscript", "fp32", flags={"ane": True})


def test_plan_rejects_unknown_names_and_leaves_out_skips():
    with pytest.raises(UsageError, match="Did you mean 'onnx'"):
        _plan("onxx", "fp32")
    with pytest.raises(UsageError, match="unknown targets"):
        _plan("onnx", "fp32", skip="nope:fp32")
    with pytest.raises(UsageError, match="--calibration only applies"):
        _plan("onnx", "fp32", calibration="x.txt")
    jobs = _plan("onnx", "fp32,fp16", skip="onnx:fp16")
    assert [(j.precision, j.skipped) for j in jobs] == [("fp32", None), ("fp16", "left out of this run (--skip)")]


def test_precision_selection_per_target():
    onnx = registry.get("onnx").precisions
    assert Precision.select(["int8"], onnx, only_supported=True) == [Precision.INT8_DYNAMIC]
    assert Precision.select(["fp16", "int8-static", "palettize4"], onnx, only_supported=True) == [
        Precision.FP16, Precision.INT8_STATIC]


def test_pinning_restores_affinity():
    from edgekit.measure.bench import pinned_cpus

    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    before = os.sched_getaffinity(0)
    with pinned_cpus(1, pin=True) as cpus:
        assert cpus == sorted(before)[:1] and os.sched_getaffinity(0) == set(cpus)
    assert os.sched_getaffinity(0) == before
    with pinned_cpus(1, pin=False) as cpus:
        assert cpus is None and os.sched_getaffinity(0) == before


FAST = ["--runs", "1", "--warmup", "0", "--threads", "1"]


def _report(folder, capsys, fmt):
    capsys.readouterr()
    assert main(["report", str(folder), "--format", fmt]) == 0
    return capsys.readouterr().out


def _shape(md):
    """The Markdown table with the run-dependent cells (latency, speed-up) blanked."""
    rows = [line.split(" | ") for line in md.splitlines() if line.startswith("| ")]
    return [r[:11] for r in rows]


@pytest.mark.slow
def test_export_demo_and_bench_model_write_the_same_report(tiny_model, tmp_path, monkeypatch, capsys):
    """`edgekit report DIR` shows the same table and JSON shape whatever command wrote DIR."""
    import edgekit.model.modeling

    model = tiny_model("distilbert", Task.FEATURE_EXTRACTION)
    monkeypatch.setattr(edgekit.model.modeling, "embedded_model_path", lambda *a: model)
    common = ["--target", "torchscript", "--precision", "fp32"]
    outs = {name: tmp_path / name for name in ("export", "demo", "bench")}
    assert main(["export", "--model", str(model), "--seq-len", "16", "--bench", "--out", str(outs["export"]),
                 *common, *FAST]) == 0
    assert main(["demo", "--seq-len", "16", "--out", str(outs["demo"]), *common, *FAST]) == 0
    assert main(["bench", str(model), "--seq-len", "16", "--out", str(outs["bench"]), *common, *FAST]) == 0
    shapes, jsons = {}, {}
    for name, out in outs.items():
        assert {"report.md", "report.json", "report.html"} <= {p.name for p in out.iterdir()}
        md = _report(out, capsys, "md")
        shapes[name] = _shape(md)
        jsons[name] = json.loads(_report(out, capsys, "json"))
        assert "<svg" in _report(out, capsys, "html")
        written = json.loads((out / "report.json").read_text())
        assert [r["artifact"] for r in written["rows"]] == [r["artifact"] for r in jsons[name]["rows"]]
    assert shapes["export"] == shapes["demo"] == shapes["bench"]
    assert [r[:3] for r in shapes["demo"][1:]] == [["| ", "pytorch-eager", "fp32"], ["| ✅", "torchscript", "fp32"]]
    keys = {name: (set(j), [sorted(r) for r in j["rows"]]) for name, j in jsons.items()}
    assert keys["export"] == keys["demo"] == keys["bench"]
    for j in jsons.values():
        eager, art = j["rows"]
        assert art["status"] == "validated" and art["p50_ms"] > 0 and art["speedup"] > 0
        assert eager["run"] == art["run"]  # the baseline of the same run


@pytest.mark.slow
def test_bench_model_cli_skips_and_reports(tiny_model, tmp_path, capsys):
    model = tiny_model("distilbert", Task.SEQUENCE_CLASSIFICATION)
    out = tmp_path / "b"
    assert main(["bench", str(model), "--target", "torchscript", "--precision", "fp32,int8", "--seq-len", "16,24",
                 "--skip", "torchscript:int8-dynamic", "--out", str(out), *FAST]) == 0
    captured = capsys.readouterr()
    assert "skipping torchscript int8-dynamic s16: left out of this run (--skip)" in re.sub(r"\s+", " ", captured.err)
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert [(r["target"], r["seq_len"]) for r in rows] == [
        ("pytorch-eager", "16"), ("torchscript", "16"), ("pytorch-eager", "24"), ("torchscript", "24")]
    assert rows[1]["task"] == "sequence-classification"  # read from the checkpoint's config
    assert main(["bench", str(model), "--runs", "0"]) == 2
    assert "--runs" in capsys.readouterr().err


def test_without_seq_len_each_target_uses_its_own_default():
    """Question answering: 384 (the Task Library's length) except Core ML, whose one package serves
    128/256/384 as enumerated shapes (iOS 18); other tasks 128 everywhere."""
    qa = pipeline.plan(["tflite", "onnx", "coreml"], "fp32", None, "question-answering")
    by_target = {j.target: j.seq_len for j in qa}
    assert str(by_target["tflite"]) == "384" and str(by_target["onnx"]) == "384"
    assert by_target["coreml"].kind == "enumerated" and list(by_target["coreml"].values) == [128, 256, 384]
    coreml = next(j for j in qa if j.target == "coreml")
    assert not coreml.skipped  # the enumerated default must pass the target's own checks (iOS 18 chosen)
    cls = pipeline.plan(["coreml"], "fp32", None, "sequence-classification")
    assert str(cls[0].seq_len) == "128"
    explicit = pipeline.plan(["coreml"], "fp32", [SeqLen.parse("256")], "question-answering")
    assert str(explicit[0].seq_len) == "256"


# ---- several processes (--jobs) ----------------------------------------------------------------

def test_worker_count():
    jobs = _plan("torchscript,onnx", "fp32,int8", seq_lens=[SeqLen.parse("16"), SeqLen.parse("32")])  # 8 files
    assert pipeline.worker_count(1, jobs) == 1
    assert pipeline.worker_count(3, jobs) == 3 and pipeline.worker_count(20, jobs) == len(jobs)
    assert pipeline.worker_count(2, jobs, gate=object()) == 1  # the gate's reference is computed once, in one process
    assert pipeline.worker_count("auto", jobs, gate=object()) == 1
    assert 1 <= pipeline.worker_count("auto", jobs) <= 2  # the free cores of a 2-core machine, 8 // 3 = 2 at most
    assert pipeline.worker_count("auto", jobs[:2]) == 1  # two files are not worth a second process
    for bad in (0, -1, "many"):
        with pytest.raises(UsageError):
            pipeline.worker_count(bad, jobs)
    units = pipeline._groups(jobs)  # a worker takes one target's files whole, in the plan's order
    assert [[jobs[i - 1].target for i in u] for u in units] == [["torchscript"] * 4, ["onnx"] * 4]


@pytest.mark.slow
def test_two_processes_give_the_records_one_gives(tiny_model, tmp_path):
    """--jobs 2 exports the same files with the same verdicts and parity numbers, in the plan's order."""
    pytest.importorskip("onnxruntime")
    from edgekit.core.record import ArtifactRecord

    model = str(tiny_model("bert", Task.QUESTION_ANSWERING))
    jobs = _plan("torchscript,onnx", "fp32,int8", seq_lens=[SeqLen.parse("64")])
    one = pipeline.run(jobs, model, Task.QUESTION_ANSWERING, tmp_path / "one", verbose=False)
    two = pipeline.run(jobs, model, Task.QUESTION_ANSWERING, tmp_path / "two", verbose=False, workers=2)
    assert two.workers == 2 and one.workers == 1
    assert [r.artifact for r in two.records] == [r.artifact for r in one.records]
    for a, b in zip(one.records, two.records):
        assert b.status == a.status == "validated", (b.artifact, b.status)
        assert [o.cosine for o in b.parity.outputs] == pytest.approx([o.cosine for o in a.parity.outputs], abs=1e-6)
        assert ArtifactRecord.load(tmp_path / "two" / b.artifact).sha256 == b.sha256  # installed, bound to its file


@pytest.mark.slow
def test_demo_in_two_processes_into_files_reads_cleanly(tiny_model, tmp_path):
    """The demo with its output in files (a log, CI), two processes side by side: every file's verdict
    line once and whole, no carriage return, paths unbroken, the stage line says how it ran."""
    import subprocess
    import sys

    pytest.importorskip("onnxruntime")
    model = tiny_model("distilbert", Task.FEATURE_EXTRACTION)
    out = tmp_path / ("a-long-folder-name-" * 4) / "demo"
    code = ("import sys, edgekit.model.modeling as m; from edgekit.cli import main; "
            f"m.embedded_model_path = lambda *a: {str(model)!r}; "
            f"sys.exit(main(['demo', '--target', 'torchscript,onnx', '--seq-len', '16', '--jobs', '2', "
            f"'--out', {str(out)!r}, '--runs', '1', '--warmup', '0']))")
    with open(tmp_path / "stdout", "w") as so, open(tmp_path / "stderr", "w") as se:
        rc = subprocess.run([sys.executable, "-c", code], stdout=so, stderr=se, env={**os.environ, "COLUMNS": "80"},
                            timeout=600).returncode
    stdout, stderr = (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()
    assert rc == 0, stderr[-3000:]
    assert "\r" not in stdout + stderr
    verdicts = [ln for ln in stderr.splitlines() if ln.lstrip().startswith("✅ validated ·")]
    labels = sorted(ln.split("·")[1].strip() for ln in verdicts)
    assert labels == sorted(["torchscript fp32 s16", "torchscript int8-dynamic s16", "onnx fp32 s16",
                             "onnx fp16 s16", "onnx int8-dynamic s16", "onnx int8-dynamic-full s16",
                             "onnx int8-static s16"]), verdicts
    assert "(2 processes take the 7 files side by side)" in stderr
    assert f"{out / 'report.md'}, " in stderr  # the path whole on one line at 80 columns
    assert re.search(r"Stage times: export \+ validate [\d.]+ s in 2 processes", stdout), stdout[-500:]
