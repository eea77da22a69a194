"""benchmarks/cross_format.py: the goal verdicts say by how much a target misses."""
from __future__ import annotations


def test_benchmark_goal_verdicts_say_by_how_much(benchmark_script):
    cf = benchmark_script("cross_format")

    def row(target, precision, p50, status="validated", agreement=1.0):
        return {"target": target, "precision": precision, "p50_ms": p50, "status": status,
                "agreement": agreement, "reason": None, "not_timed": None}

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
