"""The cross-format benchmark (``edgekit bench``) on a tiny model: records, baseline, reports, CLI."""
from __future__ import annotations

import argparse
import json

import pytest

from edgekit import crossbench, registry
from edgekit.errors import UsageError
from edgekit.modeling import load_model, load_tokenizer
from edgekit.record import ArtifactRecord, Status
from edgekit.tasks import Task

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def bench_run(tiny_model, tmp_path_factory):
    task = Task.SEQUENCE_CLASSIFICATION
    path = tiny_model("distilbert", task)
    model, tok = load_model(path, task), load_tokenizer(path)
    out = tmp_path_factory.mktemp("bench")
    result = crossbench.run_crossbench(
        model, out, tokenizer=tok, targets=["onnx", "torchscript"], precisions=["fp32", "int8"],
        seq_lens=(32, 48), threads=1, runs=2, warmup=0, verbose=False,
    )
    return result, out


@pytest.mark.slow
def test_every_combination_is_exported_validated_and_timed(bench_run):
    result, out = bench_run
    combos = {(c.target, c.precision, c.seq_len) for c in result.combinations}
    # onnx's first int8 variant is int8-dynamic; torchscript has only int8-dynamic.
    assert combos == {(t, p, s) for t in ("onnx", "torchscript") for p in ("fp32", "int8-dynamic") for s in (32, 48)}
    assert set(result.baselines) == {32, 48}
    for c in result.combinations:
        rec = ArtifactRecord.load(out / c.artifact)
        assert rec.status == Status.VALIDATED, rec.reason
        assert rec.seq_len == str(c.seq_len)
        lat = rec.latency
        assert lat["runs"] == 2 and lat["threads"] == 1 and lat["seq_len"] == c.seq_len
        assert lat["eager_p50_ms"] == result.baselines[c.seq_len]["p50_ms"]
        assert lat["speedup_vs_eager"] == pytest.approx(lat["eager_p50_ms"] / lat["p50_ms"])


@pytest.mark.slow
def test_summary_and_reports_are_written(bench_run):
    result, out = bench_run
    summary = json.loads((out / "crossbench.json").read_text())
    assert summary["host"]["threads"] == 1 and summary["host"]["versions"]["onnxruntime"]
    assert summary["model"]["num_layers"] == 2 and summary["model"]["fp32_bytes"] > 0
    assert set(summary["baselines"]) == {"32", "48"}
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert len(rows) == 8 + 2  # eight artifacts and one eager baseline per length
    md = (out / "report.md").read_text()
    assert md.count("| onnx | int8-dynamic |") == 2 and "pytorch-eager" in md
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 4  # latency-vs-size and parity, per length


def test_missing_backend_is_listed_not_run(tiny_model, tmp_path, monkeypatch):
    conv = registry.get("onnx")
    monkeypatch.setattr(type(conv), "missing_module", lambda self: "onnxruntime_not_here")
    names, missing = crossbench.available_targets(["onnx", "torchscript"])
    assert names == ["torchscript"]
    assert "onnxruntime_not_here" in missing["onnx"] and "edgekit[onnx]" in missing["onnx"]


def test_unknown_target_is_a_usage_error():
    with pytest.raises(UsageError, match="onnx"):
        crossbench.available_targets(["onxx"])


def test_precision_selection_per_target():
    from edgekit.precision import Precision

    onnx = registry.get("onnx").precisions
    assert Precision.select(["int8"], onnx, only_supported=True) == [Precision.INT8_DYNAMIC]
    assert Precision.select(["fp16", "int8-static", "palettize4"], onnx, only_supported=True) == [
        Precision.FP16, Precision.INT8_STATIC]


@pytest.mark.parametrize("text,want", [("128,384", (128, 384)), ("64", (64,)), ("128, 128,256", (128, 256))])
def test_parse_seq_lens(text, want):
    assert crossbench.parse_seq_lens(text) == want


@pytest.mark.parametrize("bad", ["", "abc", "1", "128,x"])
def test_parse_seq_lens_rejects(bad):
    with pytest.raises(UsageError):
        crossbench.parse_seq_lens(bad)


def test_pinning_restores_affinity():
    import os

    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    before = os.sched_getaffinity(0)
    with crossbench.pinned_cpus(1, pin=True) as cpus:
        assert cpus == sorted(before)[:1] and os.sched_getaffinity(0) == set(cpus)
    assert os.sched_getaffinity(0) == before
    with crossbench.pinned_cpus(1, pin=False) as cpus:
        assert cpus is None and os.sched_getaffinity(0) == before


@pytest.mark.slow
def test_cli_entry_point(tiny_model, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    crossbench.add_arguments(parser)
    out = tmp_path / "b"
    args = parser.parse_args([str(tiny_model("distilbert", Task.SEQUENCE_CLASSIFICATION)), "--targets", "onnx",
                              "--precisions", "fp32", "--seq-lens", "32", "--threads", "1", "--runs", "2",
                              "--warmup", "0", "--out", str(out)])
    assert crossbench.run(args) == 0
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert [(r["target"], r["precision"]) for r in rows] == [("pytorch-eager", "fp32"), ("onnx", "fp32")]
    assert rows[1]["task"] == "sequence-classification"  # read from the checkpoint's config


def test_cli_rejects_bad_runs(tiny_model, tmp_path):
    parser = argparse.ArgumentParser()
    crossbench.add_arguments(parser)
    args = parser.parse_args([str(tiny_model("distilbert", Task.SEQUENCE_CLASSIFICATION)), "--runs", "0"])
    with pytest.raises(UsageError, match="--runs"):
        crossbench.run(args)


def test_skip_leaves_combinations_out(tiny_model, tmp_path):
    task = Task.SEQUENCE_CLASSIFICATION
    path = tiny_model("distilbert", task)
    model = load_model(path, task)
    result = crossbench.run_crossbench(model, tmp_path, targets=["onnx"], precisions=["fp32", "fp16"],
                                       seq_lens=(16,), threads=1, runs=1, warmup=0, verbose=False,
                                       skip=["onnx:fp16"])
    done = {c.precision: c for c in result.combinations}
    assert done["fp16"].skipped and done["fp16"].artifact is None
    assert done["fp32"].artifact and not done["fp32"].skipped
    assert "onnx fp16: left out of this run (--skip)" in (tmp_path / "report.md").read_text()
    with pytest.raises(UsageError, match="unknown targets"):
        crossbench.run_crossbench(model, tmp_path, targets=["onnx"], seq_lens=(16,), skip=["nope:fp32"],
                                  verbose=False)


def _goals_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "cross_format.py"
    spec = importlib.util.spec_from_file_location("cross_format", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_goal_verdicts_say_by_how_much():
    cf = _goals_module()

    def row(target, precision, p50, status="validated", agreement=1.0):
        return {"target": target, "precision": precision, "p50_ms": p50, "status": status,
                "agreement": agreement, "reason": None, "latency_note": None}

    rows = [row("pytorch-eager", "fp32", 90.0, status="reference", agreement=None),
            row("onnx", "fp32", 60.0), row("onnx", "int8-dynamic", 18.0),
            row("tflite", "fp32", 70.0), row("tflite", "int8-dynamic", 25.0),
            row("tflite", "int8-static", 15.0, agreement=0.9),  # fast but not good enough
            row("coreml", "fp32", None)]
    v = cf.goals(rows)
    assert v["fastest_fp32"] == {"target": "onnx", "p50_ms": 60.0}
    assert v["best_int8"]["target"] == "onnx" and v["best_int8_meets"]
    t = v["targets"]
    assert t["onnx"]["fp32"] == "meets" and t["onnx"]["int8"] == "meets" and "why" not in t["onnx"]
    assert t["tflite"]["fp32"].startswith("misses: 1.17x") and "4.0 ms over" in t["tflite"]["fp32"]
    assert "agreement 90.0%" in t["tflite"]["int8"]  # its fastest int8 fails the agreement bar
    assert "measured: fp32 70.0 ms = 0.78x eager" in t["tflite"]["why"]
    assert t["coreml"]["fp32"].startswith("not timed")
